"""Cut a before/after composite into its black-and-white original and its colorization.

Many r/colorization posts are one image: the old photo beside (or above) the colourist's version.
The gray or tinted half has almost no colour that is not explained by brightness, the colour half
has plenty, so the residual chroma of each column (or row) steps from low to high at the seam.
The step is found by fitting two constant segments to that profile; a blank divider near it is
cut out, and blank borders are trimmed from both halves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from skimage.color import rgb2lab

ANALYSIS_SIDE = 512
"""Longest side of the copy the seam is searched on (a pixel there is 0.2 % of the side)."""

MIN_SIDE_SHARE = 0.2
"""Each half must be at least this share of the width (or height)."""

MONOCHROME_MAX_RESIDUAL = 3.0
"""Mean residual chroma (Lab units) the gray half must stay below."""

COLOUR_MIN_RESIDUAL = 5.0
"""Mean residual chroma the colour half must exceed."""

PADDING_MIN_LIGHTNESS = 97.0
"""Near-white pixels (L* above this) are padding or paper, left out of the chroma profile."""

PADDING_MAX_LIGHTNESS = 3.0
"""Near-black pixels are left out too: their a and b are noise."""

BLANK_LINE_MAX_STD = 2.0
"""A row or column whose gray levels (0–255) vary less than this is blank: a divider or border."""

SEAM_SEARCH_SHARE = 0.03
"""How far (share of the width or height) before the first colour line the seam is looked for."""

SAME_PICTURE_MIN_CORRELATION = 0.5
"""Luminance correlation of the halves' 32×32 thumbnails below which they are two different
pictures (a gray sky above a colourful field, say) rather than one photo before and after."""

THUMBNAIL_SIDE = 32

MIN_VALID_SHARE = 0.1
"""A column whose valid (non-padding) pixels are fewer than this share is left out of the fit."""


class NotACompositeError(ValueError):
    """The image is not a before/after composite; the message says why."""


@dataclass
class CompositeSplit:
    """The two halves of a composite, trimmed of borders and divider."""

    orientation: str
    """``"side-by-side"`` or ``"over-under"``."""
    seam: int
    """Column (side-by-side) or row (over-under) of the full image where the halves meet."""
    original: np.ndarray
    """The gray or tinted half."""
    colorization: np.ndarray
    """The colour half."""


@dataclass
class _Step:
    """The best two-segment fit of one residual-chroma profile."""

    seam: int
    low: float
    high: float
    low_first: bool
    cost: float


def split_composite(rgb: np.ndarray) -> CompositeSplit:
    """Split a uint8 RGB before/after composite; raise ``NotACompositeError`` for anything else."""
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise NotACompositeError(f"not an 8-bit colour image (shape {rgb.shape}, {rgb.dtype})")
    rgb = np.ascontiguousarray(rgb[..., :3])
    small, scale = _analysis_copy(rgb)
    lab = rgb2lab(small)
    steps = []
    for axis, orientation in ((1, "side-by-side"), (0, "over-under")):
        profile = _residual_chroma_profile(lab, axis)
        step = _best_step(profile)
        if step is not None:
            steps.append((orientation, axis, profile, step))
    if not steps:
        raise NotACompositeError("too little non-blank image to look for a seam")
    passing = [s for s in steps if _refusal(s[3]) is None]
    if not passing:
        best = min(steps, key=lambda s: s[3].low)
        raise NotACompositeError(_refusal(best[3]))
    orientation, axis, profile, step = max(passing, key=lambda s: s[3].high - s[3].low)
    lo, hi = _seam_interval(profile, step)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if axis == 0:
        gray = gray.T
    first_end, second_start = _locate_seam(gray, int(lo / scale), int(np.ceil(hi / scale)), step.seam / scale)
    split = _cut(rgb, orientation, axis, first_end, second_start, step.low_first)
    similarity = thumbnail_correlation(split.original, split.colorization)
    if similarity < SAME_PICTURE_MIN_CORRELATION:
        raise NotACompositeError(
            f"the gray and colour parts show different pictures (thumbnail luminance correlation "
            f"{similarity:.2f}, needs ≥ {SAME_PICTURE_MIN_CORRELATION})"
        )
    return split


def _refusal(step: _Step) -> str | None:
    """Why a step is not a gray-to-colour seam, or None if it is one."""
    if step.low >= MONOCHROME_MAX_RESIDUAL:
        return (
            f"no gray half: the least colourful side still has residual chroma {step.low:.1f} "
            f"(needs < {MONOCHROME_MAX_RESIDUAL})"
        )
    if step.high <= COLOUR_MIN_RESIDUAL:
        return (
            f"no colour half: the most colourful side has residual chroma {step.high:.1f} "
            f"(needs > {COLOUR_MIN_RESIDUAL})"
        )
    return None


def _seam_interval(profile: np.ndarray, step: _Step) -> tuple[int, int]:
    """The lines between which the seam must lie: just before the colour half's first colour.

    The two-segment fit alone can land inside the colour half where that has near-gray parts,
    but going from the monochrome edge, the first line with clearly more residual chroma than
    the monochrome half shows is colour; the seam (or a divider) lies just before it.
    """
    length = len(profile)
    if not step.low_first:
        lo, hi = _seam_interval(profile[::-1], replace(step, seam=length - step.seam, low_first=True))
        return length - hi, length - lo
    monochrome = profile[: step.seam]
    threshold = 2 * float(np.nanmedian(monochrome)) + 1.0
    coloured = np.flatnonzero(np.nan_to_num(profile) > threshold)
    first_colour = int(coloured[coloured >= int(MIN_SIDE_SHARE * length)].min(initial=step.seam))
    reach = int(np.ceil(SEAM_SEARCH_SHARE * length))
    return max(first_colour - reach, 1), first_colour + 1


def _locate_seam(gray: np.ndarray, lo: int, hi: int, guess: float) -> tuple[int, int]:
    """End of the first half and start of the second, searched among columns ``lo``..``hi``.

    A blank divider is taken if there is one (the run nearest ``guess``); otherwise the seam is
    the column boundary across which the picture changes in most rows, which is where two
    different images touch. A blank run is a divider only if it leaves at least
    ``MIN_SIDE_SHARE`` of the width on either side: a plain area (a clear sky, a wall) that
    reaches the image's edge is part of a picture, and cutting there would leave a half empty.
    """
    length = gray.shape[1]
    lo, hi = max(lo, 1), min(hi, length - 1)
    blank = gray.std(axis=0) < BLANK_LINE_MAX_STD
    shortest = MIN_SIDE_SHARE * length
    dividers = [
        (start, end)
        for start, end in _runs(blank)
        if start <= hi and end > lo and start >= shortest and length - end >= shortest
    ]
    if dividers:
        def distance(run: tuple[int, int]) -> float:
            inside = np.arange(max(run[0], lo), min(run[1], hi + 1))
            return float(np.min(np.abs(inside - guess)))

        return min(dividers, key=distance)
    block = gray[:, lo - 1 : hi + 1].astype(np.int16)
    change = np.median(np.abs(np.diff(block, axis=1)), axis=0)
    seam = lo + int(np.argmax(change))
    return seam, seam


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The ``[start, end)`` index ranges of the runs of True in a boolean vector."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _analysis_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """An area-downscaled copy (longest side at most ``ANALYSIS_SIDE``) and its scale factor."""
    height, width = rgb.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return small, small.shape[1] / width


def _residual_chroma_profile(lab: np.ndarray, axis: int) -> np.ndarray:
    """Per column (axis 1) or row (axis 0): RMS chroma left after fitting a and b linearly in L.

    A tint makes a and b a function of brightness, which the fit removes; colour does not.
    Lines with too few non-padding pixels are NaN.
    """
    if axis == 0:
        lab = lab.transpose(1, 0, 2)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    weight = ((lightness > PADDING_MAX_LIGHTNESS) & (lightness < PADDING_MIN_LIGHTNESS)).astype(float)
    n = weight.sum(axis=0)
    mean_l = (weight * lightness).sum(axis=0) / np.maximum(n, 1)
    centred_l = (lightness - mean_l) * weight
    var_l = (centred_l**2).sum(axis=0)
    residual_sq = np.zeros(lightness.shape[1])
    for chroma in (a, b):
        mean_c = (weight * chroma).sum(axis=0) / np.maximum(n, 1)
        centred_c = (chroma - mean_c) * weight
        slope = (centred_l * centred_c).sum(axis=0) / np.maximum(var_l, 1e-9)
        residual_sq += ((centred_c - slope * centred_l) ** 2).sum(axis=0)
    profile = np.sqrt(residual_sq / np.maximum(n, 1))
    profile[n < MIN_VALID_SHARE * lightness.shape[0]] = np.nan
    return profile


def _best_step(profile: np.ndarray) -> _Step | None:
    """The least-squares fit of two constant segments, each at least ``MIN_SIDE_SHARE`` long."""
    length = len(profile)
    valid = ~np.isnan(profile)
    values = np.where(valid, profile, 0.0)
    count = np.concatenate([[0], np.cumsum(valid)])
    total = np.concatenate([[0], np.cumsum(values)])
    total_sq = np.concatenate([[0], np.cumsum(values**2)])
    shortest = int(np.ceil(MIN_SIDE_SHARE * length))
    seams = np.arange(shortest, length - shortest + 1)
    left_n, right_n = count[seams], count[-1] - count[seams]
    usable = (left_n > 0) & (right_n > 0)
    if not usable.any():
        return None
    seams, left_n, right_n = seams[usable], left_n[usable], right_n[usable]
    left_sum, right_sum = total[seams], total[-1] - total[seams]
    left_sq, right_sq = total_sq[seams], total_sq[-1] - total_sq[seams]
    cost = left_sq - left_sum**2 / left_n + right_sq - right_sum**2 / right_n
    best = int(np.argmin(cost))
    left_mean, right_mean = left_sum[best] / left_n[best], right_sum[best] / right_n[best]
    return _Step(
        seam=int(seams[best]),
        low=float(min(left_mean, right_mean)),
        high=float(max(left_mean, right_mean)),
        low_first=bool(left_mean <= right_mean),
        cost=float(cost[best]),
    )


def _cut(
    rgb: np.ndarray, orientation: str, axis: int, first_end: int, second_start: int, low_first: bool
) -> CompositeSplit:
    """Cut the halves apart around the divider and trim their blank borders."""
    if axis == 1:
        first, second = rgb[:, :first_end], rgb[:, second_start:]
    else:
        first, second = rgb[:first_end], rgb[second_start:]
    if first.size == 0 or second.size == 0:
        raise NotACompositeError(f"the {orientation} seam leaves one part empty")
    original, colorization = (first, second) if low_first else (second, first)
    return CompositeSplit(
        orientation=orientation,
        seam=(first_end + second_start) // 2,
        original=trim_blank_borders(original),
        colorization=trim_blank_borders(colorization),
    )


def thumbnail_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of the two images' luminance, both shrunk to the same small square.

    Tolerates the small crops, rescaling and contrast edits a colourist makes; two different
    pictures correlate near zero.
    """
    thumbnails = [
        cv2.resize(
            cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY),
            (THUMBNAIL_SIDE, THUMBNAIL_SIDE),
            interpolation=cv2.INTER_AREA,
        ).astype(float).ravel()
        for image in (first, second)
    ]
    if min(t.std() for t in thumbnails) == 0:
        return 0.0
    return float(np.corrcoef(*thumbnails)[0, 1])


def trim_blank_borders(rgb: np.ndarray) -> np.ndarray:
    """The image without the blank (uniform) rows and columns along its edges."""
    if rgb.size == 0:
        return rgb
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    rows = np.flatnonzero(gray.std(axis=1) >= BLANK_LINE_MAX_STD)
    cols = np.flatnonzero(gray.std(axis=0) >= BLANK_LINE_MAX_STD)
    if len(rows) == 0 or len(cols) == 0:
        return rgb
    return rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
