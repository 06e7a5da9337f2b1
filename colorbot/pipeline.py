"""The colorize step: every fetched post's original, colorized by every enabled model.

A post in state ``fetched`` gets one ``colorizations`` row per model (the unique key on (post,
model) makes a rerun after a crash skip what is done) and moves to ``colorized`` once every model
has done it. The gray baseline (``colorizer.baseline``) is one of the models. Each (post, model)
commits on its own: a crash loses at most the colorization in hand. A model that fails on a post
(anything it raises, or a result that cannot be stored) leaves the error on the post and tries
again next run, up to ``MAX_ATTEMPTS``; an original that cannot be decoded is skipped with the
reason at once, since no retry can fix it. Neither stops the run: the posts behind it are
colorized all the same.

Many workers may run the step at once: each claims a few posts at a time (``db.claims``) and
stores a result only while the post is still its own; a colorization another worker stored first
counts as done.

What is not the post's fault stops the run without counting against any post: a served model
whose version is no longer served (``ModelChangedError``: what it computes now must be recorded as
a new model, once the colorizers are opened again), a model server that is down
(``ModelUnavailableError``) and a database error. The next run carries on where this one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import closing
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from colorizer.client import Colorizer, ModelChangedError, ModelIdentity, ModelUnavailableError
from colorizer.images import UnreadableImageError, decode, png_image
from db.models import Colorization, ImageRole, Model, Post, PostImage, PostState
from db.claims import Claims, each_claimed
from db.store import advance_post, get_or_create_model, insert_new, skip_post, store_image

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@dataclass
class ColorizeSummary:
    posts: int = 0
    colorizations: int = 0
    failed: int = 0
    skipped: int = 0
    taken_over: int = 0  # lost to another worker when our lease ran out

    def line(self) -> str:
        taken = f", {self.taken_over} taken over by other workers" if self.taken_over else ""
        return (f"colorize: {self.posts} posts done, {self.colorizations} colorizations stored, "
                f"{self.failed} failed, {self.skipped} skipped{taken}")


def model_row(session: Session, identity: ModelIdentity) -> Model:
    """The model's row; raises ``db.store.ModelIdentityClash`` if its name and version are another model's."""
    return get_or_create_model(
        session, name=identity.name, version=identity.version, config=identity.config, **identity.settings()
    )


def register_models(sessions: sessionmaker[Session], colorizers: list[Colorizer]) -> list[int]:
    """The models' row ids, in order, storing the new ones: a clash refuses them all before any work."""
    with sessions.begin() as session:
        return [model_row(session, colorizer.identity).id for colorizer in colorizers]


def colorize_pending(
    sessions: sessionmaker[Session],
    colorizers: list[Colorizer],
    *,
    stop: threading.Event | None = None,
    limit: int | None = None,
    progress: bool = False,
    claims: Claims | None = None,
) -> ColorizeSummary:
    """Colorize the originals of posts in state ``fetched`` with each model that has not yet."""
    summary = ColorizeSummary()
    model_ids = register_models(sessions, colorizers)
    claims = claims or Claims(sessions)
    pending = each_claimed(claims, [Post.state == PostState.FETCHED.value], order_by=[Post.created_utc],
                           limit=limit, stop=stop)
    with closing(pending):  # a run stopped by an error gives its claims up at once, not when collected
        for post_id in tqdm(pending, desc="colorize", unit="post", disable=not progress):
            _colorize_post(sessions, claims, post_id, colorizers, model_ids, summary)
    return summary


def _colorize_post(sessions, claims: Claims, post_id: int, colorizers: list[Colorizer], model_ids: list[int],
                   summary: ColorizeSummary) -> None:
    with sessions() as session:
        post = session.get(Post, post_id)
        original = session.scalar(
            select(PostImage).where(PostImage.post_id == post_id, PostImage.role == ImageRole.ORIGINAL.value)
        )
        done = set(session.scalars(select(Colorization.model_id).where(Colorization.post_id == post_id)))
        data = original.image.data if original is not None else None
        original_id = original.image_id if original is not None else None
        reddit_id = post.reddit_id
    if data is None:
        _skip(sessions, claims, post_id, "no original image stored to colorize", summary)
        return
    try:
        pixels = decode(data)
    except UnreadableImageError as exc:
        _skip(sessions, claims, post_id, f"original cannot be decoded: {exc}", summary)
        return

    errors = []
    for colorizer, model_id in zip(colorizers, model_ids):
        if model_id in done:
            continue
        claims.renew_if_due()
        started = time.perf_counter()
        try:
            result = None if getattr(colorizer, "unchanged_input", False) else png_image(colorizer.colorize([pixels])[0])
        except (ModelChangedError, ModelUnavailableError, SQLAlchemyError):
            raise  # not the post's fault: the run stops and the next one reopens the models
        except Exception as exc:  # noqa: BLE001 - one model failing must not stop the others or the job
            errors.append(f"{colorizer.identity.name}: {type(exc).__name__}: {exc}")
            log.warning("post %s: model %s failed: %s", reddit_id, colorizer.identity.name, exc)
            continue
        seconds = time.perf_counter() - started
        with sessions.begin() as session:
            if not claims.holds(session, post_id):
                _taken_over(reddit_id, summary)
                return
            image_id = original_id if result is None else store_image(session, result).id
            if insert_new(session, Colorization, post_id=post_id, model_id=model_id, image_id=image_id,
                          seconds=seconds):
                summary.colorizations += 1

    with sessions.begin() as session:
        if not claims.holds(session, post_id):
            _taken_over(reddit_id, summary)
            return
        post = session.get(Post, post_id)
        claims.release(post)
        if errors:
            post.last_error = "colorize: " + "; ".join(errors)[:2000]
            post.attempts += 1
            summary.failed += 1
            if post.attempts >= MAX_ATTEMPTS:
                skip_post(post, f"colorizing failed {post.attempts} times: {post.last_error}")
        elif post.state == PostState.FETCHED.value:
            advance_post(post, PostState.COLORIZED)
            summary.posts += 1


def _skip(sessions, claims: Claims, post_id: int, reason: str, summary: ColorizeSummary) -> None:
    with sessions.begin() as session:
        if not claims.holds(session, post_id):
            return
        post = session.get(Post, post_id)
        claims.release(post)
        skip_post(post, reason)
    summary.skipped += 1


def _taken_over(reddit_id: str, summary: ColorizeSummary) -> None:
    """Our lease ran out and another worker has the post now: what it stores counts, not ours."""
    log.warning("post %s: claimed by another worker meanwhile (our lease ran out); leaving it to that one", reddit_id)
    summary.taken_over += 1
