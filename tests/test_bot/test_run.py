"""`colorbot scrape` and `colorbot run` end to end: CLI, job list, job_runs, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from click.testing import CliRunner
from sqlalchemy import select

from colorbot.cli import cli
from colorbot.config import Config
from colorbot.schedule import Job, JobContext, run_forever, run_once
from db import make_engine, session_factory
from db.models import JobRun, Post

from tests.factories import composite_file, pair
from bot.replay import build_snapshot


def env_for(server, db_url: str, **extra: str) -> dict[str, str]:
    env = {
        "COLORBOT_DATABASE__URL": db_url,
        "COLORBOT_REDDIT__CLIENT_ID": "replay-client",
        "COLORBOT_REDDIT__CLIENT_SECRET": "replay-secret",
        "COLORBOT_REDDIT__OAUTH_URL": server.base_url,
        "COLORBOT_REDDIT__REDDIT_URL": server.base_url,
        "COLORBOT_REDDIT__MEDIA_URL": server.media_url,
        "COLORBOT_DOWNLOAD__ALLOWED_HOSTS": '["127.0.0.1"]',
        "COLORBOT_DOWNLOAD__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }
    env.update(extra)
    return env


def fill(server, count=3):
    snapshot = build_snapshot([pair(seed) for seed in range(count)], compose=composite_file)
    for post in reversed(snapshot.posts):
        server.add_post(post, snapshot.comments.get(post["id"]))
    for name, data in snapshot.images.items():
        server.add_image(name, data)


def job_runs(db_url):
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return [(run.job, run.status, run.items) for run in session.scalars(select(JobRun).order_by(JobRun.id))]
    finally:
        engine.dispose()


def test_scrape_command_and_run_once(server, db_url, tmp_path, monkeypatch, tiny_models):
    fill(server)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    model = f'[{{name = "tiny", path = "{tiny_models[0]}"}}]'
    result = runner.invoke(cli, ["scrape", "--limit", "10"], env=env_for(server, db_url))
    assert result.exit_code == 0, result.output
    assert "3 new" in result.output and "3 fetched" in result.output
    assert "replay-secret" not in result.output
    result = runner.invoke(cli, ["run", "--once"], env=env_for(server, db_url, COLORBOT_COLORIZER__MODELS=model))
    assert result.exit_code == 0, result.output
    assert "scrape: ok" in result.output
    assert job_runs(db_url) == [
        ("scrape", "ok", 3), ("scrape", "ok", 0), ("colorize", "ok", 3), ("evaluate", "ok", 3), ("report", "ok", 1)
    ]
    user_agents = {agent for agent in server.user_agents}
    assert any(agent.startswith("python:colorbot:") and "(by u/unknown)" in agent for agent in user_agents)


def test_a_failing_job_is_recorded_and_the_rest_still_run(sessions, tmp_path):
    context = JobContext(config=Config(), sessions=sessions, stop=threading.Event())

    def broken(_context):
        raise ConnectionError("Reddit is down")

    results = run_once([Job("broken", broken, 60), Job("fine", lambda _c: 5, 60)], context)
    assert results == {"broken": False, "fine": True}
    with sessions() as session:
        rows = [(r.job, r.status, r.error) for r in session.scalars(select(JobRun).order_by(JobRun.id))]
    assert rows == [("broken", "failed", "ConnectionError: Reddit is down"), ("fine", "ok", None)]


def test_scheduler_keeps_running_after_failures_and_stops_on_the_event(sessions):
    context = JobContext(config=None, sessions=sessions, stop=threading.Event())
    calls = []

    def flaky(_context):
        calls.append(1)
        if len(calls) >= 3:
            context.stop.set()
        raise RuntimeError("503")

    runner = threading.Thread(target=run_forever, args=([Job("flaky", flaky, 0.05)], context), kwargs={"poll_s": 0.05})
    runner.start()
    runner.join(60)
    assert not runner.is_alive() and len(calls) >= 3
    with sessions() as session:
        statuses = {r.status for r in session.scalars(select(JobRun))}
    assert statuses == {"failed"}


def test_sigterm_finishes_the_item_in_hand(server, db_url, tmp_path):
    fill(server, count=6)
    # Slow images: SIGTERM arrives while a post is being fetched.
    from bot.replay import Fault
    server.faults.add(Fault("slow", path="/i/", times=None, delay_s=0.3))
    env = {**os.environ, **env_for(server, db_url)}
    process = subprocess.Popen(
        [sys.executable, "-m", "colorbot", "run"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        while server.count("/i/") == 0 and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "finishing the item in hand" in output
    # Later jobs (colorize, ...) start on their own schedule beside the scrape; only its run matters here.
    runs = [run for run in job_runs(db_url) if run[0] == "scrape"]
    assert len(runs) == 1 and runs[0][1] == "failed"  # interrupted: not counted as a complete run
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        states = [post.state for post in session.scalars(select(Post))]
    engine.dispose()
    assert states and "new" not in states  # the post in hand was finished, no later one begun
