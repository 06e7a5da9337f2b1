"""Register a human colorization onto its black-and-white original.

Colourists crop, rescale, slightly rotate and re-grade their versions, so pixels cannot be
compared as they come. SIFT features of both luminances are matched, a similarity transform
(scale, rotation, shift) is fitted with RANSAC and optionally refined by ECC, and the result is
accepted only when every check says it is clearly right. The colorization is then warped into the
original's frame, with a mask of the pixels it actually covers; every metric uses only those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from eval.settings import EvalSettings

METHOD_FEATURES = "sift+ransac"
METHOD_REFINED = "sift+ransac+ecc"

EDGE_EROSION_PX = 2
"""Pixels taken off the edge of the warped area, where interpolation mixes in the black border."""


@dataclass
class AlignmentResult:
    """The registration of a colorization onto its original, or why there is none.

    ``transform`` is the 2×3 matrix taking colorization pixel coordinates to original pixel
    coordinates (full resolution). ``warped`` is the colorization in the original's frame and
    ``valid`` marks the pixels it covers; both are None when the alignment is refused.
    ``median_residual`` is in pixels of the matching copies (longest side ≤ ``match_max_side``).
    """

    accepted: bool
    method: str = METHOD_FEATURES
    transform: np.ndarray | None = None
    inliers: int | None = None
    inlier_ratio: float | None = None
    median_residual: float | None = None
    overlap: float | None = None
    correlation: float | None = None
    reason: str | None = None
    warped: np.ndarray | None = field(default=None, repr=False)
    valid: np.ndarray | None = field(default=None, repr=False)

    @property
    def scale(self) -> float | None:
        return None if self.transform is None else transform_scale(self.transform)

    @property
    def rotation_deg(self) -> float | None:
        return None if self.transform is None else transform_rotation_deg(self.transform)

    def transform_record(self) -> dict[str, Any] | None:
        """The transform as JSON-ready data for the ``alignments`` table."""
        if self.transform is None:
            return None
        return {
            "matrix": np.round(self.transform, 8).tolist(),
            "maps": "colorization pixel (x, y) -> original pixel (x, y)",
            "scale": round(transform_scale(self.transform), 6),
            "rotation_deg": round(transform_rotation_deg(self.transform), 6),
        }


def align(original: np.ndarray, colorization: np.ndarray, settings: EvalSettings | None = None) -> AlignmentResult:
    """Register ``colorization`` (uint8 RGB) onto ``original`` (uint8 RGB or gray)."""
    settings = settings or EvalSettings()
    original_gray, colorization_gray = luminance_u8(original), luminance_u8(colorization)
    original_small, original_factor = _shrink(original_gray, settings.match_max_side)
    colorization_small, colorization_factor = _shrink(colorization_gray, settings.match_max_side)

    # Features are found on smaller copies still (SIFT's cost grows with the pixels), and the
    # estimate is brought to the matching copies, where ECC refines it and every rule is checked.
    original_coarse, original_coarse_factor = _shrink(original_small, settings.feature_max_side)
    colorization_coarse, colorization_coarse_factor = _shrink(colorization_small, settings.feature_max_side)
    matches = _match_features(colorization_coarse, original_coarse, settings.lowe_ratio)
    if len(matches[0]) < 3:
        return AlignmentResult(accepted=False, reason=f"only {len(matches[0])} feature matches (needs ≥ 3)")
    source, target = matches
    coarse_transform, inlier_mask = cv2.estimateAffinePartial2D(
        source,
        target,
        method=cv2.RANSAC,
        ransacReprojThreshold=settings.ransac_threshold_px * original_coarse_factor,
        maxIters=5000,
        confidence=0.999,
    )
    if coarse_transform is None:
        return AlignmentResult(accepted=False, reason=f"RANSAC found no transform among {len(source)} matches")
    inliers = inlier_mask.ravel().astype(bool)
    small_transform = _to_full_resolution(coarse_transform, colorization_coarse_factor, original_coarse_factor)
    source = _apply(np.linalg.inv(_resize_matrix(colorization_coarse_factor))[:2], source)
    target = _apply(np.linalg.inv(_resize_matrix(original_coarse_factor))[:2], target)
    residuals = np.linalg.norm(_apply(small_transform, source[inliers]) - target[inliers], axis=1)

    method = METHOD_FEATURES
    correlation = _correlation(original_small, colorization_small, small_transform)
    if settings.refine_ecc:
        refined = _refine_ecc(original_small, colorization_small, small_transform)
        if refined is not None:
            refined_correlation = _correlation(original_small, colorization_small, refined)
            if refined_correlation > correlation:
                small_transform, method, correlation = refined, METHOD_REFINED, refined_correlation

    transform = _to_full_resolution(small_transform, colorization_factor, original_factor)
    warped, valid = warp_into(colorization, transform, original.shape[:2])
    result = AlignmentResult(
        accepted=True,
        method=method,
        transform=transform,
        inliers=int(inliers.sum()),
        inlier_ratio=float(inliers.mean()),
        median_residual=float(np.median(residuals)) if inliers.any() else math.inf,
        overlap=float(valid.mean()),
        correlation=correlation,
    )
    problems = refusal_reasons(result, settings)
    if problems:
        result.accepted, result.reason = False, "; ".join(problems)
        return result
    result.warped, result.valid = warped, valid
    return result


def refusal_reasons(result: AlignmentResult, settings: EvalSettings) -> list[str]:
    """Every acceptance rule the registration breaks, in words."""
    checks = [
        (result.inliers >= settings.min_inliers, f"{result.inliers} RANSAC inliers (needs ≥ {settings.min_inliers})"),
        (
            result.inlier_ratio >= settings.min_inlier_ratio,
            f"inlier ratio {result.inlier_ratio:.2f} (needs ≥ {settings.min_inlier_ratio})",
        ),
        (
            result.median_residual <= settings.max_median_residual_px,
            f"median residual {result.median_residual:.2f} px (needs ≤ {settings.max_median_residual_px})",
        ),
        (
            settings.min_scale <= result.scale <= settings.max_scale,
            f"scale {result.scale:.3f} (needs {settings.min_scale}–{settings.max_scale})",
        ),
        (
            abs(result.rotation_deg) <= settings.max_rotation_deg,
            f"rotation {result.rotation_deg:.1f}° (needs within ±{settings.max_rotation_deg}°)",
        ),
        (result.overlap >= settings.min_overlap, f"overlap {result.overlap:.0%} (needs ≥ {settings.min_overlap:.0%})"),
        (
            result.correlation >= settings.min_correlation,
            f"luminance correlation {result.correlation:.3f} after warping (needs ≥ {settings.min_correlation})",
        ),
    ]
    return [message for passed, message in checks if not passed]


def luminance_u8(image: np.ndarray) -> np.ndarray:
    """BT.601 luminance as uint8 of an RGB (or already gray) uint8 image."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def warp_into(image: np.ndarray, transform: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``image`` resampled into a frame of ``shape`` (rows, columns), and the mask it covers.

    The mask leaves out ``EDGE_EROSION_PX`` pixels along the covered area's edge, where bilinear
    interpolation blends image and empty border.
    """
    height, width = shape
    warped = cv2.warpAffine(image, transform, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    coverage = cv2.warpAffine(
        np.full(image.shape[:2], 255, np.uint8), transform, (width, height), flags=cv2.INTER_NEAREST, borderValue=0
    )
    kernel = np.ones((2 * EDGE_EROSION_PX + 1, 2 * EDGE_EROSION_PX + 1), np.uint8)
    return warped, cv2.erode(coverage, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def transform_scale(transform: np.ndarray) -> float:
    """Linear scale of a 2×3 similarity (or near-similarity affine) transform."""
    return float(math.sqrt(abs(np.linalg.det(transform[:, :2]))))


def transform_rotation_deg(transform: np.ndarray) -> float:
    """Rotation angle in degrees of a 2×3 similarity (or near-similarity affine) transform."""
    (a, b), (c, d) = transform[:, :2]
    return math.degrees(math.atan2(c - b, a + d))


def _shrink(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """An area-downscaled copy with its longest side at most ``max_side``, and the factor used."""
    factor = min(1.0, max_side / max(gray.shape))
    if factor == 1.0:
        return gray, 1.0
    size = (max(1, round(gray.shape[1] * factor)), max(1, round(gray.shape[0] * factor)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), factor


def _match_features(source: np.ndarray, target: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of SIFT matches passing Lowe's ratio test: (N×2 in source, N×2 in target)."""
    sift = cv2.SIFT_create()
    source_points, source_descriptors = sift.detectAndCompute(source, None)
    target_points, target_descriptors = sift.detectAndCompute(target, None)
    empty = np.empty((0, 2), np.float32)
    if source_descriptors is None or target_descriptors is None or len(target_points) < 2:
        return empty, empty
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(source_descriptors, target_descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if not good:
        return empty, empty
    source_xy = np.float32([source_points[m.queryIdx].pt for m in good])
    target_xy = np.float32([target_points[m.trainIdx].pt for m in good])
    return source_xy, target_xy


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:, :2].T + transform[:, 2]


