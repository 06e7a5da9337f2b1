"""Scrape benchmark: 2,000 replayed posts (gallery / composite / comment-link mix) into SQLite.

Run by hand:  .venv/bin/python benchmarks/scrape.py [--posts 2000] [--distinct 40]

Builds a snapshot of synthetic photo pairs (``--distinct`` different scenes, reused under new post
ids so the snapshot builds quickly; images are stored once per distinct content either way), serves
it from the replay server on 127.0.0.1, and times one ``colorbot scrape`` run over it: real PRAW,
real downloads through the safe fetcher, the tone test and the composite split on every post.
Prints posts/s and the peak memory (Python allocations via tracemalloc, and the process's peak RSS).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.client import make_reddit  # noqa: E402
from bot.replay import ReplayServer, Snapshot, build_snapshot  # noqa: E402
from bot.scrape import scrape_job  # noqa: E402
from bot.settings import DownloadSettings, RedditSettings  # noqa: E402
from db import make_engine, migrate, session_factory  # noqa: E402
from db.store import job_run, post_state_counts  # noqa: E402
from tests.factories import color_scene, composite_file, encoded, gray_copy  # noqa: E402


def encode(rgb: np.ndarray) -> bytes:
    return encoded(rgb, "JPEG", quality=90)


def compose(original: bytes, colorized: bytes) -> bytes:
    return composite_file(original, colorized, "JPEG", quality=90)


def make_snapshot(posts: int, distinct: int) -> Snapshot:
    scenes = [color_scene(seed, 480, 360) for seed in range(distinct)]
    pairs = [(encode(gray_copy(rgb)), encode(rgb)) for rgb in scenes]
    return build_snapshot((pairs[n % distinct] for n in range(posts)), compose=compose)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    snapshot = make_snapshot(args.posts, args.distinct)
    print(f"snapshot: {len(snapshot.posts)} posts, {len(snapshot.images)} images, "
          f"built in {time.perf_counter() - started:.1f}s")

    with tempfile.TemporaryDirectory() as folder, ReplayServer(snapshot) as server:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        reddit_settings = RedditSettings(**server.reddit_settings(limit=args.posts))
        download_settings = DownloadSettings(**server.download_settings())
        reddit = make_reddit(reddit_settings)

        tracemalloc.start()
        started = time.perf_counter()
        with job_run(sessions, "scrape") as run:
            (report,) = scrape_job(reddit, sessions, reddit_settings, download_settings)
            run.items = report.items
        seconds = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        with sessions() as session:
            states = post_state_counts(session)
        db_size = sum(path.stat().st_size for path in Path(folder).glob("bench.db*"))
        engine.dispose()

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(report.summary())
    print(f"states: {states}")
    print(f"scrape: {report.seen} posts in {seconds:.1f}s = {report.seen / seconds:.1f} posts/s")
    print(f"peak Python allocations during the scrape: {peak / 2**20:.1f} MiB; "
          f"process peak RSS: {rss_mib:.0f} MiB; database {db_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
