"""Is a photo gray, a tinted monochrome (sepia, cyanotype) or in colour?

Colourfulness alone cannot tell sepia from colour (both score about 35), so the rule looks at Lab
chroma twice: once as it is (a gray photo has none), and once after removing the mean (a, b) of
each luminance band (a tinted monochrome has one hue per brightness, which this removes; a colour
photo keeps different hues at the same brightness).
"""

from __future__ import annotations

import enum

import cv2
import numpy as np
from skimage.color import rgb2lab

ANALYSIS_SIDE = 256
"""Longest side of the copy the rule looks at: enough for the statistics, cheap at 12 MP."""

CHROMA_PERCENTILE = 95.0
GRAY_MAX_CHROMA = 5.0
"""95th-percentile Lab chroma below which a photo is gray."""

TINT_MAX_RESIDUAL_CHROMA = 5.0
"""95th-percentile chroma, after removing each luminance band's mean (a, b), below which a photo
is a tinted monochrome."""

LUMINANCE_BAND_WIDTH = 5.0
"""Width in L* units of the bands within which a tint is assumed constant."""

CHROMA_SMOOTHING_SIGMA = 1.0
"""Gaussian blur (pixels of the analysis copy) of a and b before the percentiles, so per-pixel
sensor or scan noise on a gray photo does not read as colour."""


class Tone(str, enum.Enum):
    """What kind of photo an image is, as far as colour goes."""

    GRAY = "gray"
    TINTED = "tinted"
    COLOR = "color"


def classify_tone(rgb: np.ndarray) -> Tone:
    """Gray, tinted monochrome or colour, for a uint8 RGB (H×W×3) or gray (H×W) image."""
    if rgb.ndim == 2:
        return Tone.GRAY
    lab = analysis_lab(rgb)
    if chroma_percentile(lab) < GRAY_MAX_CHROMA:
        return Tone.GRAY
    if residual_chroma_percentile(lab) < TINT_MAX_RESIDUAL_CHROMA:
        return Tone.TINTED
    return Tone.COLOR


def analysis_lab(rgb: np.ndarray) -> np.ndarray:
    """Lab of an area-downscaled copy (longest side at most ``ANALYSIS_SIDE``), a and b smoothed."""
    rgb = _as_rgb_uint8(rgb)
    height, width = rgb.shape[:2]
    scale = ANALYSIS_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    lab = rgb2lab(rgb)
    for channel in (1, 2):
        lab[..., channel] = cv2.GaussianBlur(lab[..., channel], (0, 0), CHROMA_SMOOTHING_SIGMA)
    return lab


def chroma_percentile(lab: np.ndarray) -> float:
    """The ``CHROMA_PERCENTILE`` percentile of Lab chroma √(a² + b²)."""
    return float(np.percentile(np.hypot(lab[..., 1], lab[..., 2]), CHROMA_PERCENTILE))


def residual_chroma_percentile(lab: np.ndarray) -> float:
    """The chroma percentile after subtracting each luminance band's mean (a, b).

    What is left is colour that varies at constant brightness, which a single tint cannot make.
    """
    lightness = lab[..., 0].ravel()
    ab = lab[..., 1:].reshape(-1, 2)
    bands = np.floor(lightness / LUMINANCE_BAND_WIDTH).astype(np.int64)
    bands -= bands.min()
    counts = np.bincount(bands)
    band_means = np.stack(
        [np.bincount(bands, weights=ab[:, c]) / np.maximum(counts, 1) for c in (0, 1)], axis=1
    )
    residual = ab - band_means[bands]
    return float(np.percentile(np.hypot(residual[:, 0], residual[:, 1]), CHROMA_PERCENTILE))


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Drop an alpha channel; refuse anything that is not 8-bit RGB."""
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    return np.ascontiguousarray(image[..., :3])
