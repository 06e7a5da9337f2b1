"""Register a human colorization onto its black-and-white original.

Colourists crop, rescale, slightly rotate and re-grade their versions, so pixels cannot be
compared as they come. SIFT features of both luminances are matched, a similarity transform
(scale, rotation, shift) is fitted with RANSAC and optionally refined by ECC, and the result is
accepted only when every check says it is clearly right. The colorization is then warped into the
original's frame, with a mask of the pixels it actually covers; every metric uses only those.

SIFT, most of the alignment's time, runs on small copies (``feature_max_side``), and on smaller ones
still (``ecc_start_max_side``) where its estimate only starts ECC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from eval.concurrency import side_by_side, single_threaded_blas, single_threaded_opencv
from eval.ecc import EccError, find_transform_ecc
from eval.settings import EvalSettings

METHOD_FEATURES = "sift+ransac"
METHOD_REFINED = "sift+ransac+ecc"

EDGE_EROSION_PX = 2
"""Pixels taken off the edge of the warped area, where interpolation mixes in the black border."""

FOOTPRINT_MARGIN_PX = 16
"""Pixels kept around the colorization's footprint when the original is cropped to it for ECC and
the correlation: more than ECC's 5×5 smoothing reaches and than its refinement moves the edge."""

MATCH_ROWS_PER_BLOCK = 1024
"""Source descriptors matched per block (bounds the distance matrix at 1024 × target features)."""


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
    original_small, original_factor = _shrink(luminance_u8(original), settings.match_max_side)
    colorization_small, colorization_factor = _shrink(luminance_u8(colorization), settings.match_max_side)

    def with_features_on(max_side: int) -> AlignmentResult:
        result, small_transform = _register(original_small, colorization_small, max_side, settings)
        if small_transform is None:
            return result
        result.transform = _to_full_resolution(small_transform, colorization_factor, original_factor)
        warped, valid = warp_into(colorization, result.transform, original.shape[:2])
        result.overlap = float(valid.mean())
        problems = refusal_reasons(result, settings)
        if problems:
            result.accepted, result.reason = False, "; ".join(problems)
        else:
            result.warped, result.valid = warped, valid
        return result

    # ECC mostly ends where it ends from the usual copies' estimate, so the features that only start it
    # are found on smaller copies still. Where the result is not ECC's (its refinement dropped, or the
    # pair refused), the features' estimate is the result itself: it is found again on the usual
    # copies. (The trade, measured by benchmarks/alignment_start.py: a few pairs in a hundred keep
    # ECC's result where the usual copies' features would have beaten it.)
    if settings.refine_ecc and settings.ecc_start_max_side < min(
        settings.feature_max_side, max(*original_small.shape, *colorization_small.shape)
    ):
        quick = with_features_on(settings.ecc_start_max_side)
        if quick.accepted and quick.method == METHOD_REFINED:
            return quick
    return with_features_on(settings.feature_max_side)


def _register(
    original: np.ndarray, colorization: np.ndarray, feature_max_side: int, settings: EvalSettings
) -> tuple[AlignmentResult, np.ndarray | None]:
    """The registration of the matching copies, with SIFT features found on copies of at most
    ``feature_max_side``, and the transform between the matching copies (None where there is none).

    The result holds every figure but the overlap, which needs the full-size warp."""
    original_coarse, original_coarse_factor = _shrink(original, feature_max_side)
    colorization_coarse, colorization_coarse_factor = _shrink(colorization, feature_max_side)
    matches = _match_features(colorization_coarse, original_coarse, settings.lowe_ratio)
    if len(matches[0]) < 3:
        return AlignmentResult(accepted=False, reason=f"only {len(matches[0])} feature matches (needs ≥ 3)"), None
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
        return AlignmentResult(accepted=False, reason=f"RANSAC found no transform among {len(source)} matches"), None
    inliers = inlier_mask.ravel().astype(bool)
    small_transform = _to_full_resolution(coarse_transform, colorization_coarse_factor, original_coarse_factor)
    source = _apply(np.linalg.inv(_resize_matrix(colorization_coarse_factor))[:2], source)
    target = _apply(np.linalg.inv(_resize_matrix(original_coarse_factor))[:2], target)
    residuals = np.linalg.norm(_apply(small_transform, source[inliers]) - target[inliers], axis=1)

    method = METHOD_FEATURES
    correlation, refined = side_by_side(
        lambda: _correlation(original, colorization, small_transform),
        lambda: _refine_ecc(original, colorization, small_transform) if settings.refine_ecc else None,
    )
    if refined is not None:
        refined_correlation = _correlation(original, colorization, refined)
        if refined_correlation > correlation:
            small_transform, method, correlation = refined, METHOD_REFINED, refined_correlation
    result = AlignmentResult(
        accepted=True,
        method=method,
        inliers=int(inliers.sum()),
        inlier_ratio=float(inliers.mean()),
        median_residual=float(np.median(residuals)) if inliers.any() else math.inf,
        correlation=correlation,
    )
    return result, small_transform


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
    # Side by side, one OpenCV thread each: OpenCV's SIFT leaves much of a second core idle, and its
    # threads would compete with the other SIFT's (94 ms for the two 640 px copies of a 1 MP pair, 79
    # with one thread each). A SIFT object is not shared between threads.
    with single_threaded_opencv:
        (source_points, source_descriptors), (target_points, target_descriptors) = side_by_side(
            lambda: cv2.SIFT_create().detectAndCompute(source, None),
            lambda: cv2.SIFT_create().detectAndCompute(target, None),
        )
    empty = np.empty((0, 2), np.float32)
    # OpenCV up to 5.0 gives None descriptors for an image without keypoints, 5.1 an empty array.
    if source_descriptors is None or target_descriptors is None or not len(source_points) or len(target_points) < 2:
        return empty, empty
    source_indices, target_indices = _ratio_test_matches(source_descriptors, target_descriptors, ratio)
    if not len(source_indices):
        return empty, empty
    source_xy = np.float32([source_points[i].pt for i in source_indices])
    target_xy = np.float32([target_points[i].pt for i in target_indices])
    return source_xy, target_xy


