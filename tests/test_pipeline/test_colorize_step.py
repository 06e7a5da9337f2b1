"""The colorize step on a real SQLite file: retries, give-ups and what counts as an attempt."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np
import PIL.Image
from sqlalchemy import select

from colorbot.pipeline import MAX_ATTEMPTS, colorize_pending
import pytest

from colorizer.client import ModelChangedError, ModelIdentity
from colorizer.images import examine
from db import Colorization, ImageRole, Post, PostImage, PostState
from db.store import advance_post, store_image


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