def _refine_ecc(original: np.ndarray, colorization: np.ndarray, transform: np.ndarray) -> np.ndarray | None:
    """ECC's affine refinement of ``transform`` (colorization → original), or None if it fails.

    ECC's warp maps template (original) coordinates into the input (colorization), the inverse
    of ours.
    """
    warp = cv2.invertAffineTransform(transform).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
    try:
        _, warp = cv2.findTransformECC(
            original.astype(np.float32), colorization.astype(np.float32), warp, cv2.MOTION_AFFINE, criteria, None, 5
        )
    except cv2.error:
        return None
    return cv2.invertAffineTransform(warp).astype(np.float64)


def _correlation(original: np.ndarray, colorization: np.ndarray, transform: np.ndarray) -> float:
    """Pearson correlation of the original's luminance and the warped colorization's, where covered."""
    warped, valid = warp_into(colorization, transform, original.shape)
    if valid.sum() < 2:
        return 0.0
    first, second = original[valid].astype(float), warped[valid].astype(float)
    if first.std() == 0 or second.std() == 0:
        return 0.0
    return float(np.corrcoef(first, second)[0, 1])


def _to_full_resolution(transform: np.ndarray, source_factor: float, target_factor: float) -> np.ndarray:
    """A transform between shrunk copies, re-expressed between the full-resolution images."""
    square = np.vstack([transform, [0.0, 0.0, 1.0]])
    return (np.linalg.inv(_resize_matrix(target_factor)) @ square @ _resize_matrix(source_factor))[:2]


def _resize_matrix(factor: float) -> np.ndarray:
    """Pixel coordinates before → after ``cv2.resize`` by ``factor`` (pixel centres stay centres)."""
    offset = 0.5 * factor - 0.5
    return np.array([[factor, 0.0, offset], [0.0, factor, offset], [0.0, 0.0, 1.0]])
