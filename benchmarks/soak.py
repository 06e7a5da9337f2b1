"""Soak: the whole chain over thousands of replayed posts, with faults, kills, a locked database and a
full disk, then a check that every post was completed once and nothing committed was lost.

Run by hand:  .venv/bin/python benchmarks/soak.py [--posts 5000] [--kills 6] [--seed 1] [--keep DIR]
              [--no-model-server]

What it does, in one folder:

1. serves ``--posts`` synthetic posts (gallery / composite / comment-link, small photos so that
   evaluating thousands of pairs stays affordable) from the Reddit replay server on 127.0.0.1, and
   exports a tiny residual-encoder model (as the tests' ``tiny_models`` fixture does), which it also
   serves with ``colorbot serve`` as a remote model (``url``, TensorFlow Serving's REST API), so
   every post is colorized by the local model(s), the served one and the gray baseline;
2. runs ``colorbot run --once`` (scrape → colorize → evaluate → report) as a subprocess again and
   again while faults are injected:

   * Reddit's API answers 429 (with Retry-After), 500, 503, a stall longer than PRAW's time-out or a
     dropped connection for a seeded share of requests; image hosts do the same plus truncated
     bodies and HTML, for another share;
   * some posts' images are broken for good (HTML, truncated file, zero bytes, larger than
     ``download.max_bytes``, a PNG declaring 10^10 pixels, a JPEG whose EXIF block is corrupt):
     those posts must end skipped with the reason; others fail through one whole run only: those
     must end evaluated;
   * some posts' images are awkward but valid: served with ``Content-Encoding: gzip``, a human
     colorization as an RGBA PNG with a transparent frame, a 16-bit grayscale PNG original: those
     must end in their plain twins' state, and the gzip-served and 16-bit ones with exactly their
     twins' outcome and metrics (the bytes decode to the same pixels);
   * the model server goes down: stopped before a run, and SIGKILLed while the run colorizes, then
     started again; the run must fail the colorize job with the model server's error, and no post
     may be charged an attempt or skipped for it;
   * a second process holds the database's write lock (``BEGIN IMMEDIATE``) for less than the busy
     time-out (the run must carry on, no "database is locked") and for longer (the run must say
     "database is locked" and exit non-zero);
   * the disk fills: with the WAL emptied first, the run may not write past 512 KiB into any file
     (``RLIMIT_FSIZE``, with SIGXFSZ ignored so writes fail with EFBIG the way a full disk fails
     them; a tmpfs would need mount rights CI may not have); the run must exit non-zero with the
     database's error and leave an intact database and the previous report whole;
   * the process is SIGKILLed at seeded random points (while scraping, colorizing, evaluating, or
     at a random second) ``--kills`` times and restarted;

3. then runs without faults until a run leaves nothing to do, plus one more that must change
   nothing (the fixed point).

After every run it reads the database and checks that everything committed before is still there
unchanged (posts, images, image links, colorizations, alignments, metrics), that no post went
back a state and that the report on disk is whole; at the end it checks that every post of the snapshot is stored exactly once and
finished (evaluated, or skipped with a reason), that each evaluated post has one colorization per
model and the gray baseline, one alignment and a full set of metrics, that nothing is duplicated,
that stored image bytes still hash to their key, that the report covers every measured
colorization, and ``PRAGMA integrity_check`` / ``foreign_key_check``.

It prints a table and one JSON line: posts, faults injected by kind, runs / kills / failures, wall
time, posts/s, peak RSS of the colorbot processes, of the model server and of this process (which
runs the replay server), database size, and the checks; the exit code is 1 if any check failed.

``tests/reliability/test_faults.py`` runs :func:`run_soak` at small scale; the harness lives here,
beside the other benchmarks, because it is a benchmark first, and the product packages import
neither.
"""

from __future__ import annotations

import argparse
import collections
import csv
import functools
import hashlib
import io
import json
import math
import os
import random
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import PIL.Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.scrape import compose, encode  # noqa: E402
from bot.replay import Fault, FaultPlan, ReplayServer, Snapshot, bomb_png, build_snapshot, corrupt_exif_jpeg  # noqa: E402
from colorizer.images import decode  # noqa: E402
from tests.factories import gray_copy  # noqa: E402

STATE_RANK = {"new": 0, "fetched": 1, "colorized": 2, "evaluated": 3, "replied": 4, "skipped": 5}
PENDING_STATES = ("new", "fetched", "colorized")
API_PREFIXES = ("/r/", "/comments/", "/api/info")
IMAGE_PREFIXES = ("/i/", "/preview/")
API_FAULT_KINDS = ("500", "503", "slow", "drop", "429")  # 429 last: it ends the scrape it hits
# A 429 from Reddit ends the scrape by design (the next run carries on), so it is the rarest API fault:
# at an equal share, 5,000 posts would take a dozen runs to be listed at all.
API_FAULT_WEIGHTS = (3, 3, 2, 2, 1)
IMAGE_FAULT_KINDS = ("429", "500", "503", "slow", "drop", "truncate", "html")
# Broken for good: how the image host serves the post's images, and what the skip reason must say.
PERMANENT_KINDS = {
    "html": "got text/html, not an image",
    "truncated-file": "does not decode",
    "zero-bytes": "no image header",
    "oversized": "download.max_bytes",
    "bomb": "download.max_pixels",
    "corrupt-exif": "EXIF block is corrupt",
}
# Awkward but valid: the post must end as its plain twin does. gzip: the images served with
# Content-Encoding: gzip; alpha: the colorization an RGBA PNG with a transparent frame; gray16: the
# original a 16-bit grayscale PNG of the same gray values (times 257).
BENIGN_KINDS = ("gzip", "alpha", "gray16")
# Decoded to the very pixels of their twins' images, so measured exactly as the twins are.
SAME_PIXEL_KINDS = ("gzip", "gray16")
# Kinds that replace one of two separate images (a composite has only one, holding both).
SEPARATE_IMAGE_KINDS = ("corrupt-exif", "alpha", "gray16")
COMPOSITE_LAYOUT = 1  # build_snapshot's layouts, in turn: gallery, composite, comment-link
REMOTE_MODEL = "remote"  # the name the served model is configured and stored under
MODEL_SERVER_ERROR = re.compile(r"job colorize failed: (ModelUnavailableError|RemoteColorizerError)")
# Broken through one whole run only: the post must be evaluated in the end.
TRANSIENT_KINDS = ("429", "500", "503", "truncate", "html", "drop", "slow")
DISK_FULL_ERRORS = ("disk I/O error", "database or disk is full", "File too large")
LOCKED_ERROR = "database is locked"
TINY_MODEL = {"backbone": "tiny", "weights": None, "input_size": 64, "tiny_widths": [8, 8, 16, 16, 16]}


# -- the plan -----------------------------------------------------------------------------------


