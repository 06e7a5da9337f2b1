"""The report's leaderboard: per model the headline score with a paired-bootstrap interval, its win
rates against gray and against every other model, n and the share of its posts that aligned.

Every model is scored on the same posts as the gray baseline, so intervals come from one bootstrap
over posts: each resample draws posts with replacement and every model is averaged over the same
draw, which keeps the models' differences paired. Ratios (the saturation ratio) are summarised the
same way as a ratio of means, Σ machine chroma / Σ human chroma, never as a mean of per-post ratios.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from eval.metrics import HEADLINE_METRIC, METRICS

HEADLINE_FALLBACK = "uv_error"
"""Ranks the leaderboard when no colorization has the headline score (all measured before it existed)."""

RESAMPLES = 2000
BOOTSTRAP_SEED = 14
"""Fixed, so the same database gives the same report."""
CONFIDENCE = 0.95
RATIO_METRICS = {"saturation_ratio": ("chroma_machine", "chroma_human")}
"""Per-post ratios and the metrics they divide: summarised as Σ numerator / Σ denominator, because a
mean of ratios is pulled up by posts whose human colorization is nearly colourless."""
_CHUNK_ENTRIES = 4_000_000
"""Resample × post counts held at once: bounds memory for tens of thousands of posts."""


def bootstrap_ratios(
    numerators: np.ndarray, denominators: np.ndarray, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Σ numerator / Σ denominator per column of two posts × columns arrays, over ``resamples``
    draws of the posts (rows) with replacement, the same draw for every column.

    Returns resamples × columns; NaN where a draw holds none of a column's posts (denominator 0).
    """
    posts, columns = numerators.shape
    replicates = np.full((resamples, columns), math.nan)
    if posts == 0:
        return replicates
    for start, counts in _resample_counts(posts, resamples, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start : start + len(counts)] = (counts @ numerators) / (counts @ denominators)
    return replicates


_CACHED_COUNTS_BYTES = 64_000_000
"""The largest draw kept for the next bootstrap (as uint8: 2,000 resamples of 32,000 posts)."""
_cached_counts: dict[tuple[int, int, int], np.ndarray] = {}


