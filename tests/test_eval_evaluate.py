from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
import skimage.data
from sqlalchemy import func, select

from colorizer.images import examine
from db.models import Alignment, Colorization, Metric, Model, Post, PostImage, PostState
from db.store import get_or_create_model, store_image
from eval.evaluate import GRAY_MODEL_NAME, UNALIGNED_PREFIX, evaluate_pending
from eval.metrics import METRICS
from eval.settings import EvalSettings
from tests.factories import add_encoded_post, add_post, gray_copy, png


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()[::2, ::2].copy()  # 256 × 256 keeps the test quick


def metrics_of(session, post_id: int, model_name: str) -> dict[str, float]:
    rows = session.execute(
        select(Metric.name, Metric.value)
        .join(Colorization, Metric.colorization_id == Colorization.id)
        .join(Model, Colorization.model_id == Model.id)
        .where(Colorization.post_id == post_id, Model.name == model_name)
    ).all()
    return dict(rows)


def test_aligned_post_gets_metrics_for_model_and_gray_baseline(sessions, astronaut):
    human = astronaut[10:-6, 8:-4]  # the colourist cropped a little
    with sessions.begin() as session:
        post_id = add_post(session, "abc", gray_copy(astronaut), human, machine=astronaut)
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.refused, summary.failed) == (1, 0, 0)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.state == PostState.EVALUATED.value and post.skip_reason is None
        alignment = session.scalars(select(Alignment).where(Alignment.post_id == post_id)).one()
        assert alignment.accepted and alignment.transform["matrix"][0][2] == pytest.approx(8, abs=0.5)
        machine, gray = metrics_of(session, post_id, "resenc"), metrics_of(session, post_id, GRAY_MODEL_NAME)
    assert set(machine) == set(gray) == set(METRICS)
    assert summary.metrics == 2 * len(METRICS)
    assert machine["psnr"] > 40 and machine["delta_e_2000"] < 1.0, "the machine output is the human's photo"
    assert gray["saturation_ratio"] < 0.01 and gray["auc"] < machine["auc"]


def test_rerun_adds_nothing_and_new_model_is_measured_later(sessions, astronaut):
    with sessions.begin() as session:
        post_id = add_post(session, "def", gray_copy(astronaut), astronaut, machine=None)
    evaluate_pending(sessions)
    assert evaluate_pending(sessions).posts == 0
    with sessions.begin() as session:
        model = get_or_create_model(session, name="later", version="1")
        image = store_image(session, examine(png(astronaut[..., ::-1].copy())))
        session.add(Colorization(post_id=post_id, model_id=model.id, image_id=image.id, seconds=2.0))
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.metrics) == (1, len(METRICS))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alignment)) == 1


def test_unalignable_post_is_evaluated_with_reason_and_no_metrics(sessions, astronaut):
    unrelated = skimage.data.coffee()
    with sessions.begin() as session:
        post_id = add_post(session, "ghi", gray_copy(astronaut), unrelated, machine=astronaut)
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.refused, summary.metrics) == (1, 1, 0)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.state == PostState.EVALUATED.value
        assert post.skip_reason.startswith(UNALIGNED_PREFIX)
        assert not session.scalars(select(Alignment).where(Alignment.post_id == post_id)).one().accepted
        assert session.scalar(select(func.count()).select_from(Metric)) == 0


def add_post_with_only_an_original(session, reddit_id: str, original) -> None:
    """A colorized post whose human colorization is missing: it can never be measured."""
    post = Post(reddit_id=reddit_id, subreddit="colorization", created_utc=datetime.now(timezone.utc))
    post.state = PostState.COLORIZED.value
    session.add(post)
    session.flush()
    session.add(PostImage(post_id=post.id, image_id=store_image(session, examine(png(original))).id, role="original"))