@dataclass
class SoakPlan:
    """Everything a soak does; the defaults are the 5,000-post run of ``benchmarks/soak.py``."""

    posts: int = 5000
    distinct: int = 100  # different scenes, reused under new post ids (images are stored once per content)
    width: int = 128  # evaluation dominates the soak: at 128 × 96 a post costs half what it does at 192 × 144
    height: int = 96
    seed: int = 1
    kills: int = 6
    api_fault_rate: float = 0.03  # share of Reddit API requests answered with a fault
    image_fault_rate: float = 0.03  # share of image requests answered with a fault
    broken_per_kind: int = 3  # posts per permanent and per transient breakage
    busy_timeout_s: float = 4.0  # sqlite busy time-out, via the database URL's ?timeout=
    short_lock_s: float = 1.5
    long_lock_s: float = 10.0
    disk_room_bytes: int = 512 * 1024  # how far the full-disk run's files may grow
    max_attempts: int = 3  # reddit.max_attempts and eval.max_attempts
    max_fault_runs: int = 0  # 0: kills * 2 + 6
    max_final_runs: int = 8
    run_timeout_s: float = 3600.0
    models: list[Path] = field(default_factory=list)  # exported models; empty: export one tiny model
    remote_model: bool = True  # also serve models[0] with `colorbot serve`, configured by url

    def fault_run_cap(self) -> int:
        return self.max_fault_runs or self.kills * 2 + 6 + (2 if self.remote_model else 0)


@dataclass
class Trigger:
    """A point in a run: when ``table`` has grown by ``rows`` since ``baseline``, or ``seconds`` after start."""

    table: str | None = None
    rows: int = 0
    seconds: float | None = None

    def describe(self) -> str:
        return f"{self.table} +{self.rows}" if self.table else f"{self.seconds:.1f} s"


@dataclass
class RunSpec:
    purpose: str  # "kill", "short-lock", "long-lock", "disk-full", "model-down", "model-crash", "final"
    kill: Trigger | None = None
    lock: Trigger | None = None
    lock_s: float = 0.0
    fsize_bytes: int | None = None
    crash_server: Trigger | None = None  # when to SIGKILL the model server during the run


@dataclass
class RunRecord:
    number: int
    purpose: str
    exit_code: int | None
    killed: bool
    seconds: float
    peak_rss_mib: float
    trigger: str = ""
    lock: str = ""
    server_crashed: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class SoakResult:
    plan: dict[str, Any]
    posts: int
    runs: list[RunRecord]
    faults: dict[str, int]
    kills: int
    wall_s: float
    final_states: dict[str, int]
    skip_reasons: dict[str, int]
    counts: dict[str, int]
    colorbot_peak_rss_mib: float
    children_peak_rss_mib: float
    harness_peak_rss_mib: float
    db_bytes: int
    checks: list[Check]
    work_dir: str
    model_server: dict[str, Any] = field(default_factory=dict)  # starts, stops by signal, peak RSS

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def figures(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "wall_s": round(self.wall_s, 1),
            "posts_per_s": round(self.posts / self.wall_s, 2) if self.wall_s else None,
            "runs": len(self.runs),
            "kills": self.kills,
            "failed_runs": sum(1 for run in self.runs if not run.killed and run.exit_code != 0),
            "faults": self.faults,
            "final_states": self.final_states,
            "skip_reasons": self.skip_reasons,
            "counts": self.counts,
            "colorbot_peak_rss_mib": round(self.colorbot_peak_rss_mib, 1),
            "children_peak_rss_mib": round(self.children_peak_rss_mib, 1),
            "harness_peak_rss_mib": round(self.harness_peak_rss_mib, 1),
            "model_server": self.model_server,
            "db_mib": round(self.db_bytes / 2**20, 1),
            "checks_failed": [f"{check.name}: {check.detail}" for check in self.failed_checks],
            "ok": self.ok,
        }


# -- the snapshot -------------------------------------------------------------------------------


def textured_scene(seed: int, width: int, height: int) -> np.ndarray:
    """A colour photo with enough corners for SIFT to register most of them even at 128 × 96."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([90 + 0.6 * y * 240 / height, 140 + 0.1 * x, 200 - 0.6 * y * 240 / height], axis=-1)
    for _ in range(max(20, width * height // 1200)):
        h, w = rng.integers(6, max(8, height // 5)), rng.integers(6, max(8, width // 7))
        y0, x0 = rng.integers(0, height - h), rng.integers(0, width - w)
        rgb[y0 : y0 + h, x0 : x0 + w] = rng.integers(30, 230, 3)
    rgb += rng.normal(0, 2.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@dataclass
class Designed:
    """Posts broken on purpose: post id -> kind."""

    permanent: dict[str, str] = field(default_factory=dict)
    transient: dict[str, str] = field(default_factory=dict)
    benign: dict[str, str] = field(default_factory=dict)

    def all(self) -> set[str]:
        return set(self.permanent) | set(self.transient) | set(self.benign)


def post_of_path(path: str) -> str | None:
    """The post id a replay request is about (image names and ids start with the 6-character id)."""
    for prefix in IMAGE_PREFIXES + ("/comments/",):
        if path.startswith(prefix):
            return path[len(prefix) : len(prefix) + 6]
    return None


LAYOUT_COUNT = 3  # build_snapshot's default layouts, in turn: gallery, composite, comment-link
FRAME = 4  # pixels of transparent frame round an alpha colorization


def gray16_png(gray_jpeg: bytes) -> bytes:
    """A 16-bit grayscale PNG of the JPEG's gray values times 257: scaled back to 8 bits, the same pixels."""
    levels = decode(gray_jpeg)[:, :, 0].astype(np.uint16) * 257
    buffer = io.BytesIO()
    PIL.Image.fromarray(levels).save(buffer, format="PNG")
    return buffer.getvalue()


def alpha_png(colorized: bytes) -> bytes:
    """An RGBA PNG of the colorization, its frame transparent over black (which white must replace)."""
    rgb = decode(colorized).copy()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[FRAME:-FRAME, FRAME:-FRAME] = 255
    rgb[alpha == 0] = 0
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def design_breakage(plan: SoakPlan) -> Designed:
    """Which posts are broken, and how: seeded; the kinds that need two separate images get posts
    whose layout has them."""
    rng = random.Random(plan.seed)
    designed = Designed()
    # ("html" is both a permanent and a transient kind: its posts are dealt out once for each.)
    every = [(designed.permanent, kind) for kind in PERMANENT_KINDS] + [
        (designed.transient, kind) for kind in TRANSIENT_KINDS] + [(designed.benign, kind) for kind in BENIGN_KINDS]
    separate_kinds = [entry for entry in every if entry[1] in SEPARATE_IMAGE_KINDS]
    other_kinds = [entry for entry in every if entry[1] not in SEPARATE_IMAGE_KINDS]
    if plan.broken_per_kind * len(every) > plan.posts // 2:
        raise ValueError(f"{plan.posts} posts are too few for {plan.broken_per_kind} broken posts per kind")
    separate = [n for n in range(plan.posts) if n % LAYOUT_COUNT != COMPOSITE_LAYOUT]
    chosen_separate = rng.sample(separate, plan.broken_per_kind * len(separate_kinds))
    rest = sorted(set(range(plan.posts)) - set(chosen_separate))
    chosen_other = rng.sample(rest, plan.broken_per_kind * len(other_kinds))
    for numbers, kinds in ((chosen_separate, separate_kinds), (chosen_other, other_kinds)):
        dealt = (entry for entry in kinds for _ in range(plan.broken_per_kind))
        for number, (group, kind) in zip(numbers, dealt):
            group[f"p{number:05x}"] = kind
    return designed


