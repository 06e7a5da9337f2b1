"""The truth track: colour photos turned gray, colorized, and measured against themselves.

Reddit's human colorists give a reference but not the truth. Here the truth is known: each colour
photo is turned gray (BT.601 luma, the Y the models keep), colorized by every model, and every
metric of ``eval.metrics.measure`` is taken against the true photo over all its pixels. The gray
input itself is the "gray" baseline, as in the Reddit track.

Streaming and resuming: photos are read, colorized and measured one at a time, and every
(photo, model) result is appended to ``results.jsonl`` in the output folder and flushed before
the next one starts. A photo is known by its resolved path and the SHA-256 of its bytes, a model
by its name, version and weights hash, so a rerun into the same folder (after a crash, a SIGKILL,
or with more photos) measures only the pairs not stored yet. Summaries are computed from the
stored numbers, never from images held in memory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from eval.evaluate import GRAY_MODEL_NAME, GRAY_MODEL_VERSION
from eval.grayscale import Tone, classify_tone
from eval.metrics import METRICS, MetricInfo, measure, prepare_reference
# The report's own helpers, so both reports share formatting, thumbnails and atomic writes.
from eval.report import json_ready, mean_interval, remove_abandoned_partials, slug, templates, thumbnail, write_file

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
GALLERY_PHOTOS = 8
"""Photos shown as input | each model | truth in index.html (their thumbnails are written once)."""

HEADLINE_METRIC = "score"
"""Shown first wherever ``measure`` provides it."""

SIGNED_COLORFULNESS = "colorfulness_delta"
PUBLISHED_FIGURES = ("psnr", "ssim", "auc", "colorfulness_machine", "colorfulness_human", SIGNED_COLORFULNESS,
                     "colorfulness_gap")
"""What colorization papers print for this protocol (the names of ``bench_metric_info``)."""

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
"""BT.601 luma: the Y of the models' YUV, so a model's output keeps exactly this gray."""


class BenchModel(Protocol):
    """A colorizer as ``colorizer.client`` makes them: ``identity`` (name, version, weights_sha256)."""

    identity: Any

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]: ...


class BenchBusyError(RuntimeError):
    """Another process is writing the same output folder."""


@dataclass(frozen=True)
class _Entrant:
    """One column of the benchmark: a model, or the gray baseline (``colorize`` None)."""

    name: str
    version: str
    key: str
    colorize: Callable[[list[np.ndarray]], list[np.ndarray]] | None


@dataclass
class BenchSummary:
    photos: int = 0
    measured: int = 0
    """Photos with at least one (photo, model) pair measured by this run."""
    resumed: int = 0
    """Photos every model had already been measured on by an earlier run."""
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    index: Path | None = None

    def line(self) -> str:
        return (f"bench: {self.photos} photos: {self.measured} measured, {self.resumed} resumed from earlier runs, "
                f"{self.skipped} skipped (gray), {self.failed} failed")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The photo's BT.601 luma, rounded to 8 bits and repeated to three channels."""
    y = rgb.astype(np.float32) @ LUMA_WEIGHTS
    return np.repeat(np.clip(np.round(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def bench_metrics(machine: np.ndarray, reference) -> dict[str, float]:
    """Every metric ``measure`` gives, plus the signed colourfulness difference papers print as ΔCF."""
    values = measure(machine, reference)
    if "colorfulness_machine" in values and "colorfulness_human" in values:
        values[SIGNED_COLORFULNESS] = values["colorfulness_machine"] - values["colorfulness_human"]
    return values


def bench_metric_info() -> dict[str, MetricInfo]:
    """``METRICS`` (read now, so metrics added there appear) as seen here: the "human" is the truth."""
    info = {name: MetricInfo(item.label.replace("human", "truth"), item.better) for name, item in METRICS.items()}
    info[SIGNED_COLORFULNESS] = MetricInfo("colourfulness machine − truth (signed ΔCF)", None)
    return info


def model_key(identity: Any) -> str:
    """What a stored result's model is: a new version or new weights are measured again."""
    return f"{identity.name} {identity.version} {getattr(identity, 'weights_sha256', None) or '-'}"


class ResultStore:
    """``results.jsonl``: one JSON object per line, appended and flushed one at a time.

    A kill can tear only the last line; opening the store cuts that line off. An exclusive lock
    on the file keeps two runs from writing the same folder at once.
    """

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "a+b")  # noqa: SIM115 - held open for the run, closed by close()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise BenchBusyError(f"another colorbot bench is writing {path.parent}") from None
        self._cut_torn_line()
        self.done: set[tuple[str, str, str]] = set()
        self.skipped: set[tuple[str, str]] = set()
        for record in self.records():
            if record["kind"] == "result":
                self.done.add((record["photo"], record["sha256"], record["model_key"]))
            elif record["kind"] == "skipped":
                self.skipped.add((record["photo"], record["sha256"]))

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _cut_torn_line(self) -> None:
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        # Read back from the end until the last newline: only the line after it can be torn.
        position = size
        while position > 0:
            start = max(0, position - 65536)
            self._file.seek(start)
            chunk = self._file.read(position - start)
            if start + len(chunk) == size and chunk.endswith(b"\n"):
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                self._truncate(start + newline + 1, size)
                return
            position = start
        self._truncate(0, size)

    def _truncate(self, length: int, size: int) -> None:
        log.warning("%s: dropping an unfinished last line (%d bytes) left by a killed run", self.path, size - length)
        self._file.truncate(length)

    def records(self) -> Iterator[dict[str, Any]]:
        with open(self.path, encoding="utf-8") as file:
            for line in file:
                yield json.loads(line)

    def append(self, record: dict[str, Any]) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write((json.dumps(record) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        if record["kind"] == "result":
            self.done.add((record["photo"], record["sha256"], record["model_key"]))
        elif record["kind"] == "skipped":
            self.skipped.add((record["photo"], record["sha256"]))


def run_bench(
    photos: Sequence[str | Path],
    colorizers: Sequence[BenchModel],
    out_dir: Path,
    *,
    decode: Callable[[bytes], np.ndarray],
    progress: bool = False,
    gallery: int = GALLERY_PHOTOS,
) -> BenchSummary:
    """Measure every colorizer and the gray baseline on every photo; write the report into ``out_dir``.

    ``decode`` turns a file's bytes into uint8 RGB (``colorizer.images.decode``) and raises
    ValueError or OSError on a bad file. A photo that cannot be read, decoded or measured, or that
    a model fails on, is logged as one warning line and counted in ``failed``; gray photos are
    skipped (there is no colour to measure against).
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    remove_abandoned_partials(out_dir)
    entrants = _entrants(colorizers)
    summary = BenchSummary(photos=len(photos))
    run_id = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    benched: list[tuple[str, str]] = []  # (photo, sha256) of each photo with results, in order: small
    benched_set: set[tuple[str, str]] = set()
    with ResultStore(out_dir / RESULTS_FILE) as store, logging_redirect_tqdm() if progress else nullcontext():
        bench = _PhotoBench(entrants, store, out_dir, decode, run_id, summary)
        for path in tqdm(photos, desc="bench", unit="photo", disable=not progress, dynamic_ncols=True):
            key = bench.photo(Path(path), in_gallery=len(benched) < gallery)
            if key is not None and key not in benched_set:  # a photo named twice is reported once
                benched.append(key)
                benched_set.add(key)
        summary.index = write_bench_report(out_dir, store, benched, entrants, gallery, summary)
    return summary


def _entrants(colorizers: Sequence[BenchModel]) -> list[_Entrant]:
    entrants = [_Entrant(c.identity.name, str(c.identity.version), model_key(c.identity), c.colorize)
                for c in colorizers]
    entrants.append(_Entrant(GRAY_MODEL_NAME, GRAY_MODEL_VERSION, GRAY_MODEL_NAME, None))
    names = [entrant.name for entrant in entrants]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name ({', '.join(names)}); the report tells them apart by name")
    return entrants


@dataclass
class _PhotoBench:
    """What measuring one photo needs; ``photo`` does it."""

    entrants: list[_Entrant]
    store: ResultStore
    out_dir: Path
    decode: Callable[[bytes], np.ndarray]
    run_id: str
    summary: BenchSummary

    def photo(self, path: Path, *, in_gallery: bool) -> tuple[str, str] | None:
        """Measure the pairs of one photo not stored yet; its (photo, sha256) if it has results."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            return self._fail(f"{path}: cannot read: {exc.strerror or exc}")
        key = (str(path.resolve()), hashlib.sha256(data).hexdigest())
        if key in self.store.skipped:
            self.summary.skipped += 1
            return None
        todo = [entrant for entrant in self.entrants if (*key, entrant.key) not in self.store.done]
        if not todo:
            self.summary.resumed += 1
            return key
        try:
            truth = self.decode(data)
        except (ValueError, OSError) as exc:
            return self._fail(f"{path}: {exc}")
        if classify_tone(truth) is Tone.GRAY:
            log.info("%s: a gray photo, skipped: there is no colour to measure against", path)
            self.store.append({"kind": "skipped", "photo": key[0], "sha256": key[1], "reason": "gray photo",
                               "run": self.run_id})
            self.summary.skipped += 1
            return None
        try:
            reference = prepare_reference(truth, np.ones(truth.shape[:2], bool))
        except ValueError as exc:
            return self._fail(f"{path}: cannot be measured: {exc}")
        gray = to_gray(truth)
        if in_gallery:
            self._thumbnail_once(gray, key, "input")
            self._thumbnail_once(truth, key, "truth")
        failures = sum(not self._measure(path, key, entrant, gray, truth, reference, in_gallery) for entrant in todo)
        if failures:
            self.summary.failed += 1
        if failures < len(todo):
            self.summary.measured += 1
        return key if any((*key, entrant.key) in self.store.done for entrant in self.entrants) else None

    def _measure(self, path: Path, key: tuple[str, str], entrant: _Entrant, gray: np.ndarray, truth: np.ndarray,
                 reference, in_gallery: bool) -> bool:
        """Colorize, measure and store one (photo, model) pair; False (logged) if the model failed."""
        started = time.perf_counter()
        try:
            output = gray if entrant.colorize is None else entrant.colorize([gray])[0]
            seconds = time.perf_counter() - started
            values = bench_metrics(output, reference)
        except Exception as exc:  # noqa: BLE001 - one model failing must not stop the others or the run
            message = f"{path}: model {entrant.name} failed: {type(exc).__name__}: {exc}"
            log.warning("%s", message)
            self.summary.errors.append(message)
            return False
        if in_gallery:
            self._thumbnail_once(output, key, slug(entrant.name))
        self.store.append({
            "kind": "result", "photo": key[0], "sha256": key[1], "model": entrant.name, "version": entrant.version,
            "model_key": entrant.key, "seconds": round(seconds, 4), "width": int(truth.shape[1]),
            "height": int(truth.shape[0]), "metrics": values, "run": self.run_id,
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        })
        return True

    def _thumbnail_once(self, rgb: np.ndarray, key: tuple[str, str], role: str) -> None:
        if not (self.out_dir / "images" / _thumbnail_name(key, role)).exists():
            thumbnail(rgb, self.out_dir / "images", _thumbnail_name(key, role))

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        self.summary.failed += 1
        self.summary.errors.append(message)
        return None


def _thumbnail_name(key: tuple[str, str], role: str) -> str:
    """One photo's thumbnails share its content hash, so a renamed copy finds them again."""
    return f"{key[1][:16]}-{role}.jpg"


PROTOCOL = {
    "input": "the true colour photo's BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, rounded to 8 bits, "
    "as three equal channels",
    "gray baseline": "the gray input itself",
    "measured area": "every pixel, at the photo's own size (above 2 MP on area-downscaled copies, as in the "
    "Reddit report); gray photos are skipped",
    "truth": "the original colour photo plays the human colorization's part in every metric",
    "colorfulness": "Hasler & Süsstrunk 2003 with signed rg and yb, RGB 0–255; ΔCF = machine − truth, "
    "|ΔCF| is colorfulness_gap",
    "psnr_ssim": "RGB 0–255; SSIM Gaussian σ 1.5, population covariance; PSNR capped at 100 dB",
    "auc": "share of pixels with ab error ≤ t for t = 0…150, area / 150",
    "interval": "mean ± 1.96 s/√n; paired: the per-photo difference model − gray",
}


def write_bench_report(out_dir: Path, store: ResultStore, benched: list[tuple[str, str]], entrants: list[_Entrant],
                       gallery: int, counts: BenchSummary) -> Path:
    """metrics.csv, summary.json, summary.md and index.html for the stored results of these photos."""
    table = results_table(store, benched, entrants)
    info = bench_metric_info()
    names = metric_order([column for column in table.columns if column not in _ID_COLUMNS], info)
    models = [entrant.name for entrant in entrants]
    summary = summarise_bench(table, models, names, info)
    write_file(out_dir / "metrics.csv", table.to_csv(index=False))
    context = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "photos": len(benched),
        "counts": counts,
        "models": models,
        "gray": GRAY_MODEL_NAME,
        "metrics": {name: info.get(name, MetricInfo(name, None)) for name in names},
        "published": [name for name in PUBLISHED_FIGURES if name in names],
        "headline": HEADLINE_METRIC if HEADLINE_METRIC in names else None,
        "summary": summary,
        "protocol": PROTOCOL,
        "gallery": _gallery(out_dir, table, benched[:gallery], models),
    }
    record = {
        "generated": context["generated"],
        "photos": len(benched),
        "this_run": {"skipped": counts.skipped, "failed": counts.failed, "resumed": counts.resumed},
        "protocol": PROTOCOL,
        "metrics": {name: context["metrics"][name].label for name in names},
        "published_figures": context["published"],
        "models": summary,
        "gallery": context["gallery"],
    }
    write_file(out_dir / "summary.json", json.dumps(json_ready(record), indent=2))
    environment = templates()
    write_file(out_dir / "summary.md", environment.get_template("bench.md.j2").render(**context))
    index = out_dir / "index.html"
    write_file(index, environment.get_template("bench.html.j2").render(**context))
    return index


_ID_COLUMNS = ("photo", "sha256", "model", "version", "seconds", "width", "height", "run", "at")


def results_table(store: ResultStore, benched: list[tuple[str, str]], entrants: list[_Entrant]) -> pd.DataFrame:
    """One row per (photo, model) of these photos and models, from the stored results, in photo order."""
    position = {key: number for number, key in enumerate(benched)}
    model_position = {entrant.key: number for number, entrant in enumerate(entrants)}
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for record in store.records():
        if record["kind"] != "result":
            continue
        photo, model = position.get((record["photo"], record["sha256"])), model_position.get(record["model_key"])
        if photo is None or model is None or (photo, model) in rows:
            continue
        rows[photo, model] = {**{column: record.get(column) for column in _ID_COLUMNS}, **record["metrics"]}
    table = pd.DataFrame.from_records([rows[key] for key in sorted(rows)])
    return table if len(table) else pd.DataFrame(columns=list(_ID_COLUMNS))


def metric_order(names: list[str], info: dict[str, MetricInfo]) -> list[str]:
    """The headline first, then ``METRICS``' order, then anything else ``measure`` gave, by name."""
    known = [name for name in info if name in names]
    rest = sorted(name for name in names if name not in info)
    ordered = known + rest
    if HEADLINE_METRIC in ordered:
        ordered.remove(HEADLINE_METRIC)
        ordered.insert(0, HEADLINE_METRIC)
    return ordered


def summarise_bench(table: pd.DataFrame, models: list[str], names: list[str],
                    info: dict[str, MetricInfo]) -> dict[str, dict[str, Any]]:
    """Per model: n, seconds per photo, each metric's mean with its 95 % interval, and paired against gray."""
    gray = table[table["model"] == GRAY_MODEL_NAME]
    summary = {}
    for model in models:
        rows = table[table["model"] == model]
        entry: dict[str, Any] = {
            "version": str(rows["version"].iloc[0]) if len(rows) else None,
            "n": int(len(rows)),
            "seconds": mean_interval(rows["seconds"].dropna().to_numpy(dtype=float)),
            "metrics": {name: mean_interval(_finite(rows[name])) for name in names},
        }
        if model != GRAY_MODEL_NAME:
            entry["vs_gray"] = paired_against(rows, gray, names, info)
        summary[model] = entry
    return summary


def paired_against(rows: pd.DataFrame, baseline: pd.DataFrame, names: list[str],
                   info: dict[str, MetricInfo]) -> dict[str, dict[str, float]]:
    """Per metric, the per-photo difference rows − baseline: mean with interval, relative, share better."""
    pairs = rows.merge(baseline, on=["photo", "sha256"], suffixes=("", "_baseline"))
    paired = {}
    for name in names:
        ours, theirs = pairs[name].to_numpy(dtype=float), pairs[f"{name}_baseline"].to_numpy(dtype=float)
        keep = np.isfinite(ours) & np.isfinite(theirs)
        difference = ours[keep] - theirs[keep]
        entry = mean_interval(difference)
        better = info.get(name, MetricInfo(name, None)).better
        if better is not None and len(difference):  # a descriptive metric's share or ratio would mean nothing
            base_mean = float(theirs[keep].mean())
            entry["relative"] = entry["mean"] / base_mean if base_mean else math.nan
            entry["better_share"] = float(np.mean(difference < 0 if better == "lower" else difference > 0))
        paired[name] = entry
    return paired


def _finite(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _gallery(out_dir: Path, table: pd.DataFrame, keys: list[tuple[str, str]], models: list[str]) -> list[dict]:
    """The first photos' thumbnails that exist (written as each was measured) and their numbers."""
    rows = []
    for key in keys:
        def image(role: str, key: tuple[str, str] = key) -> str | None:
            name = _thumbnail_name(key, role)
            return f"images/{name}" if (out_dir / "images" / name).exists() else None

        measured = table[(table["photo"] == key[0]) & (table["sha256"] == key[1])]
        values = {str(row["model"]): {name: row[name] for name in row.index if name not in _ID_COLUMNS}
                  for _, row in measured.iterrows()}
        rows.append({"photo": key[0], "name": Path(key[0]).name, "input": image("input"), "truth": image("truth"),
                     "machines": {model: image(slug(model)) for model in models}, "values": values})
    return rows
