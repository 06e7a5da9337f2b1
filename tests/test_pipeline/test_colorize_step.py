"""The colorize step on a real SQLite file: retries, give-ups and what counts as an attempt."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np
import PIL.Image
from sqlalchemy import select, text

import pytest
from sqlalchemy.exc import OperationalError

from colorbot import pipeline
from colorbot.pipeline import MAX_ATTEMPTS, colorize_pending, model_row
from colorizer.baseline import GRAY_MODEL_NAME, GrayBaseline
from colorizer.client import ModelChangedError, ModelIdentity, ModelUnavailableError, RemoteColorizer
from colorizer.images import examine
from colorizer.serve import ModelServer, ServeSettings
from db import Colorization, Image, ImageRole, Model, Post, PostImage, PostState, make_engine, migrate, session_factory
from db.store import advance_post, store_image
from tests.factories import color_scene, corrupt_exif_jpeg, encoded


class FlakyColorizer:
    """Fails the first ``failures`` calls, then returns the input unchanged."""

    identity = ModelIdentity(name="flaky", version="1")

    def __init__(self, failures: int):
        self.failures = failures

    def colorize(self, images):
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("model server down")
        return [image.copy() for image in images]


def fetched_post(sessions, failed_fetches: int) -> int:
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.full((32, 48), 128, np.uint8)).save(buffer, format="PNG")
    with sessions.begin() as session:
        post = Post(reddit_id="abc", subreddit="colorization", created_utc=datetime.now(timezone.utc),
                    attempts=failed_fetches, last_error="timed out")
        session.add(post)
        session.flush()
        image = store_image(session, examine(buffer.getvalue()))
        session.add(PostImage(post_id=post.id, image_id=image.id, role=ImageRole.ORIGINAL.value))
        advance_post(post, PostState.FETCHED)
        return post.id


def test_failed_fetches_do_not_count_against_colorizing(sessions):
    post_id = fetched_post(sessions, failed_fetches=MAX_ATTEMPTS - 1)
    colorizer = FlakyColorizer(failures=1)
    first = colorize_pending(sessions, [colorizer])
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts) == (PostState.FETCHED.value, 1)
        assert "model server down" in post.last_error
    second = colorize_pending(sessions, [colorizer])
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts, post.last_error) == (PostState.COLORIZED.value, 0, None)
        assert len(session.scalars(select(Colorization)).all()) == 1
    assert (first.failed, second.posts) == (1, 1)


def test_a_model_failing_every_time_gives_up_with_the_reason(sessions):
    post_id = fetched_post(sessions, failed_fetches=0)
    colorizer = FlakyColorizer(failures=10)
    for _ in range(MAX_ATTEMPTS):
        colorize_pending(sessions, [colorizer])
    with sessions() as session:
        post = session.get(Post, post_id)
    assert post.state == PostState.SKIPPED.value
    assert f"colorizing failed {MAX_ATTEMPTS} times" in post.skip_reason and "model server down" in post.skip_reason


class RolledOutColorizer:
    """A served model whose server has moved on to another version since it was opened."""

    identity = ModelIdentity(name="served", version="1")

    def colorize(self, images):
        raise ModelChangedError("served version 1 is no longer served")


def test_a_model_rolled_out_under_the_run_stops_it_without_counting_against_the_post(sessions):
    post_id = fetched_post(sessions, failed_fetches=0)
    with pytest.raises(ModelChangedError):
        colorize_pending(sessions, [RolledOutColorizer()])
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts) == (PostState.FETCHED.value, 0)
        assert session.scalars(select(Colorization)).all() == []


# -- one post's bad image never stops the job; an outage never counts against the posts ---------


class Echo:
    """Returns its input unchanged; ``garbage_for`` lists the calls (0, 1, ...) it answers with nonsense."""

    identity = ModelIdentity(name="echo", version="1")

    def __init__(self, garbage_for: tuple[int, ...] = ()):
        self.calls = 0
        self.garbage_for = garbage_for

    def colorize(self, images):
        self.calls += 1
        if self.calls - 1 in self.garbage_for:
            return [None]
        return [image.copy() for image in images]


def post_with_original(sessions, reddit_id: str, data: bytes, minute: int) -> int:
    """A fetched post created at 12:``minute``, its original stored as the bytes were downloaded."""
    with sessions.begin() as session:
        post = Post(reddit_id=reddit_id, subreddit="colorization",
                    created_utc=datetime(2024, 5, 1, 12, minute, tzinfo=timezone.utc))
        session.add(post)
        session.flush()
        image = Image(sha256=reddit_id * 8, data=data, format="jpeg", width=48, height=32)  # as an older version stored it
        session.add(image)
        session.flush()
        session.add(PostImage(post_id=post.id, image_id=image.id, role=ImageRole.ORIGINAL.value))
        advance_post(post, PostState.FETCHED)
        return post.id


def states(sessions) -> dict[str, tuple[str, int]]:
    with sessions() as session:
        return {post.reddit_id: (post.state, post.attempts) for post in session.scalars(select(Post))}


def test_a_corrupt_exif_block_skips_its_post_and_the_newer_posts_are_colorized(sessions):
    post_with_original(sessions, "poison", corrupt_exif_jpeg(), minute=0)
    post_with_original(sessions, "newer", encoded(PIL.Image.fromarray(color_scene(2, 48, 32)), "PNG"), minute=5)
    summary = colorize_pending(sessions, [Echo()])
    assert states(sessions) == {"poison": (PostState.SKIPPED.value, 0), "newer": (PostState.COLORIZED.value, 0)}
    with sessions() as session:
        poison = session.scalar(select(Post).where(Post.reddit_id == "poison"))
        assert "EXIF block is corrupt" in poison.skip_reason
    assert (summary.skipped, summary.posts) == (1, 1)


def test_a_model_answering_nonsense_counts_against_that_post_only(sessions):
    for minute, name in enumerate(("first", "second")):
        post_with_original(sessions, name, encoded(PIL.Image.fromarray(color_scene(minute, 48, 32)), "PNG"), minute)
    summary = colorize_pending(sessions, [Echo(garbage_for=(0,))])
    assert states(sessions) == {"first": (PostState.FETCHED.value, 1), "second": (PostState.COLORIZED.value, 0)}
    assert (summary.failed, summary.posts) == (1, 1)


def test_a_stopped_model_server_fails_the_run_and_no_post_is_skipped(sessions):
    post_id = fetched_post(sessions, failed_fetches=0)
    server = ModelServer("served", "1", lambda images: list(images), ServeSettings(port=0)).start()
    colorizer = RemoteColorizer(server.url, "served", timeout_s=5.0, retries=0)
    server.stop()  # `colorbot serve` stopped for longer than the runs below
    for _ in range(MAX_ATTEMPTS + 1):
        with pytest.raises(ModelUnavailableError):
            colorize_pending(sessions, [colorizer])
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts, post.skip_reason) == (PostState.FETCHED.value, 0, None)


def test_a_database_error_fails_the_run_and_counts_against_no_post(sessions, monkeypatch):
    post_id = fetched_post(sessions, failed_fetches=0)

    def disk_full(session, image):
        raise OperationalError("INSERT INTO images", {}, Exception("database or disk is full"))

    monkeypatch.setattr(pipeline, "store_image", disk_full)
    with pytest.raises(OperationalError):
        colorize_pending(sessions, [Echo()])
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts) == (PostState.FETCHED.value, 0)
        assert session.scalars(select(Colorization)).all() == []


def test_the_gray_baseline_is_colorized_as_the_original_itself_once(sessions):
    post_id = fetched_post(sessions, failed_fetches=0)
    first = colorize_pending(sessions, [Echo(), GrayBaseline()])
    with sessions.begin() as session:
        session.get(Post, post_id).state = PostState.FETCHED.value  # as if a crash left it fetched
    second = colorize_pending(sessions, [Echo(), GrayBaseline()])
    with sessions() as session:
        original = session.scalars(select(PostImage).where(PostImage.post_id == post_id)).one()
        rows = {row.model.name: row for row in session.scalars(select(Colorization))}
    assert set(rows) == {"echo", GRAY_MODEL_NAME} and rows[GRAY_MODEL_NAME].image_id == original.image_id
    assert (first.colorizations, first.posts, second.colorizations, second.posts) == (2, 1, 0, 1)


def test_posts_colorized_before_the_upgrade_get_their_gray_baseline_from_the_migration(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0005")  # evaluate still made the gray baseline then
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (sha256, data, format, width, height, created_at) "
                          "VALUES ('a', :data, 'png', 2, 2, '2026-01-01')"), {"data": b"png"})
        for reddit_id, state in (("waiting", "colorized"), ("measured", "evaluated")):
            conn.execute(text(
                "INSERT INTO posts (reddit_id, subreddit, title, permalink, url, created_utc, score, nsfw, removed, "
                "layout, state, attempts, first_seen, updated_at) VALUES (:r, 'c', '', '', '', '2026-01-01', 0, "
                "false, false, 'gallery', :s, 0, '2026-01-01', '2026-01-01')"), {"r": reddit_id, "s": state})
            conn.execute(text("INSERT INTO post_images (post_id, image_id, role, source_url) SELECT id, 1, "
                              "'original', '' FROM posts WHERE reddit_id = :r"), {"r": reddit_id})
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        rows = session.execute(select(Post.reddit_id, Colorization.image_id, Model.identity_sha256)
                               .join(Colorization, Colorization.post_id == Post.id)
                               .join(Model, Model.id == Colorization.model_id)).all()
    with sessions.begin() as session:  # the colorize step finds the same model
        gray = model_row(session, GrayBaseline.identity)
        assert (gray.name, gray.identity_sha256) == (GRAY_MODEL_NAME, rows[0][2])
    engine.dispose()
    assert [(reddit_id, image_id) for reddit_id, image_id, _ in rows] == [("waiting", 1)]