def build_soak_snapshot(plan: SoakPlan) -> tuple[Snapshot, Designed]:
    scenes = [textured_scene(plan.seed * 100_000 + n, plan.width, plan.height) for n in range(plan.distinct)]
    pairs = [(encode(gray_copy(rgb)), encode(rgb)) for rgb in scenes]
    designed = design_breakage(plan)
    awkward = {  # (post number, kind) -> its (original, colorization), encoded once per scene
        kind: functools.lru_cache(maxsize=None)(make)
        for kind, make in {
            "corrupt-exif": lambda scene: tuple(corrupt_exif_jpeg(decode(data)) for data in pairs[scene]),
            "alpha": lambda scene: (pairs[scene][0], alpha_png(pairs[scene][1])),
            "gray16": lambda scene: (gray16_png(pairs[scene][0]), pairs[scene][1]),
        }.items()
    }

    def pair_of(number: int) -> tuple[bytes, bytes]:
        kind = designed.permanent.get(f"p{number:05x}") or designed.benign.get(f"p{number:05x}")
        scene = number % plan.distinct
        return awkward[kind](scene) if kind in awkward else pairs[scene]

    snapshot = build_snapshot((pair_of(n) for n in range(plan.posts)),
                              compose=functools.lru_cache(maxsize=None)(compose))  # same pair, same composite
    oversized = encode(scenes[0]) + bytes(2 * 1024 * 1024)  # a real JPEG, padded past download.max_bytes
    bomb = bomb_png(100_000, 100_000, padding=0)
    for name in list(snapshot.images):
        kind = designed.permanent.get(name[:6])
        if kind == "truncated-file":
            snapshot.images[name] = snapshot.images[name][: len(snapshot.images[name]) // 2]
        elif kind == "zero-bytes":
            snapshot.images[name] = b""
        elif kind == "oversized":
            snapshot.images[name] = oversized
        elif kind == "bomb":
            snapshot.images[name] = bomb
    return snapshot, designed


# -- faults ---------------------------------------------------------------------------------------


class SoakFaults(FaultPlan):
    """The replay server's faults during a soak, counted by kind.

    * ``html`` for ever on the images of posts designed broken that way (the host serves a page);
    * designed transient breakage: every request for the post's images fails during the first run
      that asks for one, and none after;
    * a seeded share of the other API and image requests fails at random; until each kind has been
      injected once, every other request of its channel gets the next missing kind, so that a
      small soak sees every kind too;
    * ``gzip`` on every request for the images of posts designed to be served gzip-encoded (not a
      fault: a valid answer, which the downloader must take as one).
    """

    def __init__(self, plan: SoakPlan, designed: Designed):
        super().__init__()
        self.plan = plan
        self.designed = designed
        self.random_on = True
        self.counts: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(plan.seed * 7919)
        self._missing = {"api": list(API_FAULT_KINDS), "image": list(IMAGE_FAULT_KINDS)}
        self._seen = {"api": 0, "image": 0}
        self._transient_hit: set[str] = set()
        self._transient_done: set[str] = set()
        self._guard = threading.Lock()
        self.api_slow_s = 2.5
        self.image_slow_s = 1.5

    def end_run(self) -> None:
        """A run ended: transient breakage that was hit in it is over."""
        with self._guard:
            self._transient_done |= self._transient_hit

    def take(self, path: str, query: str = "") -> Fault | None:
        post = post_of_path(path)
        with self._guard:
            if post is not None and path.startswith(IMAGE_PREFIXES):
                if self.designed.permanent.get(post) == "html":
                    return self._count("designed permanent html", Fault("html"))
                if self.designed.benign.get(post) == "gzip":
                    return self._count("designed benign gzip", Fault("gzip"))
                kind = self.designed.transient.get(post)
                if kind is not None and post not in self._transient_done:
                    self._transient_hit.add(post)
                    # A Retry-After longer than download.max_retry_after_s defers the post at once.
                    return self._count(f"designed transient {kind}",
                                       Fault(kind, retry_after=30.0, delay_s=self.image_slow_s))
            if not self.random_on or post in self.designed.all():
                return None
            channel = "api" if path.startswith(API_PREFIXES) else "image" if path.startswith(IMAGE_PREFIXES) else None
            if channel is None:
                return None
            self._seen[channel] += 1
            rate = self.plan.api_fault_rate if channel == "api" else self.plan.image_fault_rate
            kinds = API_FAULT_KINDS if channel == "api" else IMAGE_FAULT_KINDS
            weights = API_FAULT_WEIGHTS if channel == "api" else None
            if self._missing[channel] and self._seen[channel] % 2 == 0:
                kind = self._missing[channel].pop(0)
            elif self._rng.random() < rate:
                kind = self._rng.choices(kinds, weights)[0]
                if kind in self._missing[channel]:
                    self._missing[channel].remove(kind)
            else:
                return None
            slow = self.api_slow_s if channel == "api" else self.image_slow_s
            retry_after = 1.0 if channel == "api" else 0.2
            return self._count(f"{channel} {kind}", Fault(kind, retry_after=retry_after, delay_s=slow))

    def _count(self, name: str, fault: Fault) -> Fault:
        self.counts[name] += 1
        return fault


# -- the database, read from outside ------------------------------------------------------------

PROGRESS_TABLES = ("job_runs", "posts", "post_images", "colorizations", "alignments", "metrics")


def connect_readonly(db: Path) -> sqlite3.Connection:
    # A plain deferred reader: in WAL mode it never blocks the writers it watches.
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60, isolation_level=None)


def progress(conn: sqlite3.Connection) -> dict[str, int]:
    found = {}
    for table in PROGRESS_TABLES:
        try:
            found[table] = conn.execute(f"select coalesce(max(id), 0) from {table}").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            found[table] = 0
    return found


def remaining_work(db: Path, posts: int) -> dict[str, int]:
    """Rows the chain still has to add: posts to store, posts to colorize, posts to evaluate."""
    if not db.exists():
        return {"posts": posts, "colorizations": posts, "alignments": posts}
    with connect_readonly(db) as conn:
        try:
            stored = conn.execute("select count(*) from posts").fetchone()[0]
            states = dict(conn.execute("select state, count(*) from posts group by state").fetchall())
        except sqlite3.OperationalError:
            return {"posts": posts, "colorizations": posts, "alignments": posts}
    to_colorize = states.get("new", 0) + states.get("fetched", 0) + posts - stored
    return {
        "posts": posts - stored,
        "colorizations": to_colorize,
        "alignments": to_colorize + states.get("colorized", 0),
    }


@dataclass
class Committed:
    """Everything committed, keyed so that a later read can tell whether any of it was lost or changed."""

    posts: dict[str, tuple[int, str]]
    images: dict[int, str]
    post_images: dict[int, tuple[int, int, str]]
    colorizations: dict[int, tuple[int, int, int]]
    alignments: dict[int, tuple[int, int]]
    metric_ids: np.ndarray
    metric_rows: np.ndarray  # (colorization_id, hash of name, value) per id, as float64

    def counts(self) -> dict[str, int]:
        return {
            "posts": len(self.posts),
            "images": len(self.images),
            "post_images": len(self.post_images),
            "colorizations": len(self.colorizations),
            "alignments": len(self.alignments),
            "metrics": len(self.metric_ids),
        }


def _name_code(name: str) -> float:
    return float(int.from_bytes(hashlib.sha1(name.encode()).digest()[:6], "big"))


