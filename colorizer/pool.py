"""Pooling photo collections for training: one scan that drops grayscale photos and duplicates.

Public collections overlap (the dogs-vs-cats sets share photos, one of them resized) and some hold
grayscale photos, which teach a colorizer nothing. Before training, every file of every folder is
read once: a SHA-256 of its bytes finds exact copies, a difference hash of its luminance (9x8
thumbnail, 64 bits: is each pixel brighter than its right neighbour) finds the same photo
re-encoded or resized, and a grayscale test drops photos without colour. Of each group of
duplicates the first in the folders' order is kept. The result is cached in the run folder
(``photo_pool.json``), so a resumed run does not scan again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image

from colorizer.data import DecodeCounts, decode_photo, find_images

log = logging.getLogger(__name__)

POOL_FILE = "photo_pool.json"
THUMBNAIL_SIDE = 64  # the scan decodes photos this small: enough for the hash and the grayscale test


def read_manifest(file: str | Path) -> list[str]:
    """The folders a manifest lists, one per line; ``#`` starts a comment; relative paths are
    relative to the manifest's own folder."""
    file = Path(file)
    folders = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        folder = Path(entry).expanduser()
        folder = folder if folder.is_absolute() else file.parent / folder
        if not folder.is_dir():
            raise FileNotFoundError(f"{file}:{number}: not a folder: {entry}")
        folders.append(str(folder))
    if not folders:
        raise ValueError(f"{file} lists no folders")
    return folders


def difference_hash(rgb: np.ndarray) -> str:
    """64-bit difference hash of the luminance, as 16 hex digits."""
    gray = PIL.Image.fromarray(rgb).convert("L").resize((9, 8), PIL.Image.Resampling.BILINEAR)
    pixels = np.asarray(gray, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):016x}"


@dataclass
class FolderCounts:
    found: int = 0
    unreadable: int = 0
    grayscale: int = 0
    duplicate_bytes: int = 0
    duplicate_look: int = 0
    kept: int = 0


@dataclass
class PhotoPool:
    """The photos to train on and, per folder, what the scan found."""

    folders: list[str]
    paths: list[str]
    counts: dict[str, FolderCounts] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        total = FolderCounts()
        for counts in self.counts.values():
            for name, value in counts.__dict__.items():
                setattr(total, name, getattr(total, name) + value)
        return dict(total.__dict__)

    def to_dict(self) -> dict:
        return {"folders": self.folders, "totals": self.totals(),
                "counts": {folder: counts.__dict__ for folder, counts in self.counts.items()}, "paths": self.paths}

    @classmethod
    def from_dict(cls, data: dict) -> PhotoPool:
        counts = {folder: FolderCounts(**values) for folder, values in data["counts"].items()}
        return cls(list(data["folders"]), list(data["paths"]), counts)


def _examine(path: str) -> tuple[str, str | None, str]:
    """(byte hash, difference hash or None, outcome: used, unreadable or grayscale) of one file."""
    outcome = DecodeCounts()
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        log.warning("skipping unreadable %s: %s", path, exc)
        return "", None, "unreadable"
    pixels = decode_photo(path, THUMBNAIL_SIDE, outcome)
    status = next(name for name, value in outcome.as_dict().items() if value)
    return digest, difference_hash(pixels) if pixels is not None else None, status


def scan_pool(folders: list[str], workers: int | None = None) -> PhotoPool:
    """Read every photo below ``folders`` once and keep the usable, distinct ones, in folder order."""
    listed = [(folder, path) for folder in folders for path in find_images(folder)]
    workers = workers or min(8, os.cpu_count() or 1)
    counts = {folder: FolderCounts() for folder in folders}
    seen_bytes, seen_look, kept = set(), set(), []
    with ThreadPoolExecutor(workers) as pool:  # PIL decodes with the GIL released
        for number, ((folder, path), (digest, look, status)) in enumerate(
                zip(listed, pool.map(_examine, [path for _, path in listed])), start=1):
            tally = counts[folder]
            tally.found += 1
            if status != "used":
                setattr(tally, status, getattr(tally, status) + 1)
            elif digest in seen_bytes:
                tally.duplicate_bytes += 1
            elif look in seen_look:
                tally.duplicate_look += 1
            else:
                tally.kept += 1
                kept.append(path)
            seen_bytes.add(digest)
            if look is not None:
                seen_look.add(look)
            if number % 5000 == 0:
                log.info("scanned %d of %d photos", number, len(listed))
    return PhotoPool(list(folders), kept, counts)


def pooled_photos(folders: list[str], run_dir: str | Path) -> PhotoPool:
    """The run's photo pool: read from ``photo_pool.json`` when it was made for the same folders,
    else scanned and written there."""
    folders = [str(Path(folder).resolve()) for folder in folders]
    file = Path(run_dir) / POOL_FILE
    if file.is_file():
        cached = PhotoPool.from_dict(json.loads(file.read_text(encoding="utf-8")))
        if cached.folders == folders:
            log.info("photo pool read from %s: %s", file, cached.totals())
            return cached
        log.info("the folders differ from %s's; scanning again", file)
    pool = scan_pool(folders)
    file.write_text(json.dumps(pool.to_dict(), indent=1), encoding="utf-8")
    log.info("photo pool: %s", pool.totals())
    return pool
