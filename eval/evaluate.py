"""The evaluate step: align each post's human colorization once, then measure every colorization.

A post in state ``colorized`` gets an ``alignments`` row, a ``metrics`` row per metric and
colorization (the "gray" baseline's among them: the colorize step made that one), and moves to
``evaluated``.
When the alignment is refused the refusal and its reason are stored, no metrics are, and the post
still moves to ``evaluated`` with ``skip_reason`` saying why it has no numbers: there is nothing
more to try for it. Colorizations added later (a new model) are measured on the next run against
the stored alignment. Each post commits on its own, so a crash loses at most the post in hand.

A post that cannot be evaluated (an image missing or undecodable, a composite that does not
split, any error of the measuring code) keeps the error in ``last_error`` with one more
``attempts``; whatever it had half-stored is rolled back, so no colorization is left with only
some of its metrics. After ``eval.max_attempts`` failures a colorized post is skipped with the
last error, so it is not retried on every run for ever. (An evaluated post whose newer
colorization cannot be measured keeps its state and is no longer retried.) Database errors (a lock
held too long, a full disk) are not the post's fault: they fail the job and count against nothing.
Many workers may evaluate at once: each claims a few posts at a time (``db.claims``).
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass

import cv2
import numpy as np
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from colorizer.baseline import GRAY_MODEL_NAME, GRAY_MODEL_VERSION
from colorizer.images import UnreadableImageError, decode
from db.claims import Claims, each_claimed
from db.models import Alignment, Colorization, ImageRole, Metric, Post, PostState
from db.models import Image as StoredImage
from db.store import advance_post, skip_post
from eval.align import AlignmentResult, align, warp_into
from eval.metrics import measure, prepare_reference
from eval.settings import EvalSettings
from eval.split import NotACompositeError, split_composite

log = logging.getLogger(__name__)

__all__ = ["GRAY_MODEL_NAME", "GRAY_MODEL_VERSION", "EvaluationSummary", "evaluate_pending", "evaluate_post",
           "original_and_human"]

UNALIGNED_PREFIX = "not measured: the human colorization could not be aligned to the original"


@dataclass
class EvaluationSummary:
    """What one run of the evaluate step did."""

    posts: int = 0
    metrics: int = 0
    refused: int = 0
    failed: int = 0
    skipped: int = 0  # failed for the last allowed time: skipped with the error


@dataclass
class PostEvaluation:
    """What evaluating one post stored."""

    metrics: int
    aligned: bool


class MissingImageError(LookupError):
    """A post lacks the original or the human colorization."""


def evaluate_pending(
    sessions: sessionmaker[Session], settings: EvalSettings | None = None, limit: int | None = None,
    *, claims: Claims | None = None,
) -> EvaluationSummary:
    """Evaluate every post that is colorized, or has an unmeasured colorization and an alignment."""
    settings = settings or EvalSettings()
    summary = EvaluationSummary()
    claims = claims or Claims(sessions)
    with closing(each_claimed(claims, [_pending(settings.max_attempts)], order_by=[Post.created_utc],
                              limit=limit)) as pending:
        for post_id in pending:
            _evaluate_claimed(sessions, claims, post_id, settings, summary)
    return summary


def _evaluate_claimed(sessions: sessionmaker[Session], claims: Claims, post_id: int, settings: EvalSettings,
                      summary: EvaluationSummary) -> None:
    """Evaluate one claimed post in one transaction, which also gives the claim up."""
    with sessions.begin() as session:
        if not claims.holds(session, post_id):
            log.warning("post %d: claimed by another worker meanwhile (our lease ran out)", post_id)
            return
        post = session.get(Post, post_id)
        claims.release(post)
        try:
            with session.begin_nested():
                outcome = evaluate_post(session, post, settings)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # noqa: BLE001 - one post's bad images must not stop the others
            _record_failure(post, exc, settings.max_attempts, summary)
            return
    summary.posts += 1
    summary.metrics += outcome.metrics
    summary.refused += not outcome.aligned


def _record_failure(post: Post, exc: Exception, max_attempts: int, summary: EvaluationSummary) -> None:
    known = (MissingImageError, NotACompositeError, UnreadableImageError, ValueError)
    reason = str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"
    post.last_error = f"evaluate: {reason}"[:2000]
    post.attempts += 1
    summary.failed += 1
    log.warning("post %s not evaluated (attempt %d of %d): %s", post.reddit_id, post.attempts, max_attempts, reason)
    if post.attempts >= max_attempts and post.state == PostState.COLORIZED.value:
        skip_post(post, f"evaluation failed {post.attempts} times: {reason}"[:2000])
        summary.skipped += 1


def evaluate_post(session: Session, post: Post, settings: EvalSettings) -> PostEvaluation:
    """Align (once), measure the post's unmeasured colorizations and mark it evaluated."""
    original, human = original_and_human(post)
    alignment, result = _alignment_for(session, post, original, human, settings)
    stored = 0
    if alignment.accepted:
        reference = None  # the human side, converted once for all of the post's colorizations
        for colorization in _unmeasured(session, post):
            machine = _in_frame(decode(colorization.image.data), original.shape[:2])
            if reference is None:
                reference = prepare_reference(result.warped, result.valid)
            for name, value in measure(machine, reference).items():
                if np.isfinite(value):  # a ratio over a colourless human has no value
                    session.add(
                        Metric(colorization_id=colorization.id, alignment_id=alignment.id, name=name, value=value)
                    )
                    stored += 1
        post.skip_reason = None
    else:
        post.skip_reason = f"{UNALIGNED_PREFIX}: {alignment.reason}"
    post.last_error = None
    if post.state == PostState.COLORIZED.value:
        advance_post(post, PostState.EVALUATED)
    else:
        post.attempts = 0  # earlier failures at measuring a newer colorization are behind it
    return PostEvaluation(metrics=stored, aligned=alignment.accepted)


