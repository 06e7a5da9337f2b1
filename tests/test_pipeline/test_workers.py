"""Several workers over one database: each post worked once, each image downloaded once, no error.

Every worker has its own engine and sessions, as a process on another machine would. The database
is the one of the shared ``db_url`` fixture (tests/conftest.py), so these run on whichever database
that fixture gives.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from bot.client import make_reddit
from bot.replay import ReplayServer, Snapshot, build_snapshot
from bot.scrape import scrape_job
from bot.settings import DownloadSettings, RedditSettings
from colorbot import pipeline
from colorbot.config import Config, DatabaseSettings
from colorbot.pipeline import ColorizeSummary, colorize_pending, register_models
from colorbot.schedule import default_jobs, run_once
from colorbot.steps import StepContext
from colorizer.baseline import GrayBaseline
from colorizer.client import ModelIdentity
from colorizer.images import examine
from db import make_engine, session_factory
from db.claims import Claims
from db.models import Alignment, Colorization, Image, ImageRole, JobRun, Model, Post, PostImage, PostState
from db.store import advance_post, insert_new, store_image
from tests.factories import color_scene, composite_file, encoded, pair

WORKERS = 3


class CountingColorizer:
    """Returns its input, slowly enough for workers to overlap, and counts what it was asked."""

    def __init__(self, name: str = "counting"):
        self.identity = ModelIdentity(name=name, version="1")
        self.calls: Counter[bytes] = Counter()
        self._lock = threading.Lock()

    def colorize(self, images):
        time.sleep(0.02)
        with self._lock:
            for image in images:
                self.calls[image.tobytes()] += 1
        return [image.copy() for image in images]


@pytest.fixture
def worker_sessions(engine, db_url):
    """A factory of sessions on an engine of its own, one per worker; ``engine`` has migrated the database."""
    engines = []

    def open_one():
        engines.append(make_engine(db_url))
        return session_factory(engines[-1])

    yield open_one
    for opened in engines:
        opened.dispose()


def side_by_side_workers(count: int, work) -> list[BaseException]:
    """Run ``work(number)`` in ``count`` threads started together; the exceptions they raised."""
    start, errors = threading.Barrier(count), []

    def worker(number: int) -> None:
        start.wait()
        try:
            work(number)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return errors


@pytest.fixture
def server():
    with ReplayServer(Snapshot()) as running:
        yield running


def test_three_workers_run_the_chain_and_each_post_is_worked_once(server, sessions, worker_sessions, db_url):
    snapshot = build_snapshot([pair(seed) for seed in range(6)], compose=composite_file)
    for post in reversed(snapshot.posts):
        server.add_post(post, snapshot.comments.get(post["id"]))
    for name, data in snapshot.images.items():
        server.add_image(name, data)
    config = Config(
        database=DatabaseSettings(url=db_url),
        reddit=RedditSettings(**server.reddit_settings()),
        download=DownloadSettings(**server.download_settings()),
    )
    model = CountingColorizer()
    jobs = [job for job in default_jobs(config) if job.name in ("scrape", "colorize", "evaluate")]
    outcomes = []

    def work(_number: int) -> None:
        context = StepContext(config=config, sessions=worker_sessions(), cache={"colorizers": [model]})
        outcomes.append(run_once(jobs, context))

    assert side_by_side_workers(WORKERS, work) == []
    assert outcomes == [{"scrape": True, "colorize": True, "evaluate": True}] * WORKERS

    downloads = {name: server.count(f"/i/{name}") for name in snapshot.images}
    assert set(downloads.values()) == {1}, downloads
    with sessions() as session:
        posts = session.scalars(select(Post)).all()
        assert len(posts) == len(snapshot.posts)
        assert {post.state for post in posts} == {PostState.EVALUATED.value}
        assert {(post.claimed_by, post.claimed_until) for post in posts} == {(None, None)}
        per_model = dict(session.execute(
            select(Model.name, func.count()).join(Colorization, Colorization.model_id == Model.id).group_by(Model.name)
        ).all())
        assert per_model == {"counting": len(posts), "gray": len(posts)}
        assert session.scalar(select(func.count()).select_from(Alignment)) == len(posts)
        statuses = set(session.scalars(select(JobRun.status)))
    assert sum(model.calls.values()) == len(posts) and set(model.calls.values()) == {1}
    assert statuses == {"ok"}


class WatchedClaims(Claims):
    """Claims that note, each time they give up what they still hold, the posts the database
    still shows as theirs."""

    def __init__(self, sessions, worker: str):
        super().__init__(sessions, worker)
        self.seen: list[tuple[str, str]] = []

    def release_all(self) -> None:
        with self.sessions() as session:
            self.seen += session.execute(select(Post.reddit_id, Post.state).where(Post.claimed_by == self.worker)).all()
        super().release_all()


def test_a_fetched_post_is_committed_unclaimed(server, sessions):
    """Else the same worker's colorize (same worker name) may take it before scrape gives it up, and
    scrape's release then pulls the claim from under it: the post is colorized twice."""
    snapshot = build_snapshot([pair(seed) for seed in range(3)], compose=composite_file)
    for post in reversed(snapshot.posts):
        server.add_post(post, snapshot.comments.get(post["id"]))
    for name, data in snapshot.images.items():
        server.add_image(name, data)
    reddit_settings = RedditSettings(**server.reddit_settings())
    claims = WatchedClaims(sessions, "one-worker")
    scrape_job(make_reddit(reddit_settings), sessions, reddit_settings,
               DownloadSettings(**server.download_settings()), claims=claims)
    with sessions() as session:
        assert set(session.scalars(select(Post.state))) == {PostState.FETCHED.value}
    assert claims.seen == []