def _ratio_test_matches(source: np.ndarray, target: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(source index, nearest target index) of each source descriptor whose nearest target descriptor is
    nearer than ``ratio`` times the second nearest: the same pairs as ``cv2.BFMatcher(NORM_L2).knnMatch``
    with k = 2 and the ratio test, several times faster.

    OpenCV's SIFT descriptors are whole numbers with squared norms below 2²⁴, so the squared distances
    |s|² + |t|² − 2 s·t come out of one float32 matrix product exactly, and their float32 square roots
    are the matcher's distances to the bit.
    """
    target_norms = np.einsum("ij,ij->i", target, target)
    kept_source, kept_target = [], []
    for start in range(0, len(source), MATCH_ROWS_PER_BLOCK):
        block = source[start : start + MATCH_ROWS_PER_BLOCK]
        with single_threaded_blas:
            squared = block @ target.T
        squared *= -2
        squared += target_norms
        squared += np.einsum("ij,ij->i", block, block)[:, None]
        nearest = np.argmin(squared, axis=1)
        two_smallest = np.partition(squared, 1, axis=1)[:, :2]
        distances = np.sqrt(np.maximum(two_smallest, 0)).astype(np.float64)
        passed = np.flatnonzero(distances[:, 0] < ratio * distances[:, 1])
        kept_source.append(start + passed)
        kept_target.append(nearest[passed])
    return np.concatenate(kept_source), np.concatenate(kept_target)


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:, :2].T + transform[:, 2]


def _refine_ecc(original: np.ndarray, colorization: np.ndarray, transform: np.ndarray) -> np.ndarray | None:
    """ECC's affine refinement of ``transform`` (colorization → original), or None if it fails
    (``eval.ecc``: OpenCV's findTransformECC, computed in fewer passes).

    ECC's warp maps template (original) coordinates into the input (colorization), the inverse
    of ours. The template is the original cropped to the colorization's footprint: pixels outside
    it are masked out of every ECC sum anyway, and its cost grows with the template's pixels.
    """
    x0, y0, x1, y1 = _footprint_box(transform, colorization.shape, original.shape)
    warp = cv2.invertAffineTransform(_shifted(transform, -x0, -y0)).astype(np.float32)
    try:
        warp = find_transform_ecc(np.ascontiguousarray(original[y0:y1, x0:x1]), colorization, warp,
                                  max_iterations=50, epsilon=1e-5)
    except EccError:
        return None
    return _shifted(cv2.invertAffineTransform(warp).astype(np.float64), x0, y0)


def _correlation(original: np.ndarray, colorization: np.ndarray, transform: np.ndarray) -> float:
    """Pearson correlation of the original's luminance and the warped colorization's, where covered."""
    x0, y0, x1, y1 = _footprint_box(transform, colorization.shape, original.shape)
    warped, valid = warp_into(colorization, _shifted(transform, -x0, -y0), (y1 - y0, x1 - x0))
    count = int(np.count_nonzero(valid))
    if count < 2:
        return 0.0
    # In int64, whose products NumPy sums exactly and without BLAS (see eval.concurrency.single_threaded_blas).
    first, second = original[y0:y1, x0:x1][valid].astype(np.int64), warped[valid].astype(np.int64)
    sum_first, sum_second = int(first.sum()), int(second.sum())
    spread_first = count * int(first @ first) - sum_first * sum_first
    spread_second = count * int(second @ second) - sum_second * sum_second
    if spread_first == 0 or spread_second == 0:
        return 0.0
    return (count * int(first @ second) - sum_first * sum_second) / math.sqrt(spread_first * spread_second)


def _footprint_box(transform: np.ndarray, source_shape: tuple[int, ...], target_shape: tuple[int, ...]):
    """(x0, y0, x1, y1) of the target region ``transform`` puts the source in, with a margin, clipped."""
    rows, cols = source_shape[:2]
    corners = _apply(transform, np.array([[0, 0], [cols, 0], [0, rows], [cols, rows]], np.float64) - 0.5)
    low = np.floor(corners.min(axis=0)) - FOOTPRINT_MARGIN_PX
    high = np.ceil(corners.max(axis=0)) + FOOTPRINT_MARGIN_PX
    height, width = target_shape[:2]
    x0, y0 = int(min(max(low[0], 0), width - 1)), int(min(max(low[1], 0), height - 1))
    x1, y1 = int(max(min(high[0], width), x0 + 1)), int(max(min(high[1], height), y0 + 1))
    return x0, y0, x1, y1


def _shifted(transform: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``transform`` followed by a shift of the target coordinates by (dx, dy)."""
    shifted = np.array(transform, np.float64)
    shifted[:, 2] += (dx, dy)
    return shifted


def _to_full_resolution(transform: np.ndarray, source_factor: float, target_factor: float) -> np.ndarray:
    """A transform between shrunk copies, re-expressed between the full-resolution images."""
    square = np.vstack([transform, [0.0, 0.0, 1.0]])
    return (np.linalg.inv(_resize_matrix(target_factor)) @ square @ _resize_matrix(source_factor))[:2]


def _resize_matrix(factor: float) -> np.ndarray:
    """Pixel coordinates before → after ``cv2.resize`` by ``factor`` (pixel centres stay centres)."""
    offset = 0.5 * factor - 0.5
    return np.array([[factor, 0.0, offset], [0.0, factor, offset], [0.0, 0.0, 1.0]])