def original_and_human(post: Post) -> tuple[np.ndarray, np.ndarray]:
    """The post's black-and-white original and human colorization as uint8 RGB arrays.

    Taken from the ``original`` and ``colorization`` images, or split from the ``composite``.
    """
    original, human = _role_image(post, ImageRole.ORIGINAL), _role_image(post, ImageRole.COLORIZATION)
    if original is not None and human is not None:
        return decode(original.data), decode(human.data)
    composite = _role_image(post, ImageRole.COMPOSITE)
    if composite is None:
        raise MissingImageError(f"post {post.reddit_id} has no stored original and human colorization")
    split = split_composite(decode(composite.data))
    return split.original, split.colorization


def _alignment_for(
    session: Session, post: Post, original: np.ndarray, human: np.ndarray, settings: EvalSettings
) -> tuple[Alignment, AlignmentResult]:
    """The post's stored alignment with the warped human image, computing and storing it if new."""
    stored = session.scalar(select(Alignment).where(Alignment.post_id == post.id))
    if stored is not None:
        result = AlignmentResult(accepted=stored.accepted, reason=stored.reason)
        if stored.accepted:
            result.transform = np.asarray(stored.transform["matrix"], dtype=np.float64)
            result.warped, result.valid = warp_into(human, result.transform, original.shape[:2])
        return stored, result
    result = align(original, human, settings)
    row = Alignment(
        post_id=post.id,
        accepted=result.accepted,
        method=result.method,
        transform=result.transform_record(),
        inliers=result.inliers,
        inlier_ratio=result.inlier_ratio,
        median_residual=result.median_residual,
        overlap=result.overlap,
        correlation=result.correlation,
        reason=result.reason,
    )
    session.add(row)
    session.flush()
    return row, result


def _pending(max_attempts: int) -> ColumnElement[bool]:
    """Which posts to evaluate: colorized ones, and measured ones with a new colorization that
    has not failed ``max_attempts`` times."""
    unmeasured = exists().where(
        Colorization.post_id == Post.id, ~exists().where(Metric.colorization_id == Colorization.id)
    )
    accepted = exists().where(Alignment.post_id == Post.id, Alignment.accepted.is_(True))
    return or_(Post.state == PostState.COLORIZED.value, unmeasured & accepted & (Post.attempts < max_attempts))


def _unmeasured(session: Session, post: Post) -> list[Colorization]:
    return list(
        session.scalars(
            select(Colorization)
            .where(Colorization.post_id == post.id, ~exists().where(Metric.colorization_id == Colorization.id))
            .order_by(Colorization.id)
        )
    )


def _role_image(post: Post, role: ImageRole) -> StoredImage | None:
    return next((link.image for link in post.images if link.role == role.value), None)


def _in_frame(machine: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The machine colorization at the original's size (models may work at another resolution)."""
    if machine.shape[:2] == shape:
        return machine
    return cv2.resize(machine, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
