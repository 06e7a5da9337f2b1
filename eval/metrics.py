"""How far a colorization is from the human one, measured only where both are valid.

Every function takes uint8 RGB images of the same size (the human colorization already warped
into the original's frame) and a boolean mask of the pixels to use. Colour spaces follow
scikit-image: YUV is BT.601 with Y in [0, 1]; Lab is CIE D65/2°.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab, rgb2yuv
from skimage.metrics import structural_similarity

NEAR_GRAY_CHROMA = 5.0
"""Lab chroma below which a pixel counts as near-gray (the grayscale test's threshold)."""

AUC_MAX_THRESHOLD = 150
"""Zhang et al. (2016) sweep ab-error thresholds 0…150."""

PSNR_CAP_DB = 100.0
"""PSNR of identical pixels is infinite; it is stored as this so every value is a finite number."""

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
"""Pixels of the SSIM window around a pixel (Gaussian σ 1.5, truncated at 3.5 σ)."""


@dataclass(frozen=True)
class MetricInfo:
    """What a stored metric means and which way is better (None: neither, it is descriptive)."""

    label: str
    better: str | None


METRICS: dict[str, MetricInfo] = {
    "uv_error": MetricInfo("UV error (mean Euclidean)", "lower"),
    "uv_rmse": MetricInfo("UV RMSE", "lower"),
    "chroma_machine": MetricInfo("mean chroma, machine", None),
    "chroma_human": MetricInfo("mean chroma, human", None),
    "saturation_ratio": MetricInfo("chroma ratio machine / human", None),
    "near_gray_machine": MetricInfo("near-gray share, machine", None),
    "near_gray_human": MetricInfo("near-gray share, human", None),
    "colorfulness_machine": MetricInfo("colourfulness, machine", None),
    "colorfulness_human": MetricInfo("colourfulness, human", None),
    "colorfulness_gap": MetricInfo("|colourfulness machine − human|", "lower"),
    "delta_e_2000": MetricInfo("mean CIEDE2000", "lower"),
    "psnr": MetricInfo("PSNR (dB, RGB)", "higher"),
    "ssim": MetricInfo("SSIM (RGB)", "higher"),
    "auc": MetricInfo("AuC of ab error (0–150)", "higher"),
}


def all_metrics(machine: np.ndarray, human: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Every metric of ``METRICS`` for one colorization against the aligned human colorization."""
    if not valid.any():
        raise ValueError("no valid pixels to measure")
    machine_pixels, human_pixels = machine[valid], human[valid]
    machine_lab, human_lab = _lab(machine_pixels), _lab(human_pixels)
    machine_chroma, human_chroma = lab_chroma(machine_lab), lab_chroma(human_lab)
    uv_distance = uv_distances(machine_pixels, human_pixels)
    colorfulness_machine = colorfulness(machine_pixels)
    colorfulness_human = colorfulness(human_pixels)
    return {
        "uv_error": float(uv_distance.mean()),
        "uv_rmse": float(np.sqrt(np.mean(uv_distance**2))),
        "chroma_machine": float(machine_chroma.mean()),
        "chroma_human": float(human_chroma.mean()),
        "saturation_ratio": saturation_ratio(machine_chroma, human_chroma),
        "near_gray_machine": float(np.mean(machine_chroma < NEAR_GRAY_CHROMA)),
        "near_gray_human": float(np.mean(human_chroma < NEAR_GRAY_CHROMA)),
        "colorfulness_machine": colorfulness_machine,
        "colorfulness_human": colorfulness_human,
        "colorfulness_gap": abs(colorfulness_machine - colorfulness_human),
        "delta_e_2000": float(delta_e_2000(machine_lab, human_lab).mean()),
        "psnr": psnr(machine_pixels, human_pixels),
        "ssim": masked_ssim(machine, human, valid),
        "auc": auc_of_ab_errors(np.linalg.norm(machine_lab[:, 1:] - human_lab[:, 1:], axis=1)),
    }


def uv_distances(machine_pixels: np.ndarray, human_pixels: np.ndarray) -> np.ndarray:
    """Per pixel, the Euclidean distance of (U, V) — the residual encoder's loss space."""
    machine_uv = rgb2yuv(machine_pixels[None] / 255.0)[0, :, 1:]
    human_uv = rgb2yuv(human_pixels[None] / 255.0)[0, :, 1:]
    return np.linalg.norm(machine_uv - human_uv, axis=1)


def lab_chroma(lab_pixels: np.ndarray) -> np.ndarray:
    """C*ab = √(a² + b²) per pixel of an N×3 Lab array."""
    return np.hypot(lab_pixels[:, 1], lab_pixels[:, 2])


def saturation_ratio(machine_chroma: np.ndarray, human_chroma: np.ndarray) -> float:
    """Mean chroma of the machine over that of the human: below 1 is the "sepia" look."""
    human_mean = float(human_chroma.mean())
    return float(machine_chroma.mean()) / human_mean if human_mean > 0 else float("nan")


def colorfulness(pixels: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of N×3 uint8 RGB pixels, on the 0–255 scale.

    rg = R − G and yb = ½(R + G) − B are used *signed*, as in the paper:
    M = √(σ_rg² + σ_yb²) + 0.3·√(μ_rg² + μ_yb²). Many colorization repositories (DDColor, CT2)
    take absolute values of rg and yb first, which gives slightly different numbers.
    """
    rgb = pixels.astype(np.float64)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference per row of two N×3 Lab arrays (scikit-image's)."""
    return deltaE_ciede2000(lab1, lab2, channel_axis=-1)


def psnr(machine_pixels: np.ndarray, human_pixels: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB on RGB 0–255, capped at ``PSNR_CAP_DB``."""
    mse = float(np.mean((machine_pixels.astype(np.float64) - human_pixels.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse))


def masked_ssim(machine: np.ndarray, human: np.ndarray, valid: np.ndarray) -> float:
    """Wang et al.'s SSIM on RGB 0–255 (Gaussian σ 1.5), averaged where the whole window is valid.

    Windows reaching outside the valid area would compare against the empty border, so the
    mask is shrunk by the window radius first (or left as it is when that would empty it).
    """
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    machine_box, human_box, valid_box = machine[box], human[box], valid[box]
    if min(valid_box.shape) < 7:
        raise ValueError("valid area too small for SSIM (needs at least 7 × 7 pixels)")
    _, ssim_map = structural_similarity(
        machine_box,
        human_box,
        channel_axis=-1,
        data_range=255,
        gaussian_weights=True,
        sigma=SSIM_SIGMA,
        use_sample_covariance=False,
        full=True,
    )
    inner = _erode(valid_box, SSIM_RADIUS)
    return float(ssim_map.mean(axis=-1)[inner if inner.any() else valid_box].mean())


def auc_of_ab_errors(ab_errors: np.ndarray) -> float:
    """Zhang et al.'s AuC: the share of pixels with ab error ≤ t, integrated over t = 0…150, / 150."""
    thresholds = np.arange(AUC_MAX_THRESHOLD + 1)
    sorted_errors = np.sort(ab_errors)
    within = np.searchsorted(sorted_errors, thresholds, side="right") / len(sorted_errors)
    return float(np.trapezoid(within, thresholds) / AUC_MAX_THRESHOLD)


def _lab(pixels: np.ndarray) -> np.ndarray:
    return rgb2lab(pixels[None])[0]


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
