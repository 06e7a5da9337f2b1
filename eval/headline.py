"""The headline score: how alike the colour structure of a colorization and its reference is, at the
scale at which a person judges the colours of a whole photo.

    score = mean over c in {a*, b*} and s in {3, 4} of  IW-pool( cs_c,s )

    cs = (2·σ_mh + C) / (σ_m² + σ_h² + C)        (SSIM's contrast-structure term)

* Both images are brought to about ``WORKING_PIXELS`` (512 × 384, a photo seen whole on a screen)
  and converted to CIE Lab; only a* and b* are used: luminance is the photo's own in every
  colorization, so it says nothing about the colours.
* An image pyramid halves that copy four times; the score looks at levels 3 and 4, where the long
  side is about 64 and 32 px. The eye resolves colour far more coarsely than luminance (the
  chromatic contrast sensitivity falls off several times sooner, which is why S-CIELAB blurs the
  opponent channels so much more than lightness), and a naturalness judgement is made on the whole
  photo: fine chroma detail is mostly invisible, while a colour that bleeds over an edge, a region
  with the wrong colour pattern or a gray area where the reference has colour is not.
* In each 11 × 11 window (uniform, as in the MS-SSIM of the published comparison on this kind of
  data), ``cs`` compares how the two chroma channels vary: it is 1 when they vary alike, near 0 when
  one is flat where the other is not (a gray or sepia area), negative when they vary oppositely.
  Only windows wholly inside the measured area count.
* Windows are pooled by information content (Wang and Li's IW-SSIM): weight
  log(1 + σ_m²/C) + log(1 + σ_h²/C), so flat areas where both images agree on "no colour
  variation" do not dilute the score, and spurious colour blotches weigh as much as missed ones.
* ``C = (0.03 · 255)²``, SSIM's K2 constant with a* and b* spanning 255 units.

The score lies in [-1, 1], 1 for the reference itself; higher is better. It is blind to a uniform
colour cast (a constant shift of a* or b*): people judging naturalness barely penalise a mild one,
and ΔE2000 and the chroma ratio beside it in every table show it.

On the development half of the Human Evaluated Colourisation Dataset (660 recolourisations rated
for naturalness), its Kendall tau is +0.41, against +0.38 for the product of a*b* MS-SSIMs (the
best published metric) and at most +0.30 for colorbot's other metrics (``benchmarks/hecd_tau.py``).
No continuous parameter was fitted; the discrete choices (levels, window, pooling) were made on
that development half, and tau is flat around them: the working size and the levels can move
(384–640 px, levels 2–4) with tau staying within 0.41 ± 0.01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WORKING_PIXELS = 512 * 384
"""Both images are compared at about this many pixels: the photo seen whole on a screen."""

LEVELS = (3, 4)
"""Pyramid levels (halvings of the working copy) whose chroma structure is compared."""

WINDOW = 11
"""Side of the uniform window of the structure term."""

STRUCTURE_C = (0.03 * 255) ** 2
"""SSIM's K2 constant for channels spanning 255 units."""

FULL_COVERAGE = 0.999
"""Share of a resized pixel's sources that must be measured pixels for it to count."""


@dataclass(frozen=True)
class ChromaPyramid:
    """The reference's side of the score, prepared once: per level used, a* b* and the window centres
    that count (those whose whole window lies on measured pixels)."""

    sizes: list[tuple[int, int]]
    """(width, height) of each pyramid level, the working copy first."""
    chroma: dict[int, np.ndarray]
    centres: dict[int, np.ndarray]


def prepare_pyramid(reference: np.ndarray, valid: np.ndarray) -> ChromaPyramid | None:
    """The reference's chroma pyramid, or None where the measured area is too small to hold a window."""
    rows, cols = valid.shape
    factor = math.sqrt(WORKING_PIXELS / (rows * cols))
    sizes = [(max(1, round(cols * factor)), max(1, round(rows * factor)))]
    for _ in range(max(LEVELS)):
        width, height = sizes[-1]
        sizes.append((max(1, width // 2), max(1, height // 2)))
    chroma, centres = {}, {}
    for level, coverage in _levels(valid.astype(np.float32), sizes):
        inner = _inner(coverage >= FULL_COVERAGE)
        if inner.any():
            centres[level] = inner
    if not centres:
        return None
    for level, ab in _levels(_ab(reference), sizes):
        if level in centres:
            chroma[level] = ab
    return ChromaPyramid(sizes=sizes, chroma=chroma, centres=centres)


def headline_score(machine: np.ndarray, pyramid: ChromaPyramid) -> float:
    """The score of a uint8 RGB colorization in the reference's frame (see the module's docstring)."""
    pooled = []
    for level, ab in _levels(_ab(machine), pyramid.sizes):
        if level not in pyramid.centres:
            continue
        for channel in range(2):
            pooled.append(_pooled_structure(ab[..., channel], pyramid.chroma[level][..., channel],
                                            pyramid.centres[level]))
    return float(np.mean(pooled))


def _ab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab a* and b* (D65) of a uint8 RGB image, float32."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1:]


def _levels(image: np.ndarray, sizes: list[tuple[int, int]]):
    """(level, image) for every level in ``LEVELS``: the working copy, then halvings by area."""
    width, height = sizes[0]
    shrinking = width * height < image.shape[0] * image.shape[1]
    current = cv2.resize(image, sizes[0], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    for level in range(max(LEVELS) + 1):
        if level > 0:
            current = cv2.resize(current, sizes[level], interpolation=cv2.INTER_AREA)
        if level in LEVELS:
            yield level, current


def _inner(valid: np.ndarray) -> np.ndarray:
    """Centres whose whole window lies on valid pixels (outside the image counts as not valid)."""
    kernel = np.ones((WINDOW, WINDOW), np.uint8)
    return cv2.erode(valid.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def _pooled_structure(machine: np.ndarray, reference: np.ndarray, centres: np.ndarray) -> float:
    """The information-weighted mean over ``centres`` of SSIM's contrast-structure map of one channel."""
    def window_mean(image: np.ndarray) -> np.ndarray:
        return cv2.blur(image, (WINDOW, WINDOW))[centres]  # only centres with whole windows are read

    m, h = machine.astype(np.float64), reference.astype(np.float64)
    mean_m, mean_h = window_mean(m), window_mean(h)
    variance_m = np.maximum(window_mean(m * m) - mean_m**2, 0.0)
    variance_h = np.maximum(window_mean(h * h) - mean_h**2, 0.0)
    covariance = window_mean(m * h) - mean_m * mean_h
    structure = (2 * covariance + STRUCTURE_C) / (variance_m + variance_h + STRUCTURE_C)
    weight = np.log1p(variance_m / STRUCTURE_C) + np.log1p(variance_h / STRUCTURE_C)
    if weight.sum() <= 1e-12:  # both flat everywhere: they agree
        return float(structure.mean())
    return float((structure * weight).sum() / weight.sum())
