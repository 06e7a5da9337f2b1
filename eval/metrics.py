"""How far a colorization is from the human one, measured only where both are valid.

Every function takes uint8 RGB images of the same size (the human colorization already warped
into the original's frame) and a boolean mask of the pixels to use. Colour spaces follow
scikit-image: YUV is BT.601 with Y in [0, 1]; Lab is CIE D65/2° (the same formulas, evaluated
here in float32 through a lookup table of the sRGB curve; results agree with scikit-image's to
about 1e-4 Lab units).

Size: photos above ``MAX_MEASURED_PIXELS`` (2 MP) are measured on copies area-downscaled to at
most that many pixels (machine, human and mask alike; a downscaled pixel is valid only where
every pixel it averages was valid). At normal sizes (≤ 2 MP) nothing is resized. Per-pixel
means hardly move under area averaging; SSIM and PSNR then describe the 2 MP copy, which is what
a viewer sees at screen size, and a 12 MP pair costs about what a 2 MP one does.

The human colorization is the same for every colorization of a post, so its conversions (Lab,
UV, chroma, colourfulness, SSIM statistics) are computed once in a ``Reference`` and shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.color.colorconv import xyz_from_rgb, xyz_tristimulus_values, yuv_from_rgb

from colorizer.compiled import compiled
from eval.ciede2000 import ciede2000_planes as _ciede2000
from eval.ciede2000 import magnitude as _magnitude
from eval.concurrency import side_by_side
from eval.headline import ChromaPyramid, headline_score, prepare_pyramid

NEAR_GRAY_CHROMA = 5.0
"""Lab chroma below which a pixel counts as near-gray (the grayscale test's threshold)."""

AUC_MAX_THRESHOLD = 150
"""Zhang et al. (2016) sweep ab-error thresholds 0…150."""

PSNR_CAP_DB = 100.0
"""PSNR of identical pixels is infinite; it is stored as this so every value is a finite number."""

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
"""Pixels of the SSIM window around a pixel (Gaussian σ 1.5, truncated at 3.5 σ)."""

SSIM_K1, SSIM_K2 = 0.01, 0.03
"""Wang et al.'s constants (scikit-image's defaults)."""

MAX_MEASURED_PIXELS = 2_000_000
"""Larger aligned pairs are measured on area-downscaled copies of at most this many pixels."""

FULL_COVERAGE = 0.999
"""Share of a downscaled pixel's source pixels that must be valid for it to count."""


@dataclass(frozen=True)
class MetricInfo:
    """What a stored metric means and which way is better (None: neither, it is descriptive)."""

    label: str
    better: str | None


METRICS: dict[str, MetricInfo] = {
    "score": MetricInfo("headline score (chroma structure)", "higher"),
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

HEADLINE_METRIC = "score"
"""The one number the report's leaderboard ranks models by (``eval.headline``: its formula and why)."""


@dataclass
class Reference:
    """The aligned human colorization prepared once for measuring any number of colorizations.

    ``frame`` is the (rows, columns) the colorizations come in; ``image`` and ``valid`` are the
    measuring copies (the same arrays when the frame is at most ``max_pixels``).
    """

    frame: tuple[int, int]
    size: tuple[int, int] | None
    """(width, height) of the downscaled measuring copies, or None when nothing is resized."""
    image: np.ndarray
    valid: np.ndarray
    indices: np.ndarray
    """Flat indices of the valid pixels: gathering by them is several times faster than a boolean mask."""
    pixels: np.ndarray
    lab: tuple[np.ndarray, np.ndarray, np.ndarray]
    """L*, a*, b* of ``pixels``, each a contiguous float32 plane."""
    chroma: np.ndarray
    colorfulness: float
    ssim_box: tuple[slice, slice]
    ssim_region: np.ndarray
    """uint8 mask (1 where counted) within ``ssim_box``."""
    ssim_image: np.ndarray
    ssim_mean: np.ndarray
    ssim_variance: np.ndarray
    pyramid: ChromaPyramid | None
    """The headline score's side of the human colorization; None where the area is too small for it."""

    def measuring_copy(self, image: np.ndarray) -> np.ndarray:
        """An image of the frame's size brought to the measuring size (area-downscaled)."""
        if image.shape[:2] != self.frame:
            raise ValueError(f"colorization of size {image.shape[:2]} does not match the frame {self.frame}")
        return image if self.size is None else cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)


def prepare_reference(human: np.ndarray, valid: np.ndarray, max_pixels: int = MAX_MEASURED_PIXELS) -> Reference:
    """Measure the human colorization's side once: downscale if needed, convert, filter for SSIM."""
    if not valid.any():
        raise ValueError("no valid pixels to measure")
    frame = valid.shape
    size = measuring_size(frame, max_pixels)
    if size is not None:
        human = cv2.resize(human, size, interpolation=cv2.INTER_AREA)
        coverage = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        valid = coverage >= FULL_COVERAGE
        if not valid.any():
            raise ValueError("no valid pixels to measure after downscaling")
    box, region = _ssim_region(valid)
    ssim_image = _centred(human[box])
    (indices, pixels, lab, chroma, human_colorfulness), (ssim_mean, ssim_variance), pyramid = side_by_side(
        lambda: _valid_pixels_and_colour(human, valid),
        lambda: _window_mean_and_variance(ssim_image),
        lambda: prepare_pyramid(human, valid),
    )
    return Reference(
        frame=frame,
        size=size,
        image=human,
        valid=valid,
        indices=indices,
        pixels=pixels,
        lab=lab,
        chroma=chroma,
        colorfulness=human_colorfulness,
        ssim_box=box,
        ssim_region=region.view(np.uint8),
        ssim_image=ssim_image,
        ssim_mean=ssim_mean,
        ssim_variance=ssim_variance,
        pyramid=pyramid,
    )


def _valid_pixels_and_colour(image: np.ndarray, valid: np.ndarray):
    """The valid pixels' flat indices and values, and their Lab, chroma and colourfulness."""
    indices = np.flatnonzero(valid)
    pixels = _gather(image, indices)
    lab = _lab_planes(pixels)
    return indices, pixels, lab, _magnitude(lab[1], lab[2]), colorfulness(pixels)


def measuring_size(shape: tuple[int, int], max_pixels: int = MAX_MEASURED_PIXELS) -> tuple[int, int] | None:
    """(width, height) of the area-downscaled copy a frame of ``shape`` is measured on, or None.

    The aspect ratio is kept and the copy has at most ``max_pixels`` pixels.
    """
    rows, cols = shape
    if rows * cols <= max_pixels:
        return None
    factor = math.sqrt(max_pixels / (rows * cols))
    return max(1, int(cols * factor)), max(1, int(rows * factor))


def all_metrics(
    machine: np.ndarray, human: np.ndarray, valid: np.ndarray, max_pixels: int = MAX_MEASURED_PIXELS
) -> dict[str, float]:
    """Every metric of ``METRICS`` for one colorization against the aligned human colorization."""
    return measure(machine, prepare_reference(human, valid, max_pixels))


def measure(machine: np.ndarray, reference: Reference) -> dict[str, float]:
    """Every metric of ``METRICS`` for one colorization (in the reference's frame)."""
    machine = reference.measuring_copy(machine)
    pixels = _gather(machine, reference.indices)
    # The per-pixel work (CIEDE2000 above all) is the largest piece, so it runs as two halves of the
    # pixels beside SSIM and the score; the halves' arrays are joined before anything is averaged,
    # so every figure is what one pass over all the pixels gives (see ``_per_pixel_arrays``).
    half = len(pixels) // 2 // HALVES_ALIGN * HALVES_ALIGN
    parts = [(0, half), (half, len(pixels))] if half else [(0, len(pixels))]
    *arrays, ssim, (score, machine_colorfulness) = side_by_side(
        *(lambda part=part: _per_pixel_arrays(pixels, reference, *part) for part in parts),
        lambda: _ssim(
            _centred(machine[reference.ssim_box]),
            reference.ssim_image,
            reference.ssim_mean,
            reference.ssim_variance,
            reference.ssim_region,
        ),
        lambda: (headline_score(machine, reference.pyramid) if reference.pyramid is not None else math.nan,
                 colorfulness(pixels)),
    )
    per_pixel = _per_pixel_metrics(machine_colorfulness, reference,
                                   {name: np.concatenate([part[name] for part in arrays]) for name in arrays[0]})
    auc = per_pixel.pop("auc")
    return {"score": score, **per_pixel, "ssim": ssim, "auc": auc}  # in the order of METRICS


HALVES_ALIGN = 4096
TAIL_MARGIN = 16
"""Pixels past its end a part of the pixels is worked on with, then dropped (see ``_per_pixel_arrays``)."""


def _per_pixel_arrays(machine_pixels: np.ndarray, reference: Reference, start: int, stop: int
                      ) -> dict[str, np.ndarray]:
    """Per measured pixel from ``start`` to ``stop``: the machine's chroma, and its UV, RGB, ab and
    CIEDE2000 differences from the human's.

    OpenCV's 3-channel transforms do the last pixel of an array by other code than the rest, which
    rounds differently: the end of a part would get another Lab than the same colour has inside the
    human's one-pass Lab (and an error against itself). So a part is worked on with a few pixels of
    the next, which are then dropped."""
    part = slice(start, min(stop + TAIL_MARGIN, len(machine_pixels)))
    machine_pixels = machine_pixels[part]
    machine_l, machine_a, machine_b = _lab_planes(machine_pixels)
    human_l, human_a, human_b = (plane[part] for plane in reference.lab)
    machine_chroma, human_chroma = _magnitude(machine_a, machine_b), reference.chroma[part]
    # UV is linear in RGB, so the UV difference is that of the RGB difference (exact in float32).
    rgb_difference = machine_pixels.astype(np.float32) - reference.pixels[part]
    arrays = {
        "machine_chroma": machine_chroma,
        "uv_distance": _uv_norms(rgb_difference),
        "rgb_squared": np.square(rgb_difference),
        "ab_error": _magnitude(machine_a - human_a, machine_b - human_b),
        "delta_e": _ciede2000(machine_l, machine_a, machine_b, machine_chroma, human_l, human_a, human_b, human_chroma),
    }
    return {name: values[: stop - start] for name, values in arrays.items()}


def _per_pixel_metrics(colorfulness_machine: float, reference: Reference, arrays: dict[str, np.ndarray]
                       ) -> dict[str, float]:
    """The metrics of the measured pixels one by one (all but SSIM and the score), from the machine's
    colourfulness and ``_per_pixel_arrays``."""
    machine_chroma, human_chroma, uv_distance = arrays["machine_chroma"], reference.chroma, arrays["uv_distance"]
    colorfulness_human = reference.colorfulness
    return {
        "uv_error": _mean(uv_distance),
        "uv_rmse": math.sqrt(_mean(np.square(uv_distance))),
        "chroma_machine": _mean(machine_chroma),
        "chroma_human": _mean(human_chroma),
        "saturation_ratio": saturation_ratio(machine_chroma, human_chroma),
        "near_gray_machine": _share_below(machine_chroma, NEAR_GRAY_CHROMA),
        "near_gray_human": _share_below(human_chroma, NEAR_GRAY_CHROMA),
        "colorfulness_machine": colorfulness_machine,
        "colorfulness_human": colorfulness_human,
        "colorfulness_gap": abs(colorfulness_machine - colorfulness_human),
        "delta_e_2000": _mean(arrays["delta_e"]),
        "psnr": _psnr_of_mse(_mean(arrays["rgb_squared"])),  # squares of 8-bit differences: exact
        "auc": auc_of_ab_errors(arrays["ab_error"]),
    }


def uv_distances(machine_pixels: np.ndarray, human_pixels: np.ndarray) -> np.ndarray:
    """Per pixel, the Euclidean distance of (U, V) — the residual encoder's loss space."""
    return _uv_norms(machine_pixels.astype(np.float32) - human_pixels.astype(np.float32))


def rgb_to_lab(pixels: np.ndarray) -> np.ndarray:
    """CIE Lab (D65/2°) of uint8 RGB pixels (any shape ending in 3), as float32.

    scikit-image's ``rgb2lab`` formulas (sRGB curve, its XYZ matrix and white point, the CIE
    cube root with its linear toe), with the sRGB curve looked up per 8-bit value and the rest
    done in float32 by OpenCV and NumPy (within about 2e-4 of scikit-image's float64 Lab).
    """
    return np.stack(_lab_planes(pixels.reshape(-1, 3)), axis=-1).reshape(pixels.shape)


def _lab_planes(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L*, a*, b* of N×3 uint8 RGB pixels as three contiguous float32 planes (see ``rgb_to_lab``)."""
    linear = cv2.LUT(np.ascontiguousarray(pixels).reshape(-1, 1, 3), _SRGB_TO_LINEAR)
    xyz = cv2.transform(linear, _XYZ_OVER_WHITE)
    f = np.cbrt(xyz)  # NumPy's vector cube root: a third of cv2.pow(xyz, 1 / 3)'s time
    toe = xyz <= 0.008856  # only the darkest pixels: patching them beats a full np.where
    if toe.any():
        f[toe] = np.float32(7.787) * xyz[toe] + np.float32(16.0 / 116.0)
    return tuple(_planes(f, _LAB_FROM_F_ROWS))


def saturation_ratio(machine_chroma: np.ndarray, human_chroma: np.ndarray) -> float:
    """Mean chroma of the machine over that of the human: below 1 is the "sepia" look."""
    human_mean = _mean(human_chroma)
    return _mean(machine_chroma) / human_mean if human_mean > 0 else float("nan")


def colorfulness(pixels: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of N×3 uint8 RGB pixels, on the 0–255 scale.

    rg = R − G and yb = ½(R + G) − B are used *signed*, as in the paper:
    M = √(σ_rg² + σ_yb²) + 0.3·√(μ_rg² + μ_yb²). Many colorization repositories (DDColor, CT2)
    take absolute values of rg and yb first, which gives slightly different numbers.
    """
    # rg and yb of 8-bit values are exact in float32; OpenCV accumulates their moments in float64.
    rg, yb = (cv2.meanStdDev(plane) for plane in _planes(pixels.astype(np.float32), _OPPONENT_FROM_RGB_ROWS))
    return math.hypot(rg[1].item(), yb[1].item()) + 0.3 * math.hypot(rg[0].item(), yb[0].item())


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference per row of two N×3 Lab arrays, in their dtype.

    Sharma, Wu and Dalal's formulas, as scikit-image's ``deltaE_ciede2000`` (see ``_ciede2000``).
    """
    planes1 = [np.ascontiguousarray(lab1[:, channel]) for channel in range(3)]
    planes2 = [np.ascontiguousarray(lab2[:, channel]) for channel in range(3)]
    return _ciede2000(*planes1, _magnitude(*planes1[1:]), *planes2, _magnitude(*planes2[1:]))


def psnr(machine_pixels: np.ndarray, human_pixels: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB on RGB 0–255, capped at ``PSNR_CAP_DB``."""
    difference = machine_pixels.astype(np.float32) - human_pixels.astype(np.float32)
    return _psnr_of_mse(_mean(np.square(difference)))


def _psnr_of_mse(mse: float) -> float:
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse))