def fetched_posts(sessions, count: int) -> list[int]:
    """Fetched posts with distinct small originals, oldest first."""
    ids = []
    with sessions.begin() as session:
        for number in range(count):
            post = Post(reddit_id=f"w{number}", subreddit="colorization",
                        created_utc=datetime(2024, 5, 1, 12, number, tzinfo=timezone.utc))
            session.add(post)
            session.flush()
            image = store_image(session, examine(encoded(color_scene(number, 48, 32))))
            session.add(PostImage(post_id=post.id, image_id=image.id, role=ImageRole.ORIGINAL.value))
            advance_post(post, PostState.FETCHED)
            ids.append(post.id)
    return ids


def test_three_colorize_workers_share_the_fetched_posts(sessions, worker_sessions):
    post_ids = fetched_posts(sessions, 12)
    model = CountingColorizer()
    summaries: list[ColorizeSummary] = []

    def work(_number: int) -> None:
        summaries.append(colorize_pending(worker_sessions(), [model, GrayBaseline()]))

    assert side_by_side_workers(WORKERS, work) == []
    assert sum(summary.posts for summary in summaries) == len(post_ids)
    assert sum(summary.colorizations for summary in summaries) == 2 * len(post_ids)
    assert sum(model.calls.values()) == len(post_ids) and set(model.calls.values()) == {1}
    with sessions() as session:
        assert set(session.scalars(select(Post.state))) == {PostState.COLORIZED.value}
        assert session.scalar(select(func.count()).select_from(Colorization)) == 2 * len(post_ids)


def expire_leases(sessions) -> None:
    """Time passing for every lease: each ends now."""
    with sessions.begin() as session:
        session.execute(update(Post).where(Post.claimed_until.is_not(None))
                        .values(claimed_until=datetime.now(timezone.utc) - timedelta(seconds=1)))


def leases(sessions) -> dict[int, tuple[str | None, datetime | None]]:
    with sessions() as session:
        return {post.id: (post.claimed_by, post.claimed_until) for post in session.scalars(select(Post))}