def read_committed(db: Path) -> Committed:
    with connect_readonly(db) as conn:
        conn.execute("begin")  # one snapshot for every table
        # A run killed while it created the database leaves some tables, or none, yet: those hold nothing.
        tables = {name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")}

        def rows(table: str, columns: str) -> list[tuple]:
            if table not in tables:
                return []
            return conn.execute(f"select {columns} from {table} order by id").fetchall()

        posts = {rid: (pid, state) for pid, rid, state in rows("posts", "id, reddit_id, state")}
        images = dict(rows("images", "id, sha256"))
        links = {row[0]: tuple(row[1:]) for row in rows("post_images", "id, post_id, image_id, role")}
        colorizations = {row[0]: tuple(row[1:]) for row in rows("colorizations", "id, post_id, model_id, image_id")}
        alignments = {row[0]: (row[1], int(row[2])) for row in rows("alignments", "id, post_id, accepted")}
        codes: dict[str, float] = {}
        ids, metric_rows = [], []
        for metric_id, colorization_id, name, value in rows("metrics", "id, colorization_id, name, value"):
            code = codes.get(name)
            if code is None:
                code = codes[name] = _name_code(name)
            ids.append(metric_id)
            metric_rows.append((colorization_id, code, value))
        conn.execute("rollback")
    return Committed(posts, images, links, colorizations, alignments,
                     np.asarray(ids, dtype=np.int64), np.asarray(metric_rows, dtype=np.float64).reshape(-1, 3))


def losses(before: Committed, after: Committed) -> list[str]:
    """What was committed ``before`` and is missing or different ``after`` (empty: nothing lost)."""
    problems = []
    for name in ("images", "post_images", "colorizations", "alignments"):
        old, new = getattr(before, name), getattr(after, name)
        gone = [key for key, value in old.items() if new.get(key) != value]
        if gone:
            problems.append(f"{len(gone)} {name} rows lost or changed, e.g. id {gone[0]}: {old[gone[0]]} -> {new.get(gone[0])}")
    moved = [rid for rid, (pid, _state) in before.posts.items() if after.posts.get(rid, (None,))[0] != pid]
    if moved:
        problems.append(f"{len(moved)} posts lost or renumbered, e.g. {moved[0]}")
    backwards = [
        f"{rid} {state}->{after.posts[rid][1]}"
        for rid, (_pid, state) in before.posts.items()
        if rid in after.posts and STATE_RANK[after.posts[rid][1]] < STATE_RANK[state]
    ]
    if backwards:
        problems.append(f"{len(backwards)} posts went back a state, e.g. {backwards[0]}")
    if len(before.metric_ids):
        where = np.searchsorted(after.metric_ids, before.metric_ids)
        where = np.minimum(where, max(len(after.metric_ids) - 1, 0))
        if len(after.metric_ids) == 0:
            problems.append(f"{len(before.metric_ids)} metrics lost")
        else:
            found = after.metric_ids[where] == before.metric_ids
            same = found & np.all(after.metric_rows[where] == before.metric_rows, axis=1)
            if not same.all():
                problems.append(f"{int((~same).sum())} metrics lost or changed, e.g. id {before.metric_ids[~same][0]}")
    return problems


def post_ledger(db: Path) -> dict[str, tuple[int, str | None, str | None]]:
    """Each post's attempts, last error and skip reason."""
    with connect_readonly(db) as conn:
        return {rid: (attempts, error, reason) for rid, attempts, error, reason
                in conn.execute("select reddit_id, attempts, last_error, skip_reason from posts")}


def integrity(db: Path) -> tuple[str, int]:
    """``PRAGMA integrity_check``'s answer and the number of foreign-key violations."""
    with sqlite3.connect(db, timeout=60) as conn:
        answer = "; ".join(row[0] for row in conn.execute("pragma integrity_check"))
        violations = len(conn.execute("pragma foreign_key_check").fetchall())
    return answer, violations


# -- running colorbot ---------------------------------------------------------------------------

LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
print("released", flush=True)
"""


def peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # Ignored, SIGXFSZ no longer kills the process: the write fails with EFBIG, as on a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _drain(stream, sink: io.TextIOBase) -> None:
    for line in stream:
        sink.write(line)
    sink.flush()


class ModelServer:
    """``colorbot serve`` of one exported model on a port of its own, stopped and started again.

    The port is kept across restarts, since the configuration names it: a restarted server is the
    same model at the same address, as after a real outage.
    """

    def __init__(self, model: Path, logs: Path, start_timeout_s: float = 300.0):
        self.model = model
        self.logs = logs
        self.start_timeout_s = start_timeout_s
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.stops: collections.Counter[str] = collections.Counter()
        self.peak_kib = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.logs.mkdir(exist_ok=True)
        log_path = self.logs / f"model-server-{self.starts:02d}.log"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("COLORBOT_CONFIG", None)
        with open(log_path, "w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "colorbot", "serve", "--model", str(self.model), "--name", REMOTE_MODEL,
                 "--port", str(self.port)], cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"colorbot serve exited {self.process.returncode}: {_tail(log_path.read_text())}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.process.kill()
        raise RuntimeError(f"colorbot serve did not answer /healthz within {self.start_timeout_s:.0f} s")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: an operator's stop (it drains what it accepted); SIGKILL: a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        self.peak_kib = max(self.peak_kib, peak_rss_kib(self.process.pid))
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stops[how.name] += 1

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Soak:
    def __init__(self, plan: SoakPlan, work: Path, log: Callable[[str], None]):
        self.plan = plan
        self.work = work
        self.log = log
        self.db = work / "colorbot.db"
        self.rng = random.Random(plan.seed * 31)
        self.runs: list[RunRecord] = []
        self.checks: list[Check] = []
        self.committed: Committed | None = None
        self.colorbot_peak_kib = 0
        self.model_server: ModelServer | None = None

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        if not ok:
            self.log(f"  CHECK FAILED {name}: {detail}")
        return bool(ok)

    # -- configuration --------------------------------------------------------------------------

    def write_config(self, server: ReplayServer, models: list[Path]) -> Path:
        reddit = server.reddit_settings(limit=self.plan.posts, timeout_s=2.0, max_attempts=self.plan.max_attempts)
        download = server.download_settings(timeout_s=1.0, retries=1, backoff_s=0.05, max_retry_after_s=2.0,
                                            max_bytes=1024 * 1024, max_pixels=4_000_000)
        lines = [
            "[database]", f'url = "sqlite:///{self.db}?timeout={self.plan.busy_timeout_s:g}"',
            "[reddit]", *(f"{key} = {json.dumps(value)}" for key, value in reddit.items()),
            "[download]", *(f"{key} = {json.dumps(value)}" for key, value in download.items()),
            "[eval]", f"max_attempts = {self.plan.max_attempts}",
            "[pipeline]", f'report_dir = "{self.work / "report"}"',
        ]
        for model in models:
            lines += ["[[colorizer.models]]", f'name = "{model.name}"', f'path = "{model}"']
        if self.model_server is not None:
            lines += ["[[colorizer.models]]", f'name = "{REMOTE_MODEL}"', f'url = "{self.model_server.url}"']
        config = self.work / "colorbot.toml"
        config.write_text("\n".join(lines) + "\n")
        return config

    # -- one run --------------------------------------------------------------------------------

    def run(self, config: Path, spec: RunSpec) -> tuple[RunRecord, str]:
        number = len(self.runs) + 1
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"run-{number:02d}-{spec.purpose}.log"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        env.pop("COLORBOT_CONFIG", None)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "colorbot", "--config", str(config), "run", "--once"],
            cwd=self.work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=_limit_file_size(spec.fsize_bytes) if spec.fsize_bytes else None,
        )
        # The child's output goes through this process, whose files have no size limit.
        with open(log_path, "w") as sink:
            drain = threading.Thread(target=_drain, args=(process.stdout, sink), daemon=True)
            drain.start()
            record = RunRecord(number, spec.purpose, None, False, 0.0, 0.0,
                               trigger=spec.kill.describe() if spec.kill else "")
            if spec.fsize_bytes:
                record.notes.append(f"files may grow to {spec.fsize_bytes} bytes ({self.files()})")
            self._watch(process, spec, record, started)
            drain.join(timeout=60)
        record.seconds = time.monotonic() - started
        self.runs.append(record)
        output = log_path.read_text(errors="replace")
        state = "killed" if record.killed else f"exit {record.exit_code}"
        self.log(f"run {number:2d} {spec.purpose:<10} {state:<8} {record.seconds:7.1f} s  "
                 f"rss {record.peak_rss_mib:6.0f} MiB  {record.trigger} {record.lock} {'; '.join(record.notes)}".rstrip())
        return record, output

    def _watch(self, process: subprocess.Popen, spec: RunSpec, record: RunRecord, started: float) -> None:
        reader = None
        baseline: dict[str, int] | None = None
        lock_holder: subprocess.Popen | None = None
        lock_times: dict[str, float] = {}
        kill_armed = spec.lock is None  # with a lock, the kill point counts from the lock's release
        peak = 0
        deadline = started + self.plan.run_timeout_s
        while True:
            peak = max(peak, peak_rss_kib(process.pid))
            if process.poll() is not None:
                break
            now = time.monotonic()
            if now > deadline:
                process.kill()
                record.notes.append("timed out")
                process.wait()
                break
            if reader is None and self.db.exists():
                try:
                    reader = connect_readonly(self.db)
                except sqlite3.OperationalError:
                    reader = None
            current = progress(reader) if reader is not None else dict.fromkeys(PROGRESS_TABLES, 0)
            if baseline is None:
                baseline = dict(current)
            if spec.lock is not None and lock_holder is None and _reached(spec.lock, current, baseline, now - started):
                lock_holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(self.db), f"{spec.lock_s}"],
                                               stdout=subprocess.PIPE, text=True)
                threading.Thread(target=_lock_events, args=(lock_holder, lock_times), daemon=True).start()
                record.lock = f"lock {spec.lock_s:g} s at {spec.lock.describe()}"
            if lock_holder is not None and not kill_armed and lock_holder.poll() is not None:
                kill_armed, baseline = True, dict(current)
                started_kill = now
            if spec.crash_server is not None and not record.server_crashed and self.model_server is not None \
                    and _reached(spec.crash_server, current, baseline, now - started):
                self.model_server.stop(signal.SIGKILL)
                record.server_crashed = True
                record.notes.append(f"model server killed at {spec.crash_server.describe()}")
            if spec.kill is not None and kill_armed:
                since = now - (started if spec.lock is None else started_kill)
                if _reached(spec.kill, current, baseline, since):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    record.killed = True
                    break
            time.sleep(0.03)
        if lock_holder is not None:
            lock_holder.wait(timeout=self.plan.long_lock_s + 130)
            if "locked" in lock_times:
                record.lock += f" (held {lock_times.get('released', time.monotonic()) - lock_times['locked']:.1f} s)"
        if reader is not None:
            reader.close()
        record.exit_code = process.returncode
        record.peak_rss_mib = peak / 1024
        self.colorbot_peak_kib = max(self.colorbot_peak_kib, peak)

    # -- after each run -----------------------------------------------------------------------

    def after_run(self, record: RunRecord) -> Committed | None:
        """Check that nothing committed before was lost, and remember what is committed now."""
        if not self.db.exists():
            return None
        now = read_committed(self.db)
        problem = report_problem(self.work / "report")
        self.check(f"run {record.number}: the report on disk is whole", problem is None, problem or "")
        if self.committed is not None:
            problems = losses(self.committed, now)
            self.check(f"run {record.number}: nothing committed before was lost", not problems, "; ".join(problems))
        self.committed = now
        return now

    # -- the plan of runs ---------------------------------------------------------------------

    def kill_trigger(self) -> Trigger:
        """A seeded random point: part-way through the work left in one step, or a random second."""
        left = {table: rows for table, rows in remaining_work(self.db, self.plan.posts).items() if rows > 0}
        choices = list(left) + ["seconds"]
        choice = self.rng.choice(choices)
        if choice == "seconds":
            return Trigger(seconds=self.rng.uniform(0.5, 6.0))  # start-up, migrations, the listing, model loading
        models = len(self.plan.models) + (self.model_server is not None)
        rows = left[choice] * (models if choice == "colorizations" else 1)
        return Trigger(table=choice, rows=self.rng.randint(1, max(1, int(rows * 0.6))))

    def fault_runs(self) -> list[RunSpec]:
        """The first runs, in order; more kill runs follow until ``kills`` kills have landed.

        The full disk comes early, while most posts are still to be stored: a run with nothing left
        to do writes too little to fill it. The locks are taken as the scrape starts: it writes
        within moments (colorize would first spend seconds loading models, perhaps outlasting a lock).
        """
        runs = [
            RunSpec("kill"),
            RunSpec("disk-full"),
            RunSpec("short-lock", lock=Trigger(table="job_runs", rows=1), lock_s=self.plan.short_lock_s),
            RunSpec("long-lock", lock=Trigger(table="job_runs", rows=1), lock_s=self.plan.long_lock_s),
            RunSpec("kill"),
        ]
        if self.model_server is not None:
            # A crash while colorizing comes early, while most posts are still to colorize; the
            # server is killed within the run's first colorizations, so that posts are left to ask it.
            runs.insert(2, RunSpec("model-crash", crash_server=Trigger(table="colorizations", rows=self.rng.randint(1, 3))))
            runs.insert(5, RunSpec("model-down"))
        return runs

    def healthy_twin(self, post_id: str, designed: Designed) -> str | None:
        """An unbroken post with the same photos in the same layout (what the post should end as)."""
        number, cycle = int(post_id[1:], 16), math.lcm(self.plan.distinct, LAYOUT_COUNT)
        for other in range(number % cycle, self.plan.posts, cycle):
            twin = f"p{other:05x}"
            if twin not in designed.all():
                return twin
        return None

    def fsize_limit(self) -> int:
        """The file size the full-disk run may not write past.

        The WAL is emptied first (a TRUNCATE checkpoint, no run being in progress), so the run's
        commits have ``disk_room_bytes`` of WAL before writes fail; the database file cannot grow
        (or be checkpointed into past that offset) at all.
        """
        with sqlite3.connect(self.db, timeout=60) as conn:
            conn.execute("pragma wal_checkpoint(TRUNCATE)")
        return self.plan.disk_room_bytes

    def files(self) -> str:
        sizes = {path.name.rsplit(".", 1)[-1]: path.stat().st_size for path in self.work.glob(f"{self.db.name}*")}
        return " ".join(f"{name} {size}" for name, size in sorted(sizes.items()))

    def expect(self, record: RunRecord, output: str) -> None:
        """What a run with a database fault must have shown."""
        if record.purpose == "short-lock":
            self.check(f"run {record.number}: a lock shorter than the busy time-out is waited out",
                       LOCKED_ERROR not in output and "held" in record.lock, _tail(output))
        elif record.purpose == "long-lock":
            self.check(f"run {record.number}: a lock longer than the busy time-out fails the run clearly",
                       LOCKED_ERROR in output and record.exit_code not in (0, None) and not record.killed,
                       f"exit {record.exit_code}; {_tail(output)}")
        elif record.purpose == "disk-full":
            said = [error for error in DISK_FULL_ERRORS if error in output]
            self.check(f"run {record.number}: a full disk fails the run with the database's error",
                       bool(said) and record.exit_code not in (0, None) and not record.killed,
                       f"exit {record.exit_code}; {_tail(output)}")
            answer, violations = integrity(self.db)
            self.check(f"run {record.number}: the database is intact after the full disk",
                       answer == "ok" and violations == 0, f"{answer}; {violations} foreign-key violations")

    def expect_model_outage(self, record: RunRecord, output: str, before: dict[str, tuple]) -> bool:
        """A run the model server was down for must fail the colorize job with its error and charge
        no post for it; False if the outage did not land (the server was to crash, but the run
        colorized nothing)."""
        if record.purpose == "model-crash" and not record.server_crashed:
            record.notes.append("no colorization in this run: the model server was not killed")
            return False
        said = MODEL_SERVER_ERROR.search(output)
        self.check(f"run {record.number}: a model-server outage fails the colorize job with its error",
                   said is not None and record.exit_code not in (0, None) and not record.killed,
                   f"exit {record.exit_code}; {_tail(output)}")
        after = post_ledger(self.db)
        server = self.model_server.url.removeprefix("http://") if self.model_server else REMOTE_MODEL

        def blames_model(text: str | None) -> bool:
            # colorbot.pipeline's words for a model's failure on a post, or the server's address
            return bool(text) and (text.startswith("colorize:") or "colorizing failed" in text or server in text)

        charged = [rid for rid, (attempts, error, _reason) in after.items()
                   if attempts > before.get(rid, (0, None, None))[0] and blames_model(error)]
        skipped = [rid for rid, (_attempts, _error, reason) in after.items()
                   if blames_model(reason) and not blames_model(before.get(rid, (0, None, None))[2])]
        self.check(f"run {record.number}: no post is charged an attempt or skipped for the model-server outage",
                   not charged and not skipped, f"{len(charged)} charged, e.g. {charged[:3]}; "
                   f"{len(skipped)} skipped, e.g. {skipped[:3]}")
        return True

    def pending(self) -> int:
        with connect_readonly(self.db) as conn:
            waiting = conn.execute(
                f"select count(*) from posts where state in ({','.join('?' * len(PENDING_STATES))})", PENDING_STATES
            ).fetchone()[0]
            unmeasured = conn.execute(
                "select count(*) from colorizations c join alignments a on a.post_id = c.post_id "
                "join posts p on p.id = c.post_id "
                "where a.accepted and p.attempts < ? and not exists (select 1 from metrics m where m.colorization_id = c.id)",
                (self.plan.max_attempts,),
            ).fetchone()[0]
            stored = conn.execute("select count(*) from posts").fetchone()[0]
        return waiting + unmeasured + (self.plan.posts - stored)


def report_problem(folder: Path, *, images: bool = False) -> str | None:
    """Why the report folder is not a whole report (None: it is, or there is none yet)."""
    index = folder / "index.html"
    if not index.exists():
        return None
    html = index.read_text(errors="replace")
    if not html.rstrip().endswith("</html>"):
        return f"index.html is cut short ({len(html)} characters)"
    with open(folder / "metrics.csv", newline="") as table:
        widths = {len(row) for row in csv.reader(table)}
    if len(widths) > 1:
        return f"metrics.csv has rows of {sorted(widths)} fields"
    if images:
        missing = [name for name in re.findall(r'src="((?:images|plots)/[^"]+)"', html) if not (folder / name).is_file()]
        if missing:
            return f"{len(missing)} images of index.html are missing, e.g. {missing[0]}"
    return None


def _reached(trigger: Trigger, current: dict[str, int], baseline: dict[str, int], elapsed: float) -> bool:
    if trigger.table is not None:
        return current[trigger.table] - baseline[trigger.table] >= trigger.rows
    return trigger.seconds is not None and elapsed >= trigger.seconds


def _lock_events(holder: subprocess.Popen, times: dict[str, float]) -> None:
    for line in holder.stdout:
        times[line.strip()] = time.monotonic()


def _tail(output: str, lines: int = 6) -> str:
    return " | ".join(output.strip().splitlines()[-lines:])[-1500:]


# -- the final checks ---------------------------------------------------------------------------


def final_checks(soak: Soak, snapshot_ids: set[str], designed: Designed, model_names: set[str]) -> dict[str, Any]:
    db, check = soak.db, soak.check
    with connect_readonly(db) as conn:
        def rows(sql: str, *args: Any) -> list[tuple]:
            return conn.execute(sql, args).fetchall()

        stored = rows("select reddit_id from posts")
        ids = [rid for (rid,) in stored]
        check("every post of the snapshot stored exactly once",
              len(ids) == len(set(ids)) and set(ids) == snapshot_ids,
              f"{len(ids)} rows, {len(set(ids))} distinct, {len(snapshot_ids - set(ids))} missing, "
              f"{len(set(ids) - snapshot_ids)} unknown")
        states = dict(rows("select state, count(*) from posts group by state"))
        unfinished = rows("select reddit_id, state, last_error from posts where state not in ('evaluated', 'skipped') limit 3")
        check("every post finished (evaluated, or skipped)", not unfinished, f"{states}; e.g. {unfinished}")
        unexplained = rows("select reddit_id from posts where state = 'skipped' and coalesce(skip_reason, '') = ''")
        check("every skipped post says why", not unexplained, f"{len(unexplained)}, e.g. {unexplained[:3]}")
        post_state = dict(rows("select reddit_id, state from posts"))
        reasons = dict(rows("select reddit_id, coalesce(skip_reason, '') from posts"))
        wrong = [
            (rid, kind, post_state.get(rid), reasons.get(rid, "")[:120])
            for rid, kind in designed.permanent.items()
            if post_state.get(rid) != "skipped" or PERMANENT_KINDS[kind] not in reasons.get(rid, "")
        ]
        check("posts whose images are broken for good are skipped with the reason", not wrong, f"{wrong[:3]}")
        wrong = []
        for rid, kind in designed.transient.items():
            twin = soak.healthy_twin(rid, designed)
            expected = (post_state.get(twin), reasons.get(twin)) if twin else ("evaluated", reasons.get(rid))
            if (post_state.get(rid), reasons.get(rid)) != expected:
                wrong.append((rid, kind, post_state.get(rid), reasons.get(rid, "")[:100], "twin", twin, expected))
        check("posts whose images failed through one run end as their unbroken twins do", not wrong, f"{wrong[:3]}")
        wrong = []
        for rid, kind in designed.benign.items():
            twin = soak.healthy_twin(rid, designed)
            expected = (post_state.get(twin), reasons.get(twin)) if twin else ("evaluated", "")
            # The alpha post's white frame is other pixels than its twin's: whether its alignment
            # is accepted may differ (a 4-pixel frame at 128 x 96 cost one seeded post its inliers).
            same = (lambda outcome: outcome) if kind in SAME_PIXEL_KINDS else (lambda outcome: outcome[0])
            if same((post_state.get(rid), reasons.get(rid))) != same(expected):
                wrong.append((rid, kind, post_state.get(rid), reasons.get(rid, "")[:100], "twin", twin, expected))
            elif twin and kind in SAME_PIXEL_KINDS and measured_as(conn, rid) != measured_as(conn, twin):
                wrong.append((rid, kind, "measured otherwise than its twin", twin))
        check("gzip-served, alpha and 16-bit posts end in their plain twins' state (gzip, 16-bit: measured the same)",
              not wrong, f"{wrong[:3]}")
        blamed = rows("select reddit_id, skip_reason from posts where skip_reason like '%colorizing failed%' limit 3")
        check("no post is skipped for a model's failure", not blamed, f"{blamed}")

        models_per_post = rows(
            "select p.reddit_id, group_concat(m.name) from posts p join colorizations c on c.post_id = p.id "
            "join models m on m.id = c.model_id where p.state = 'evaluated' group by p.id"
        )
        incomplete = [(rid, names) for rid, names in models_per_post if set(names.split(",")) != model_names]
        evaluated = states.get("evaluated", 0)
        check("each evaluated post has one colorization per model and the gray baseline",
              not incomplete and len(models_per_post) == evaluated, f"{len(incomplete)} incomplete, e.g. {incomplete[:2]}")
        unaligned = rows("select count(*) from posts p where p.state = 'evaluated' "
                         "and not exists (select 1 from alignments a where a.post_id = p.id)")[0][0]
        check("each evaluated post has its alignment", unaligned == 0, f"{unaligned} without")
        names_by_colorization: dict[int, set[str]] = collections.defaultdict(set)
        for colorization_id, name in conn.execute("select colorization_id, name from metrics"):
            names_by_colorization[colorization_id].add(name)
        metric_sets = len({frozenset(names) for names in names_by_colorization.values()})
        unmeasured = rows(
            "select count(*) from colorizations c join alignments a on a.post_id = c.post_id where a.accepted "
            "and not exists (select 1 from metrics m where m.colorization_id = c.id)"
        )[0][0]
        check("every colorization of an aligned post is measured, all with the same metrics",
              unmeasured == 0 and metric_sets <= 1, f"{unmeasured} unmeasured, {metric_sets} different metric sets")
        for table, key in [("images", "sha256"), ("colorizations", "post_id, model_id"), ("metrics", "colorization_id, name"),
                           ("alignments", "post_id"), ("post_images", "post_id, role"), ("posts", "reddit_id")]:
            duplicates = rows(f"select count(*) from (select 1 from {table} group by {key} having count(*) > 1)")[0][0]
            check(f"no duplicate {table} ({key})", duplicates == 0, f"{duplicates} duplicated keys")
        bad_hash = sum(1 for digest, data in conn.execute("select sha256, data from images")
                       if hashlib.sha256(data).hexdigest() != digest)
        check("every stored image still hashes to its sha256", bad_hash == 0, f"{bad_hash} differ")
        measured = rows("select count(*) from colorizations c join alignments a on a.post_id = c.post_id")[0][0]
        counts = {table: rows(f"select count(*) from {table}")[0][0]
                  for table in ("posts", "images", "post_images", "colorizations", "alignments", "metrics", "job_runs")}
        skip_reasons = collections.Counter(
            _reason_class(reason) for (reason,) in rows("select skip_reason from posts where state = 'skipped'")
        )
    problem = report_problem(soak.work / "report", images=True)
    check("the final report is whole, with every image it shows", problem is None, problem or "")
    report_csv = soak.work / "report" / "metrics.csv"
    in_report = 0
    if report_csv.exists():
        with open(report_csv, newline="") as table:
            in_report = sum(1 for _ in csv.DictReader(table))
    check("the report lists every colorization of every aligned-or-refused post", in_report == measured,
          f"{in_report} rows in metrics.csv, {measured} in the database")
    answer, violations = integrity(db)
    check("PRAGMA integrity_check is ok", answer == "ok", answer)
    check("PRAGMA foreign_key_check finds nothing", violations == 0, f"{violations} violations")
    return {"states": states, "counts": counts, "skip_reasons": dict(skip_reasons)}


def measured_as(conn: sqlite3.Connection, reddit_id: str) -> dict[tuple[str, str], float]:
    """A post's metrics by (model, metric)."""
    return {(model, name): value for model, name, value in conn.execute(
        "select m.name, x.name, x.value from posts p join colorizations c on c.post_id = p.id "
        "join models m on m.id = c.model_id join metrics x on x.colorization_id = c.id where p.reddit_id = ?",
        (reddit_id,))}


def _reason_class(reason: str | None) -> str:
    reason = reason or ""
    for marker, name in [("download refused", "download refused"), ("gave up after", "gave up fetching"),
                         ("evaluation failed", "evaluation failed"), ("colorizing failed", "colorizing failed"),
                         ("only the colorization", "no original"), ("only a ", "no colorization")]:
        if marker in reason:
            return name
    return reason[:40]


# -- the whole soak -----------------------------------------------------------------------------


def export_tiny_model(folder: Path, name: str = "tiny", seed: int = 1) -> Path:
    """A tiny exported model, as the tests' ``tiny_models`` fixture builds (no weights downloaded)."""
    import keras

    from colorizer.export import export_model
    from colorizer.model import ModelConfig, build_model

    keras.utils.set_random_seed(seed)
    config = ModelConfig(**TINY_MODEL)
    export_model(build_model(config), config, folder, name=name, version=f"seed-{seed}")
    return folder


def fault_phase(soak: Soak, faults: SoakFaults, config: Path) -> tuple[int, int]:
    """Faults, locks, a full disk, model-server outages and kills; (kills, outages) that landed."""
    plan = soak.plan
    queue = soak.fault_runs()
    kills = outages = crash_retries = 0
    while (queue or kills < plan.kills) and len(soak.runs) < plan.fault_run_cap():
        spec = queue.pop(0) if queue else RunSpec("kill")
        if spec.purpose == "kill":
            spec.kill = soak.kill_trigger()
        elif spec.purpose == "short-lock":
            spec.kill = soak.kill_trigger()
        elif spec.purpose == "disk-full":
            spec.fsize_bytes = soak.fsize_limit()
        outage = spec.purpose in ("model-down", "model-crash")
        before = post_ledger(soak.db) if outage and soak.db.exists() else {}
        if spec.purpose == "model-down":
            soak.model_server.stop(signal.SIGTERM)
            faults.counts["model server stopped for a run"] += 1
        record, output = soak.run(config, spec)
        faults.end_run()
        kills += record.killed
        soak.expect(record, output)
        if outage:
            if record.server_crashed:
                faults.counts["model server killed while colorizing"] += 1
            if soak.expect_model_outage(record, output, before):
                outages += 1
            elif crash_retries < 2:
                crash_retries += 1
                queue.append(RunSpec("model-crash", crash_server=spec.crash_server))
            if not soak.model_server.up:
                soak.model_server.start()
        soak.after_run(record)
    return kills, outages


def final_phase(soak: Soak, faults: SoakFaults, config: Path, snapshot_ids: set[str],
                designed: Designed) -> dict[str, Any]:
    """No more faults (what is broken for good stays broken): run until nothing is left, then once
    more, which must change nothing; then the final checks."""
    plan = soak.plan
    faults.random_on = False
    faults.end_run()
    for _ in range(plan.max_final_runs):
        record, output = soak.run(config, RunSpec("final"))
        faults.end_run()
        soak.check(f"run {record.number}: a run without faults succeeds", record.exit_code == 0, _tail(output))
        soak.after_run(record)
        if soak.pending() == 0:
            break
    soak.check("the chain reaches a fixed point", soak.pending() == 0, f"{soak.pending()} posts still pending")
    before = soak.committed
    record, output = soak.run(config, RunSpec("final"))
    soak.check(f"run {record.number}: a run at the fixed point succeeds", record.exit_code == 0, _tail(output))
    after = soak.after_run(record)
    soak.check("a run at the fixed point changes nothing", before is not None and after is not None
               and before.counts() == after.counts()
               and {rid: state for rid, (_pid, state) in before.posts.items()}
               == {rid: state for rid, (_pid, state) in after.posts.items()},
               f"{before.counts() if before else None} -> {after.counts() if after else None}")
    model_names = {model.name for model in plan.models} | {"gray"} | ({REMOTE_MODEL} if plan.remote_model else set())
    return final_checks(soak, snapshot_ids, designed, model_names)


def run_soak(plan: SoakPlan, work: Path, log: Callable[[str], None] = print) -> SoakResult:
    """Build, serve, run, fault, kill and check; see the module docstring."""
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    snapshot, designed = build_soak_snapshot(plan)
    snapshot_ids = {post["id"] for post in snapshot.posts}
    if not plan.models:
        # In a child process: TensorFlow would otherwise count in this process's (the replay server's) memory.
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from benchmarks.soak import "
                        "export_tiny_model; export_tiny_model(Path(sys.argv[1]))", str(work / "tiny")],
                       cwd=REPO, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True)
        plan.models = [work / "tiny"]
    log(f"soak: {plan.posts} posts ({len(snapshot.images)} images, {len(designed.permanent)} broken for good, "
        f"{len(designed.transient)} broken for one run, {len(designed.benign)} awkward), {len(plan.models)} model(s)"
        f"{' + 1 served' if plan.remote_model else ''}, seed {plan.seed}, "
        f"built in {time.monotonic() - started:.1f} s; work in {work}")
    faults = SoakFaults(plan, designed)
    soak = Soak(plan, work, log)
    if plan.remote_model:
        soak.model_server = ModelServer(plan.models[0], work / "logs")
        soak.model_server.start()
    try:
        with ReplayServer(snapshot, faults=faults) as server:
            config = soak.write_config(server, plan.models)
            kills, outages = fault_phase(soak, faults, config)
            soak.check(f"{plan.kills} kills landed", kills >= plan.kills, f"{kills} kills in {len(soak.runs)} runs")
            if plan.remote_model:
                soak.check("the model server was down for a whole run and killed during one", outages == 2,
                           f"{outages} outages landed")
            found = final_phase(soak, faults, config, snapshot_ids, designed)
    finally:
        if soak.model_server is not None:
            soak.model_server.stop()

    fault_counts = dict(sorted(faults.counts.items()))
    for kind in API_FAULT_KINDS:
        soak.check(f"Reddit API fault {kind} injected", fault_counts.get(f"api {kind}", 0) > 0)
    for kind in IMAGE_FAULT_KINDS:
        soak.check(f"image host fault {kind} injected", fault_counts.get(f"image {kind}", 0) > 0)
    soak.check("images served gzip-encoded", fault_counts.get("designed benign gzip", 0) > 0)
    db_bytes = sum(path.stat().st_size for path in work.glob("colorbot.db*"))
    return SoakResult(
        plan={key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(plan).items()
              if key != "models"} | {"models": [str(model) for model in plan.models]},
        posts=plan.posts,
        runs=soak.runs,
        faults=fault_counts,
        kills=kills,
        wall_s=time.monotonic() - started,
        final_states=found["states"],
        skip_reasons=found["skip_reasons"],
        counts=found["counts"],
        colorbot_peak_rss_mib=soak.colorbot_peak_kib / 1024,
        children_peak_rss_mib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        harness_peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        db_bytes=db_bytes,
        checks=soak.checks,
        work_dir=str(work),
        model_server={} if soak.model_server is None else {
            "starts": soak.model_server.starts, "stops": dict(soak.model_server.stops),
            "peak_rss_mib": round(soak.model_server.peak_kib / 1024, 1)},
    )


