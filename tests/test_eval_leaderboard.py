from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import eval.leaderboard as leaderboard
from eval.leaderboard import bootstrap_ratios, build_leaderboard, paired_means, ratio_summaries, win_rate
from eval.metrics import HEADLINE_METRIC
from eval.report import summarise


def table_of(rows: list[tuple], columns=("reddit_id", "model", "aligned", HEADLINE_METRIC, "uv_error")) -> pd.DataFrame:
    """A report table (one row per colorization) with just the columns a test needs."""
    return pd.DataFrame.from_records(rows, columns=list(columns))


SCORED = table_of([
    ("a", "gray", True, 0.2, 0.30), ("a", "resenc", True, 0.9, 0.10), ("a", "rival", True, 0.5, 0.20),
    ("b", "gray", True, 0.4, 0.30), ("b", "resenc", True, 0.4, 0.25),
    ("c", "gray", True, 0.1, 0.40), ("c", "resenc", True, 0.6, 0.20), ("c", "rival", True, 0.7, 0.15),
    ("d", "gray", False, math.nan, math.nan), ("d", "resenc", False, math.nan, math.nan),
])


def test_leaderboard_rows_by_hand():
    board = build_leaderboard(SCORED, "gray")
    rows = {row["model"]: row for row in board["rows"]}
    assert [row["model"] for row in board["rows"]] == ["resenc", "rival", "gray"]  # means 0.633, 0.6, 0.233
    assert board["opponents"] == ["gray", "resenc", "rival"]
    resenc = rows["resenc"]
    assert resenc["mean"] == pytest.approx((0.9 + 0.4 + 0.6) / 3) and resenc["n"] == 3
    assert resenc["aligned_share"] == pytest.approx(3 / 4)
    assert resenc["wins"]["gray"] == {"rate": pytest.approx((1 + 0.5 + 1) / 3), "posts": 3}  # b is a tie
    assert resenc["wins"]["rival"] == {"rate": 0.5, "posts": 2}  # only a and c have both
    assert rows["rival"]["wins"]["resenc"] == {"rate": 0.5, "posts": 2}
    assert rows["gray"]["wins"]["resenc"]["rate"] == pytest.approx(1 - resenc["wins"]["gray"]["rate"])
    assert rows["gray"]["aligned_share"] == pytest.approx(3 / 4) and rows["rival"]["aligned_share"] == 1.0
    assert board["note"] is None and board["metric"] == HEADLINE_METRIC
    for row in board["rows"]:
        assert row["low"] <= row["mean"] <= row["high"]


def test_bootstrap_is_the_plain_resampled_mean_in_any_chunking(monkeypatch):
    values = np.random.default_rng(0).normal(size=(37, 2))
    expected = values[np.random.default_rng(5).integers(0, 37, size=(300, 37))].mean(axis=1)
    monkeypatch.setattr(leaderboard, "_CHUNK_ENTRIES", 37 * 7)  # 43 chunks of 7 resamples, one of 6
    replicates = bootstrap_ratios(values, np.ones_like(values), resamples=300, seed=5)
    np.testing.assert_allclose(replicates, expected, rtol=1e-12)


def test_a_bootstrap_of_as_many_posts_reuses_the_last_draw_and_gives_what_a_fresh_draw_gives(monkeypatch):
    monkeypatch.setattr(leaderboard, "_CHUNK_ENTRIES", 37 * 7)  # the kept draw is handed out in chunks too
    leaderboard._cached_counts.clear()
    first, second = np.random.default_rng(0).normal(size=(2, 37, 2))
    bootstrap_ratios(first, np.ones_like(first), resamples=300, seed=5)
    assert list(leaderboard._cached_counts) == [(37, 300, 5)], "the draw is kept for the next bootstrap"
    for seed in (5, 6):  # the kept draw, then another seed's own
        expected = second[np.random.default_rng(seed).integers(0, 37, size=(300, 37))].mean(axis=1)
        replicates = bootstrap_ratios(second, np.ones_like(second), resamples=300, seed=seed)
        np.testing.assert_allclose(replicates, expected, rtol=1e-12)
    assert list(leaderboard._cached_counts) == [(37, 300, 6)], "only the last draw is kept"


def test_every_model_is_averaged_over_the_same_resample_of_posts():
    gray = np.random.default_rng(1).uniform(size=50)
    scores = pd.DataFrame({"gray": gray, "better": gray + 0.1})
    replicates = bootstrap_ratios(scores.to_numpy(), np.ones((50, 2)))
    np.testing.assert_allclose(replicates[:, 1] - replicates[:, 0], 0.1)  # paired: only the shift differs
    intervals = paired_means(scores)
    assert intervals["better"]["low"] == pytest.approx(intervals["gray"]["low"] + 0.1)