def masked_ssim(machine: np.ndarray, human: np.ndarray, valid: np.ndarray) -> float:
    """Wang et al.'s SSIM on RGB 0–255 (Gaussian σ 1.5), averaged where the whole window is valid.

    Windows reaching outside the valid area would compare against the empty border, so the
    mask is shrunk by the window radius first (or left as it is when that would empty it).
    The same as scikit-image's ``structural_similarity(..., channel_axis=-1, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)`` map, filtered
    with OpenCV (float32 on values centred on 128, reflected borders).
    """
    box, region = _ssim_region(valid)
    human_box = _centred(human[box])
    return _ssim(_centred(machine[box]), human_box, *_window_mean_and_variance(human_box), region.view(np.uint8))


def auc_of_ab_errors(ab_errors: np.ndarray) -> float:
    """Zhang et al.'s AuC: the share of pixels with ab error ≤ t, integrated over t = 0…150, / 150."""
    thresholds = np.arange(AUC_MAX_THRESHOLD + 1)
    # An error is within an integer threshold exactly when its ceiling is, so counting the ceilings
    # gives the counts that searchsorted over the sorted errors gives, without the sort (2.3 against
    # 23 ms at 1 MP: benchmarks/evaluate.py --steps). Errors past the last threshold, and NaN, are within none.
    errors = np.ravel(ab_errors)
    within = np.cumsum(_ceiling_counts(errors, AUC_MAX_THRESHOLD)) / len(errors)
    return float(np.trapezoid(within, thresholds) / AUC_MAX_THRESHOLD)