def print_summary(result: SoakResult) -> None:
    figures = result.figures()
    runs = result.runs
    rows = [
        ("posts", f"{result.posts}"),
        ("final states", ", ".join(f"{state} {count}" for state, count in sorted(result.final_states.items()))),
        ("skip reasons", ", ".join(f"{reason}: {count}" for reason, count in sorted(result.skip_reasons.items())) or "-"),
        ("runs", f"{len(runs)}: {result.kills} killed, {figures['failed_runs']} exited non-zero, "
                 f"{sum(1 for run in runs if run.exit_code == 0)} ok"),
        ("faults injected", f"{sum(result.faults.values())}"),
        *((f"  {kind}", f"{count}") for kind, count in result.faults.items()),
        ("wall time", f"{result.wall_s:.1f} s"),
        ("posts/s", f"{figures['posts_per_s']}"),
        ("peak RSS colorbot run", f"{result.colorbot_peak_rss_mib:.0f} MiB (getrusage children {result.children_peak_rss_mib:.0f} MiB)"),
        ("peak RSS harness + replay", f"{result.harness_peak_rss_mib:.0f} MiB"),
        *([("model server", f"{result.model_server['starts']} starts, stopped {result.model_server['stops']}, "
                            f"peak RSS {result.model_server['peak_rss_mib']:.0f} MiB")] if result.model_server else []),
        ("database", f"{result.db_bytes / 2**20:.1f} MiB"),
        ("rows", ", ".join(f"{table} {count}" for table, count in result.counts.items())),
        ("checks", f"{len(result.checks) - len(result.failed_checks)} of {len(result.checks)} passed"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for check in result.failed_checks:
        print(f"FAILED  {check.name}: {check.detail}")
    print(json.dumps({"soak": figures}, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SoakPlan()
    parser.add_argument("--posts", type=int, default=defaults.posts)
    parser.add_argument("--distinct", type=int, default=defaults.distinct)
    parser.add_argument("--size", type=int, nargs=2, default=(defaults.width, defaults.height), metavar=("W", "H"))
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--api-fault-rate", type=float, default=defaults.api_fault_rate)
    parser.add_argument("--image-fault-rate", type=float, default=defaults.image_fault_rate)
    parser.add_argument("--broken-per-kind", type=int, default=defaults.broken_per_kind)
    parser.add_argument("--model", action="append", type=Path, default=[], help="exported model (default: a tiny one)")
    parser.add_argument("--no-model-server", action="store_true",
                        help="no served model (and so no model-server outage)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    plan = SoakPlan(posts=args.posts, distinct=args.distinct, width=args.size[0], height=args.size[1], seed=args.seed,
                    kills=args.kills, api_fault_rate=args.api_fault_rate, image_fault_rate=args.image_fault_rate,
                    broken_per_kind=args.broken_per_kind, models=args.model, remote_model=not args.no_model_server)
    if args.keep is not None:
        result = run_soak(plan, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="colorbot-soak-") as folder:
            result = run_soak(plan, Path(folder))
    print_summary(result)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