def _resample_counts(posts: int, resamples: int, seed: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first resample, resamples × posts float64 counts of each post in them), chunk by chunk.

    A report bootstraps the same posts with the same seed for its leaderboard and for each ratio,
    so the last draw is kept (where small enough) and the next bootstrap of as many posts reuses it
    instead of drawing the same numbers again, which was most of the bootstrap's time.
    """
    key = (posts, resamples, seed)
    if key in _cached_counts:
        kept = _cached_counts[key]
        chunk = max(1, _CHUNK_ENTRIES // posts)
        for start in range(0, resamples, chunk):
            yield start, kept[start : start + chunk].astype(np.float64)
        return
    keep = resamples * posts <= _CACHED_COUNTS_BYTES
    kept = np.empty((resamples, posts), dtype=np.uint8) if keep else None
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // posts)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, posts, size=(rows, posts)) + posts * np.arange(rows)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=rows * posts).reshape(rows, posts)
        if kept is not None:
            keep = keep and int(counts.max()) <= np.iinfo(np.uint8).max
            kept[start : start + rows] = counts
        yield start, counts.astype(np.float64)
    _cached_counts.clear()
    if keep:
        _cached_counts[key] = kept


def paired_intervals(numerators: pd.DataFrame, denominators: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per column (model) of two posts × models tables: Σ numerator / Σ denominator over the posts
    where both are known, with its percentile interval from the paired bootstrap."""
    num = numerators.to_numpy(np.float64)
    den = denominators.reindex(index=numerators.index, columns=numerators.columns).to_numpy(np.float64)
    known = np.isfinite(num) & np.isfinite(den)
    num, den = np.where(known, num, 0.0), np.where(known, den, 0.0)
    replicates = bootstrap_ratios(num, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = num.sum(axis=0) / den.sum(axis=0)
    return {
        str(model): _percentile_interval(float(estimates[j]), replicates[:, j], int(known[:, j].sum()))
        for j, model in enumerate(numerators.columns)
    }


def paired_means(values: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per column (model) of a posts × models table: the mean over its known posts and its interval."""
    return paired_intervals(values, pd.DataFrame(1.0, index=values.index, columns=values.columns))


def _percentile_interval(estimate: float, replicates: np.ndarray, n: int) -> dict[str, float]:
    """``CONFIDENCE`` percentile interval; NaN below two posts, where resampling shows no spread."""
    low = high = math.nan
    if n >= 2 and math.isfinite(estimate):
        tail = 100 * (1 - CONFIDENCE) / 2
        low, high = (float(bound) for bound in np.nanpercentile(replicates, [tail, 100 - tail]))
        # Summing a draw in another order can move a constant sample's bounds past its mean by rounding.
        tolerance = 1e-9 * max(1.0, abs(estimate))
        low = estimate if estimate < low <= estimate + tolerance else low
        high = estimate if estimate - tolerance <= high < estimate else high
    return {"mean": estimate, "low": low, "high": high, "n": n}


def win_rate(model: np.ndarray, other: np.ndarray, higher_is_better: bool) -> dict[str, Any]:
    """Share of the posts both have a value for where ``model`` is better than ``other``; ties count half."""
    both = np.isfinite(model) & np.isfinite(other)
    posts = int(both.sum())
    if posts == 0:
        return {"rate": math.nan, "posts": 0}
    mine, theirs = model[both], other[both]
    better = mine > theirs if higher_is_better else mine < theirs
    return {"rate": float((better.sum() + 0.5 * (mine == theirs).sum()) / posts), "posts": posts}


def ratio_summaries(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Per ratio metric and model: the ratio of means with its paired-bootstrap interval."""
    summaries = {}
    for ratio, (numerator, denominator) in RATIO_METRICS.items():
        by_model = paired_intervals(post_table(table, numerator), post_table(table, denominator))
        summaries[ratio] = {
            model: {**interval, "of": f"Σ {numerator} / Σ {denominator}"} for model, interval in by_model.items()
        }
    return summaries


def headline_metric(table: pd.DataFrame) -> str:
    """``HEADLINE_METRIC`` when any measured colorization has it, else ``HEADLINE_FALLBACK``."""
    measured = table[table["aligned"].astype(bool)]
    if HEADLINE_METRIC in measured and measured[HEADLINE_METRIC].notna().any():
        return HEADLINE_METRIC
    return HEADLINE_FALLBACK


def post_table(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Posts × models of one metric over aligned colorizations (two versions of a model on one post
    are averaged: the report compares models by name)."""
    measured = table[table["aligned"].astype(bool)]
    models = sorted(table["model"].unique())
    if measured.empty:
        return pd.DataFrame(columns=models, dtype=np.float64)
    values = measured.pivot_table(index="reddit_id", columns="model", values=metric, aggfunc="mean", dropna=False)
    return values.reindex(columns=models).astype(np.float64)


def build_leaderboard(table: pd.DataFrame, baseline: str) -> dict[str, Any]:
    """The leaderboard of a report's per-colorization table (see the module's docstring).

    Rows are best first; ``note`` says when the headline score is missing and what was done instead.
    """
    metric = headline_metric(table)
    higher = METRICS[metric].better == "higher"
    scores = post_table(table, metric)
    values = scores.to_numpy(np.float64)
    intervals = paired_means(scores)
    models = [str(model) for model in scores.columns]
    aligned_share = table.groupby("model")["aligned"].mean() if len(table) else pd.Series(dtype=float)
    rows = []
    for j, model in enumerate(models):
        wins = {other: win_rate(values[:, j], values[:, k], higher) for k, other in enumerate(models) if k != j}
        rows.append({"model": model, **intervals[model], "aligned_share": float(aligned_share[model]), "wins": wins})
    rows.sort(key=lambda row: (not math.isfinite(row["mean"]), -row["mean"] if higher else row["mean"], row["model"]))
    opponents = ([baseline] if baseline in models else []) + [row["model"] for row in rows if row["model"] != baseline]
    return {
        "metric": metric,
        "label": METRICS[metric].label,
        "better": METRICS[metric].better,
        "note": _missing_note(table, metric),
        "interval": f"{100 * CONFIDENCE:g} % percentile interval, paired bootstrap over posts "
        f"({RESAMPLES} resamples, seed {BOOTSTRAP_SEED})",
        "win_rate": "share of the posts both colorized where the row's model scores better; ties count half",
        "opponents": opponents,
        "rows": rows,
    }


def _missing_note(table: pd.DataFrame, metric: str) -> str | None:
    measured = table[table["aligned"].astype(bool)]
    if metric != HEADLINE_METRIC:
        fallback = METRICS[metric]
        return (
            f"No measured colorization has the {METRICS[HEADLINE_METRIC].label} ({HEADLINE_METRIC}) yet: all were "
            f"measured before it existed, so the leaderboard ranks by {fallback.label} ({fallback.better} is better)."
        )
    missing = int(measured[metric].isna().sum())
    if missing:
        return (
            f"{missing} of {len(measured)} measured colorizations have no {METRICS[metric].label} (measured before "
            "it existed) and are left out of the leaderboard."
        )
    return None