@compiled()
def _ceiling_counts(values, last):
    """How many ``values`` have each ceiling 0…``last`` (below 0 counted at 0; above ``last`` and NaN not at all)."""
    counts = np.zeros(last + 1, np.int64)
    for value in values:
        if value <= last:
            counts[max(math.ceil(value), 0)] += 1
    return counts


def _srgb_to_linear() -> np.ndarray:
    """Linear-light value of each 8-bit sRGB level (scikit-image's ``rgb2xyz`` curve)."""
    value = np.arange(256) / 255.0
    return np.where(value > 0.04045, ((value + 0.055) / 1.055) ** 2.4, value / 12.92).astype(np.float32)


_SRGB_TO_LINEAR = _srgb_to_linear()
_XYZ_OVER_WHITE = (xyz_from_rgb / xyz_tristimulus_values(illuminant="D65", observer="2")[:, None]).astype(np.float32)
"""Linear RGB to XYZ divided by the D65 white point, in one matrix (for ``cv2.transform``)."""
_LAB_FROM_F_ROWS = [
    np.array([row], np.float32) for row in ([0.0, 116.0, 0.0, -16.0], [500.0, -500.0, 0.0, 0.0], [0.0, 200.0, -200.0, 0.0])
]
"""(f(X/Xn), f(Y/Yn), f(Z/Zn), 1) to L, to a and to b."""
_UV_FROM_RGB_ROWS = [(yuv_from_rgb[row : row + 1] / 255.0).astype(np.float32) for row in (1, 2)]
"""8-bit RGB to BT.601 U and to V, one matrix each for ``cv2.transform``."""
_OPPONENT_FROM_RGB_ROWS = [np.array([row], np.float32) for row in ([1.0, -1.0, 0.0], [0.5, 0.5, -1.0])]
"""RGB to Hasler and Süsstrunk's rg and to yb."""


