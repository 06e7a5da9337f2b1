"""`colorbot run --once` end to end against the replay server, killed between steps and rerun."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas
import pytest

from bot.replay import ReplayServer, build_snapshot
from colorbot.demo import demo_pairs, side_by_side

POSTS = 6


def write_config(folder: Path, server: ReplayServer, models: list[Path]) -> Path:
    reddit = server.reddit_settings()
    download = server.download_settings()
    lines = [
        "[database]", f'url = "sqlite:///{folder / "colorbot.db"}"',
        "[reddit]", *(f"{key} = {json.dumps(value)}" for key, value in reddit.items()),
        "[download]", *(f"{key} = {json.dumps(value)}" for key, value in download.items()),
        "[pipeline]", f'report_dir = "{folder / "report"}"',
    ]
    for model in models:
        lines += ["[[colorizer.models]]", f'name = "{model.name}"', f'path = "{model}"']
    config = folder / "colorbot.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def start_run(config: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "colorbot", "--config", str(config), "run", "--once"],
                            cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def kill_when(process: subprocess.Popen, db: Path, sql: str, at_least: int) -> None:
    deadline = time.monotonic() + 300
    while count(db, sql) < at_least:
        assert process.poll() is None, f"finished before the kill point: {process.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def snapshot():
    return build_snapshot(demo_pairs()[:POSTS], layouts=("gallery", "composite", "comment-link"),
                          compose=side_by_side)


def test_run_once_killed_between_steps_finishes_with_nothing_lost_or_duplicated(tmp_path, snapshot, tiny_models):
    with ReplayServer(snapshot) as server:
        config = write_config(tmp_path, server, tiny_models)
        db = tmp_path / "colorbot.db"

        # Killed while colorizing (two of its twelve colorizations stored) ...
        kill_when(start_run(config), db, "select count(*) from colorizations", 2)
        assert count(db, "select count(*) from posts where state = 'evaluated'") == 0
        # ... then while evaluating (its first metrics stored) ...
        kill_when(start_run(config), db, "select count(*) from metrics", 1)
        # ... then left to finish.
        finished = start_run(config)
        stdout, stderr = finished.communicate(timeout=600)
        assert finished.returncode == 0, stderr[-3000:]
        assert "report: ok" in stdout and "colorize: ok" in stdout

    with sqlite3.connect(db) as conn:
        def rows(sql):
            return conn.execute(sql).fetchall()

        assert rows("select count(*), count(distinct reddit_id) from posts") == [(POSTS, POSTS)]
        assert rows("select state, count(*) from posts group by state") == [("evaluated", POSTS)]
        models = rows("select name from models order by name")
        assert models == [("gray",), ("tiny-a",), ("tiny-b",)]
        # Exactly one colorization per (post, model): two models and the gray baseline.
        assert rows("select count(*) from colorizations") == [(3 * POSTS,)]
        assert rows("select count(*) from (select post_id from colorizations group by post_id having count(*) = 3)") \
            == [(POSTS,)]
        assert rows("select count(*) from alignments") == [(POSTS,)]
        aligned = rows("select count(*) from alignments where accepted")[0][0]
        assert aligned >= POSTS - 1
        duplicates = rows("select count(*) from (select 1 from metrics group by colorization_id, name having count(*) > 1)")
        assert duplicates == [(0,)]
        measured = rows("select count(distinct colorization_id) from metrics")[0][0]
        assert measured == 3 * aligned
        assert rows("select count(*) from images")[0][0] == rows("select count(distinct sha256) from images")[0][0]
        layouts = {layout for (layout,) in rows("select distinct layout from posts")}
        assert layouts == {"gallery", "composite", "comment-link"}
        finished_jobs = {job for (job,) in rows("select job from job_runs where status = 'ok'")}
        assert finished_jobs >= {"scrape", "colorize", "evaluate", "report"}

    report = tmp_path / "report"
    assert (report / "index.html").is_file() and (report / "metrics.csv").is_file()
    table = pandas.read_csv(report / "metrics.csv")
    assert table.groupby("model").size().to_dict() == {"gray": aligned, "tiny-a": aligned, "tiny-b": aligned}