def test_interval_shrinks_with_more_posts_and_is_reproducible():
    rng = np.random.default_rng(2)
    few, many = (pd.DataFrame({"m": rng.normal(0.5, 0.2, size=n)}) for n in (20, 2000))
    intervals = {"few": paired_means(few)["m"], "many": paired_means(many)["m"]}
    width = {name: interval["high"] - interval["low"] for name, interval in intervals.items()}
    assert width["many"] < width["few"] / 5  # about √100 = 10 times narrower
    assert paired_means(few) == paired_means(few)
    # the normal approximation's 1.96 s/√n, which the bootstrap of a mean should be close to
    assert width["many"] == pytest.approx(2 * 1.96 * many["m"].std() / math.sqrt(2000), rel=0.1)


def test_one_post_has_no_interval_and_constant_scores_a_zero_width_one():
    scores = pd.DataFrame({"one": [0.3, math.nan, math.nan], "constant": [0.1, 0.1, 0.1]})
    intervals = paired_means(scores)
    assert intervals["one"]["mean"] == 0.3 and math.isnan(intervals["one"]["low"]) and intervals["one"]["n"] == 1
    constant = intervals["constant"]
    assert constant["low"] <= constant["mean"] <= constant["high"] and constant["high"] - constant["low"] < 1e-12


def test_win_rate_ignores_posts_either_lacks_and_counts_ties_half():
    model, other = np.array([1.0, 2.0, 3.0, math.nan]), np.array([0.5, 2.0, math.nan, 1.0])
    assert win_rate(model, other, higher_is_better=True) == {"rate": 0.75, "posts": 2}
    assert win_rate(model, other, higher_is_better=False) == {"rate": 0.25, "posts": 2}
    assert math.isnan(win_rate(model, np.full(4, math.nan), True)["rate"])


def test_saturation_ratio_is_the_ratio_of_means_not_the_mean_of_ratios():
    # a nearly colourless human colorization makes its post's ratio huge: a mean of ratios would follow it
    rows = [("a", "resenc", True, 10.0, 20.0, 0.5), ("b", "resenc", True, 4.0, 0.5, 8.0),
            ("c", "resenc", True, 6.0, 12.0, 0.5), ("d", "resenc", False, math.nan, math.nan, math.nan)]
    table = table_of(rows, ("reddit_id", "model", "aligned", "chroma_machine", "chroma_human", "saturation_ratio"))
    ratio = ratio_summaries(table)["saturation_ratio"]["resenc"]
    assert ratio["mean"] == pytest.approx(20.0 / 32.5) and ratio["n"] == 3
    assert 0 <= ratio["low"] <= ratio["mean"] <= ratio["high"]
    assert summarise(table)["resenc"]["metrics"]["saturation_ratio"] == ratio


def test_without_any_headline_score_the_leaderboard_ranks_by_uv_error_and_says_so():
    board = build_leaderboard(SCORED.assign(**{HEADLINE_METRIC: math.nan}), "gray")
    assert board["metric"] == "uv_error" and "before it existed" in board["note"]
    assert [row["model"] for row in board["rows"]] == ["rival", "resenc", "gray"]  # lowest UV error first
    rows = {row["model"]: row for row in board["rows"]}
    assert rows["resenc"]["wins"]["gray"] == {"rate": 1.0, "posts": 3}  # lower UV error wins


def test_old_rows_without_the_score_are_left_out_and_counted():
    old = SCORED.copy()
    old.loc[(old["reddit_id"] == "a") & (old["model"] == "resenc"), HEADLINE_METRIC] = math.nan
    board = build_leaderboard(old, "gray")
    assert board["metric"] == HEADLINE_METRIC and board["note"].startswith("1 of 8 measured colorizations")
    resenc = next(row for row in board["rows"] if row["model"] == "resenc")
    assert resenc["n"] == 2 and resenc["mean"] == pytest.approx(0.5)


def test_a_model_without_aligned_posts_is_listed_last_without_numbers():
    table = pd.concat([SCORED, table_of([("d", "unaligned", False, math.nan, math.nan)])], ignore_index=True)
    board = build_leaderboard(table, "gray")
    last = board["rows"][-1]
    assert last["model"] == "unaligned" and last["n"] == 0 and math.isnan(last["mean"]) and last["aligned_share"] == 0


def test_leaderboard_of_an_empty_table():
    board = build_leaderboard(table_of([]), "gray")
    assert board["rows"] == [] and board["opponents"] == []