def test_the_posts_of_a_worker_whose_lease_ran_out_are_taken_by_another(sessions, worker_sessions):
    post_ids = fetched_posts(sessions, 3)
    dead = Claims(worker_sessions(), "dead-worker")
    assert dead.take([Post.state == PostState.FETCHED.value]) == post_ids  # then it stops, holding them

    model = CountingColorizer()
    live = worker_sessions()
    assert colorize_pending(live, [model]).posts == 0, "a live lease is left alone"
    expire_leases(sessions)
    assert colorize_pending(live, [model]).posts == len(post_ids)

    # The "dead" worker was only slow: the colorization it finishes now is dropped, not stored.
    with sessions.begin() as session:
        session.get(Post, post_ids[0]).state = PostState.FETCHED.value
    late, other = ColorizeSummary(), CountingColorizer("other")
    model_ids = register_models(dead.sessions, [other])
    pipeline._colorize_post(dead.sessions, dead, post_ids[0], [other], model_ids, late)
    assert sum(other.calls.values()) == 1 and (late.taken_over, late.colorizations, late.posts) == (1, 0, 0)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Colorization)) == len(post_ids)
        assert session.get(Post, post_ids[0]).state == PostState.FETCHED.value


def test_a_lease_is_renewed_while_its_worker_works_but_never_taken_back(sessions, worker_sessions):
    first, second = fetched_posts(sessions, 2)
    claims = Claims(worker_sessions(), "slow-worker", lease_s=0.3)
    claims.take([Post.state == PostState.FETCHED.value])
    taken = leases(sessions)
    with sessions.begin() as session:  # the second's lease ran out and another worker took it
        session.get(Post, second).claimed_by = "other-worker"
    time.sleep(0.15)  # more than a third of the lease: renewing is due
    claims.renew_if_due()
    renewed = leases(sessions)
    assert renewed[first][0] == "slow-worker" and renewed[first][1] > taken[first][1]
    assert renewed[second] == ("other-worker", taken[second][1])
    assert claims.held == {first}
    claims.release_all()
    assert leases(sessions) == {first: (None, None), second: renewed[second]}


def test_a_row_another_worker_stored_first_is_already_done(sessions, worker_sessions):
    [post_id] = fetched_posts(sessions, 1)
    first, second = worker_sessions(), worker_sessions()
    with first.begin() as session:
        model_id = register_models(first, [GrayBaseline()])[0]
        image_id = session.scalar(select(PostImage.image_id).where(PostImage.post_id == post_id))
        values = {"post_id": post_id, "model_id": model_id, "image_id": image_id, "seconds": 0.0}
        assert insert_new(session, Colorization, **values)
    with second.begin() as session:
        assert not insert_new(session, Colorization, **values)
        assert not insert_new(session, Post, reddit_id="w0", subreddit="colorization",
                              created_utc=datetime(2024, 5, 1, tzinfo=timezone.utc))
        again = store_image(session, examine(encoded(color_scene(0, 48, 32))))
        assert again.id == image_id
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Colorization)) == 1
        assert session.scalar(select(func.count()).select_from(Post)) == 1
        assert session.scalar(select(func.count()).select_from(Image)) == 1


def test_a_worker_restarted_on_the_same_host_frees_the_leases_of_its_dead_predecessor(sessions, worker_sessions):
    post_ids = fetched_posts(sessions, 4)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for post_id, holder in zip(post_ids, [f"{host}:{gone.stdout.strip()}:dead0001"] * 2
                                   + [f"{host}:{alive.pid}:live0001", f"elsewhere:{gone.stdout.strip()}:far00001"]):
            Claims(worker_sessions(), holder).take([Post.id == post_id])
        model = CountingColorizer()
        assert colorize_pending(worker_sessions(), [model]).posts == 2, "only the dead local worker's posts are free"
        assert sum(model.calls.values()) == 2
        with sessions() as session:
            assert [session.get(Post, post_id).state for post_id in post_ids] == [PostState.COLORIZED.value] * 2 + [
                PostState.FETCHED.value] * 2
        held = leases(sessions)
        assert [held[post_id][0] for post_id in post_ids] == [
            None, None, f"{host}:{alive.pid}:live0001", f"elsewhere:{gone.stdout.strip()}:far00001"]
    finally:
        alive.kill()
        alive.wait()