def test_post_without_human_colorization_records_an_error(sessions, astronaut):
    with sessions.begin() as session:
        add_post_with_only_an_original(session, "jkl", astronaut)
    assert evaluate_pending(sessions).failed == 1
    with sessions() as session:
        post = session.scalars(select(Post)).one()
        assert post.state == PostState.COLORIZED.value and "no stored original and human" in post.last_error


def test_a_post_that_can_never_be_evaluated_is_skipped_after_max_attempts(sessions, astronaut):
    with sessions.begin() as session:
        add_post_with_only_an_original(session, "never", astronaut)
    settings = EvalSettings(max_attempts=2)
    first = evaluate_pending(sessions, settings)
    assert (first.failed, first.skipped) == (1, 0)
    second = evaluate_pending(sessions, settings)
    assert (second.failed, second.skipped) == (1, 1)
    with sessions() as session:
        post = session.scalars(select(Post)).one()
        assert post.state == PostState.SKIPPED.value and post.attempts == 2
        assert post.skip_reason.startswith("evaluation failed 2 times: ")
        assert "no stored original and human" in post.skip_reason
        # What the failed tries began (the gray baseline) was rolled back with them.
        assert session.scalar(select(func.count()).select_from(Colorization)) == 0
    third = evaluate_pending(sessions, settings)
    assert (third.posts, third.failed) == (0, 0)  # given up: not tried again


def test_a_failure_half_way_through_a_post_stores_none_of_its_metrics(sessions, astronaut, monkeypatch):
    import eval.evaluate

    with sessions.begin() as session:
        post_id = add_post(session, "half", gray_copy(astronaut), astronaut[10:-6, 8:-4], machine=astronaut)
    real_measure, calls = eval.evaluate.measure, []

    def measure_once_then_fail(machine, reference):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("image file is truncated")  # not a ValueError: once, this stopped the whole job
        return real_measure(machine, reference)

    monkeypatch.setattr(eval.evaluate, "measure", measure_once_then_fail)
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.failed, summary.metrics) == (0, 1, 0)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.state == PostState.COLORIZED.value and post.attempts == 1
        assert post.last_error == "evaluate: OSError: image file is truncated"
        assert session.scalar(select(func.count()).select_from(Metric)) == 0

    monkeypatch.setattr(eval.evaluate, "measure", real_measure)
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.failed) == (1, 0)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.state == PostState.EVALUATED.value and post.last_error is None
        assert set(metrics_of(session, post_id, "resenc")) == set(metrics_of(session, post_id, GRAY_MODEL_NAME))
        assert len(metrics_of(session, post_id, "resenc")) == len(METRICS)


def test_a_database_error_fails_the_run_and_counts_against_no_post(sessions, astronaut, monkeypatch):
    import eval.evaluate
    from sqlalchemy.exc import OperationalError

    with sessions.begin() as session:
        post_id = add_post(session, "dbx", gray_copy(astronaut), astronaut, machine=astronaut)

    def database_full(*_args):
        raise OperationalError("INSERT INTO metrics ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(eval.evaluate, "evaluate_post", database_full)
    with pytest.raises(OperationalError):
        evaluate_pending(sessions)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert (post.state, post.attempts, post.last_error) == (PostState.COLORIZED.value, 0, None)


def test_a_sixteen_bit_original_is_measured_like_its_eight_bit_twin(sessions, astronaut):
    gray = gray_copy(astronaut)[..., 0]
    eight = png(gray)
    sixteen = png(gray.astype(np.uint16) * 257)  # the same photo, scanned at 16 bits
    with sessions.begin() as session:
        twins = {name: add_encoded_post(session, name, data, png(astronaut))
                 for name, data in (("eight", eight), ("sixteen", sixteen))}
    summary = evaluate_pending(sessions)
    assert (summary.posts, summary.refused, summary.failed) == (2, 0, 0)
    with sessions() as session:
        measured = {name: metrics_of(session, post_id, GRAY_MODEL_NAME) for name, post_id in twins.items()}
    assert measured["sixteen"] == pytest.approx(measured["eight"])