def _planes(pixels: np.ndarray, rows: list[np.ndarray]) -> list[np.ndarray]:
    """Each 1×3 (or 1×4, affine) matrix of ``rows`` applied to N×3 float32 pixels, as contiguous planes.

    One single-output ``cv2.transform`` per plane: OpenCV's 3→1 transform is several times faster than
    its 3→2 or 3→3 and leaves every plane contiguous for what follows.
    """
    interleaved = np.ascontiguousarray(pixels).reshape(-1, 1, 3)
    return [cv2.transform(interleaved, row).reshape(-1) for row in rows]


def _uv_norms(rgb_difference: np.ndarray) -> np.ndarray:
    """|(ΔU, ΔV)| per row of N×3 float32 RGB differences (UV is linear in RGB)."""
    return _magnitude(*_planes(rgb_difference, _UV_FROM_RGB_ROWS))


def _gather(image: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The N×3 pixels of an RGB image at flat ``indices``."""
    return np.take(image.reshape(-1, 3), indices, axis=0)


def _share_below(values: np.ndarray, threshold: float) -> float:
    return np.count_nonzero(values < threshold) / len(values)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values, dtype=np.float64))


def _ssim_region(valid: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """The valid area's bounding box and, within it, the pixels whose SSIM window is all valid."""
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    valid_box = valid[box]
    if min(valid_box.shape) < 7:
        raise ValueError("valid area too small for SSIM (needs at least 7 × 7 pixels)")
    inner = _erode(valid_box, SSIM_RADIUS)
    return box, inner if inner.any() else valid_box


def _gaussian(image: np.ndarray) -> np.ndarray:
    """scipy's ``gaussian_filter(σ 1.5, truncate 3.5, mode "reflect")`` per channel, by OpenCV."""
    side = 2 * SSIM_RADIUS + 1
    return cv2.GaussianBlur(image, (side, side), SSIM_SIGMA, sigmaY=SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


SSIM_CENTRE = 128.0
"""SSIM's filtering runs on values minus this, in float32: centred values keep E[x²] − E[x]² accurate
(within about 1e-6 of float64 SSIM), at half float64's memory traffic."""


def _centred(pixels: np.ndarray) -> np.ndarray:
    centred = pixels.astype(np.float32)
    centred -= np.float32(SSIM_CENTRE)
    return centred


def _window_mean_and_variance(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-window mean and variance of a centred float32 image (the mean stays centred)."""
    mean = _gaussian(image)
    return mean, _gaussian(image * image) - mean * mean


def _ssim(
    machine: np.ndarray, human: np.ndarray, human_mean: np.ndarray, human_variance: np.ndarray, region: np.ndarray
) -> float:
    """Mean over ``region`` (uint8, 1 where counted) of the channel-averaged SSIM map of two centred float32 RGB boxes."""
    machine_mean = _gaussian(machine)
    machine_square_mean = _gaussian(machine * machine)
    product_mean = _gaussian(machine * human)
    total, count = _ssim_map_sum(machine_mean, machine_square_mean, product_mean, human_mean, human_variance, region)
    return total / count if count else math.nan


_SSIM_C1 = np.float32((SSIM_K1 * 255) ** 2)
_SSIM_C2 = np.float32((SSIM_K2 * 255) ** 2)
_SSIM_CENTRE32 = np.float32(SSIM_CENTRE)


# Compiled: the map's terms in NumPy were fifteen passes over three full-size float planes (10 ms of
# SSIM's 22 at 1 MP); here each pixel's terms are made once, in float32 in the same order, and only
# the sum over the region is kept (in float64, as cv2.mean summed it).
@compiled()
def _ssim_map_sum(machine_mean, machine_square_mean, product_mean, human_mean, human_variance, region):
    two, third = np.float32(2), np.float32(1 / 3)
    total, count = 0.0, 0
    for row in range(region.shape[0]):
        for col in range(region.shape[1]):
            if not region[row, col]:
                continue
            ssim = np.float32(0)
            for channel in range(3):
                mean_m = machine_mean[row, col, channel]
                mean_h = human_mean[row, col, channel]
                variances = (machine_square_mean[row, col, channel] - mean_m * mean_m) + human_variance[row, col, channel]
                covariance = product_mean[row, col, channel] - mean_m * mean_h
                mean_m += _SSIM_CENTRE32
                mean_h += _SSIM_CENTRE32
                numerator = (two * (mean_m * mean_h) + _SSIM_C1) * (two * covariance + _SSIM_C2)
                denominator = (mean_m * mean_m + mean_h * mean_h + _SSIM_C1) * (variances + _SSIM_C2)
                ssim += (numerator / denominator) * third
            total += ssim
            count += 1
    return total, count


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
