"""Every metric and the headline score of colorizations against one reference, outside any database.

A candidate is aligned onto the reference exactly as a post's human colorization is aligned onto
its original (same settings, same acceptance rules) and measured where it covers the reference;
with ``aligned=True`` the two already share a frame and every pixel is measured.
"""

from __future__ import annotations

import numpy as np

from eval.align import align
from eval.metrics import measure, prepare_reference
from eval.settings import EvalSettings


class NotComparableError(ValueError):
    """A candidate that cannot be measured against the reference; the message says why."""


def compare_images(
    reference: np.ndarray, candidate: np.ndarray, *, aligned: bool = False, settings: EvalSettings | None = None
) -> dict[str, float]:
    """Every metric of ``eval.metrics.METRICS`` of ``candidate`` against ``reference`` (uint8 RGB)."""
    if aligned:
        if candidate.shape[:2] != reference.shape[:2]:
            raise NotComparableError(
                f"{candidate.shape[1]}x{candidate.shape[0]} does not match the reference's "
                f"{reference.shape[1]}x{reference.shape[0]}; leave out --aligned to align it first"
            )
        warped, valid = candidate, np.ones(reference.shape[:2], bool)
    else:
        result = align(reference, candidate, settings)
        if not result.accepted:
            raise NotComparableError(f"cannot be aligned to the reference: {result.reason}")
        warped, valid = result.warped, result.valid
    try:
        return measure(warped, prepare_reference(reference, valid))
    except ValueError as exc:  # too little measured area for a metric's window
        raise NotComparableError(str(exc)) from None
