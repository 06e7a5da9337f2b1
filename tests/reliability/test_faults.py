"""Faults, kills, a locked database and a full disk during ``colorbot run --once``, with nothing lost.

The harness is benchmarks/soak.py's :func:`run_soak` (the 5,000-post soak run by hand); here it runs
at small scale on every test run. ``colorbot run --once`` runs as a subprocess against the Reddit
replay server while:

* the replay server fails Reddit API requests (429 with Retry-After, 500, 503, stalls past PRAW's
  time-out, dropped connections) and image requests (the same plus truncated bodies and HTML);
* some posts' images are broken for good (HTML, a truncated file, zero bytes, too many bytes, a
  decompression bomb, a corrupt EXIF block) and some only through one run; some are awkward but
  valid (served gzip-encoded, an RGBA colorization, a 16-bit original);
* the model server (``colorbot serve``, configured as a remote model) is stopped for a run and
  killed during another, then started again;
* another process holds the database's write lock for less, then for more, than the busy time-out;
* the run's files may not grow (RLIMIT_FSIZE: writes fail as on a full disk);
* the run is SIGKILLed at seeded random points and restarted;

then it runs without faults until nothing is left to do, and once more. The harness checks, after
every run, that everything committed before (posts, images, links, colorizations, alignments,
metrics) is still there unchanged and no post went back a state, and at the end that every post
is stored once and finished, with the outcome its breakage calls for, that nothing is duplicated,
that the report covers every measured colorization, and that the database passes
``integrity_check``. The test asserts those checks, that each fault kind was really injected and
that the kills and database faults really happened.
"""

from __future__ import annotations

import sqlite3

import pytest

from benchmarks.soak import (
    API_FAULT_KINDS, IMAGE_FAULT_KINDS, SoakPlan, SoakResult, losses, read_committed, run_soak,
)


def failures(result: SoakResult) -> str:
    lines = [f"{check.name}: {check.detail}" for check in result.failed_checks]
    lines += [f"run {run.number} {run.purpose}: exit {run.exit_code}, killed {run.killed} {run.trigger} {run.lock}"
              for run in result.runs]
    return "\n".join(lines + [f"logs in {result.work_dir}/logs"])


def assert_soak_held(result: SoakResult, plan: SoakPlan) -> None:
    assert result.ok, failures(result)
    assert set(result.final_states) <= {"evaluated", "skipped"}, failures(result)
    assert result.counts["posts"] == plan.posts
    assert result.kills >= plan.kills
    purposes = {run.purpose: run for run in result.runs}
    assert purposes["long-lock"].exit_code not in (0, None) and purposes["disk-full"].exit_code not in (0, None)
    injected = {kind.split(" ", 1)[1] for kind in result.faults if kind.startswith("api ")}
    assert injected == set(API_FAULT_KINDS)
    injected = {kind.split(" ", 1)[1] for kind in result.faults if kind.startswith("image ")}
    assert injected == set(IMAGE_FAULT_KINDS)
    outages = [run for run in result.runs if run.purpose in ("model-down", "model-crash")]
    assert {run.purpose for run in outages if run.exit_code not in (0, None)} == {"model-down", "model-crash"}
    assert any(run.server_crashed for run in outages) and result.model_server["starts"] >= 3


def test_faults_kills_locks_and_a_full_disk_lose_nothing(tmp_path, tiny_models):
    plan = SoakPlan(posts=48, distinct=12, kills=3, broken_per_kind=1, max_attempts=2,
                    api_fault_rate=0.05, image_fault_rate=0.05, busy_timeout_s=2.0, short_lock_s=0.8,
                    long_lock_s=5.0, models=list(tiny_models))
    result = run_soak(plan, tmp_path / "soak")
    assert_soak_held(result, plan)


def test_a_run_killed_while_creating_the_database_has_committed_nothing(tmp_path):
    # A kill a second into the first run can land before the migrations made every table (CI saw it).
    db = tmp_path / "colorbot.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table alembic_version (version_num varchar(32) not null)")
        conn.execute("create table posts (id integer primary key, reddit_id text, state text)")
        conn.execute("insert into posts values (1, 't3_a', 'new')")
    partial = read_committed(db)
    assert partial.posts == {"t3_a": (1, "new")}
    assert partial.images == {} and partial.colorizations == {} and len(partial.metric_ids) == 0
    assert losses(partial, partial) == []


@pytest.mark.slow
def test_soak_of_5000_posts(tmp_path):
    """The full soak of benchmarks/soak.py (tens of minutes on two cores)."""
    plan = SoakPlan()
    result = run_soak(plan, tmp_path / "soak")
    assert_soak_held(result, plan)
