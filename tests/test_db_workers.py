"""Many workers on one database: migrations at start, singleton jobs, killed runs told by heartbeat."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from colorbot.schedule import Job, JobContext, run_job
from db import JobRun, make_engine, migrate
from db.models import Base
from db.store import JobBusy, job_run

REPO = Path(__file__).resolve().parent.parent

# What every colorbot command does on start (colorbot.cli.App.engine), once the given moment has
# come: the processes start together, as workers started by one deployment do.
STARTING_WORKER = textwrap.dedent(
    """
    import sys, time
    from colorbot.cli import App

    class Configured(App):
        config = type("C", (), {"database": type("D", (), {"url": sys.argv[1]})})()

    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    Configured(config_path=None).engine()
    print("started", flush=True)
    """
)


@pytest.mark.postgresql_only
def test_three_workers_starting_at_once_on_a_fresh_database_all_start(db_url):
    start_at = time.time() + 8  # time enough for each to import colorbot
    workers = [subprocess.Popen([sys.executable, "-c", STARTING_WORKER, db_url, str(start_at)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], "\n".join(outputs)
    assert all(output.strip().endswith("started") for output in outputs), outputs
    engine = make_engine(db_url)
    assert migrate.is_up_to_date(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


# A worker in the middle of a job: it beats every 0.2 s until it is killed.
RUNNING_JOB = textwrap.dedent(
    """
    import sys, time
    from db import make_engine, session_factory
    from db.store import job_run

    with job_run(session_factory(make_engine(sys.argv[1])), sys.argv[2], singleton=True, heartbeat_s=0.2):
        print("running", flush=True)
        time.sleep(120)
    """
)


def start_job(sessions, job: str) -> subprocess.Popen:
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    worker = subprocess.Popen([sys.executable, "-c", RUNNING_JOB, url, job], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = worker.stdout.readline().strip()
    assert line == "running", line + worker.stdout.read()
    return worker


def kill(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(30)


def statuses(sessions) -> dict[str, str]:
    with sessions() as session:
        return {run.job: run.status for run in session.scalars(select(JobRun).order_by(JobRun.id))}


def test_a_run_is_alive_while_it_beats_and_killed_once_its_heartbeat_is_stale(sessions):
    beating, killed = start_job(sessions, "scrape"), start_job(sessions, "report")
    try:
        kill(killed)
        time.sleep(4)  # the killed run's heartbeat is 4 s old now, the beating one's at most 0.2 s
        now = datetime.now(timezone.utc)
        with sessions.begin() as session:
            # A process id means nothing in another PID namespace: this one is alive here, yet its run
            # stopped beating an hour ago; the next one exists nowhere here, yet its run beats.
            session.add(JobRun(job="evaluate", host=socket.gethostname(), pid=beating.pid,
                               heartbeat_at=now - timedelta(hours=1)))
            session.add(JobRun(job="reply", host=socket.gethostname(), pid=4_000_000, heartbeat_at=now))
            session.add(JobRun(job="colorize", host="another-machine", pid=1, heartbeat_at=now))
        with job_run(sessions, "import", stale_after_s=3) as run:
            run.items = 1
        assert statuses(sessions) == {"scrape": "running", "report": "killed", "evaluate": "killed",
                                      "reply": "running", "colorize": "running", "import": "ok"}
        with sessions() as session:
            runs = {run.job: run for run in session.scalars(select(JobRun))}
        assert runs["scrape"].heartbeat_at > runs["scrape"].started_at  # it beat on its own
        assert "no heartbeat for over 3 s" in runs["report"].error
        assert f"process {killed.pid}" in runs["report"].error
    finally:
        kill(beating)


def test_a_singleton_job_refuses_a_second_holder_until_the_first_is_gone(sessions, caplog):
    holder = start_job(sessions, "scrape")
    try:
        with pytest.raises(JobBusy, match="scrape is running in another worker"):
            with job_run(sessions, "scrape", singleton=True):
                pytest.fail("a second scrape ran beside the first")
        with job_run(sessions, "report", singleton=True) as other:  # another job is free
            other.items = 1
        with job_run(sessions, "scrape") as unlocked:  # only singleton runs ask
            unlocked.items = 1
        context = JobContext(config=None, sessions=sessions, stop=threading.Event())
        never = Job("scrape", lambda _context: pytest.fail("the scheduler ran a held singleton"), 60, singleton=True)
        with caplog.at_level(logging.INFO, logger="colorbot.schedule"):
            assert run_job(never, context) is True  # skipped, not failed
        assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "colorbot.schedule"] == [
            ("INFO", "job scrape skipped: scrape is running in another worker"
             + ("" if sessions.kw["bind"].dialect.name == "postgresql" else
                f" (process {holder.pid} on {socket.gethostname()})"))]
    finally:
        kill(holder)
    # A killed holder lets go at once: on PostgreSQL with its connection, on SQLite with its lock file;
    # its row says running until its heartbeat is stale.
    deadline = time.monotonic() + 20
    while True:
        try:
            with job_run(sessions, "scrape", singleton=True, stale_after_s=2) as run:
                run.items = 1
            break
        except JobBusy:
            assert time.monotonic() < deadline, "the killed holder never let go of scrape"
            time.sleep(0.2)
    with sessions() as session:
        scrapes = [run.status for run in session.scalars(select(JobRun).where(JobRun.job == "scrape")
                                                        .order_by(JobRun.id))]
    assert scrapes[0] in ("running", "killed") and scrapes[1:] == ["ok", "ok"]
