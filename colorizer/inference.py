"""Full-resolution colorization: chroma predicted at the network's size, luminance kept at the photo's.

The network sees a small square copy of the luminance; its U and V are brought back up to the
photo's size and recombined with the photo's own full-resolution Y. The chroma can be brought up
bilinearly or by guided upsampling, which fits chroma as a local linear function of luminance at
low resolution and adds the full-resolution luminance detail through that fit, so colour edges
follow the photo's edges a little better than the 224 px grid. ``benchmarks/upsampling.py``
measures both; guided is the default because it loses less on held-out photos.

The same arithmetic exists twice: as TensorFlow ops (``network_input``, ``recombine``), which the
exported SavedModel's serving signature runs inside its graph, and as OpenCV and one Numba-compiled
loop on strips of rows (``full_luminance``, ``finish``), which in-process colorization runs: at 12 MP
TensorFlow's full-size float temporaries cost seconds, and NumPy's per-strip ones 150 ms, while the
compiled loop makes each output pixel in one go.
The two agree to a level of 8-bit output (``tests/test_colorizer/test_colorizer_inference.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import cv2
import numpy as np
import tensorflow as tf

from colorizer.compiled import compiled
from colorizer.color import RGB_PER_UV, Y_FROM_RGB, luminance, yuv_to_rgb_in_gamut
# Decoding and encoding live in colorizer.images; these names stay importable from here.
from colorizer.images import UnreadableImageError, encode_png  # noqa: F401
from colorizer.images import decode as load_rgb  # noqa: F401
from colorizer.threads import ForkSafePool

UPSAMPLING_METHODS = ("guided", "bilinear")
GUIDED_RADIUS = 1
GUIDED_EPS = 1e-3


def box_mean(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Mean over a (2r+1)^2 window; at borders, over the part of the window inside the image."""
    return tf.nn.avg_pool2d(x, ksize=2 * radius + 1, strides=1, padding="SAME")


def guided_upsample(
    y_small: tf.Tensor, uv_small: tf.Tensor, y_full: tf.Tensor, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS
) -> tf.Tensor:
    """Chroma (1, h, w, 2) brought to the size of ``y_full`` (1, H, W, 1), guided by luminance.

    Bilinear chroma plus the luminance detail that bilinear upsampling misses, scaled by how
    chroma follows luminance locally: in each low-resolution window uv ~ a * y + b (He, Sun and
    Tang's guided-filter regression); the smoothed slope a, upsampled, multiplies the difference
    between the full-resolution y and its upsampled low-resolution copy. Where chroma does not
    follow luminance, a is near 0 and this is plain bilinear.
    """
    mean_y = box_mean(y_small, radius)
    mean_uv = box_mean(uv_small, radius)
    cov_y_uv = box_mean(y_small * uv_small, radius) - mean_y * mean_uv
    var_y = box_mean(y_small * y_small, radius) - mean_y * mean_y
    slope = box_mean(cov_y_uv / (var_y + eps), radius)
    # One resize of all five planes is much cheaper at 12 MP than three separate ones.
    planes = tf.image.resize(tf.concat([uv_small, slope, y_small], axis=-1), tf.shape(y_full)[1:3], method="bilinear")
    return planes[..., 0:2] + planes[..., 2:4] * (y_full - planes[..., 4:5])


def upsample_chroma(y_small, uv_small, y_full, method: str) -> tf.Tensor:
    if method == "guided":
        return guided_upsample(y_small, uv_small, y_full)
    if method == "bilinear":
        return tf.image.resize(uv_small, tf.shape(y_full)[1:3], method="bilinear")
    raise ValueError(f"unknown upsampling {method!r}; choose one of {UPSAMPLING_METHODS}")


def network_input(rgb: tf.Tensor, size) -> tuple[tf.Tensor, tf.Tensor]:
    """(full-resolution Y, Y squeezed to size x size) of one uint8 RGB image (H, W, 3).

    ``size`` may also be (height, width), for networks that take other shapes than squares.
    """
    y_full = luminance(tf.cast(rgb, tf.float32) / 255.0)[None]
    return y_full, shrink(y_full, (size, size) if isinstance(size, int) else size)


def shrink(y_full: tf.Tensor, shape) -> tf.Tensor:
    """Y (1, H, W, 1) brought down to ``shape`` (height, width) the way the network input is."""
    return tf.image.resize(y_full, shape, method="area", antialias=True)


def recombine(y_full: tf.Tensor, y_small: tf.Tensor, uv_small: tf.Tensor, method: str) -> tf.Tensor:
    """uint8 RGB (H, W, 3) from full-resolution Y and the network's low-resolution chroma."""
    uv_full = upsample_chroma(y_small, uv_small[None], y_full, method)
    rgb = yuv_to_rgb_in_gamut(y_full, uv_full)[0]
    return tf.cast(tf.round(rgb * 255.0), tf.uint8)


# -- the same arithmetic outside TensorFlow, for in-process colorization ----------------------------

STRIP_ROWS = 32
"""Output rows worked on at once by one thread."""

_WORKERS = max(1, min(4, os.cpu_count() or 1))
_POOL = ForkSafePool(_WORKERS, "colorize-strip")  # NumPy and OpenCV release the GIL

_Y255_FROM_RGB = np.array([Y_FROM_RGB], np.float32)


def full_luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y of uint8 RGB (H, W, 3) on the 0..255 scale, float32 (H, W); no float copy of the photo is made."""
    y255 = np.empty(rgb.shape[:2], np.float32)

    def strip(top: int) -> None:
        rows = slice(top, top + 4 * STRIP_ROWS)
        cv2.transform(rgb[rows].astype(np.float32), _Y255_FROM_RGB, dst=y255[rows])

    list(_POOL.map(strip, range(0, rgb.shape[0], 4 * STRIP_ROWS)))
    return y255


def shrink_luminance(y255: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Y (H, W) on 0..255 brought down to ``shape`` (height, width) by area, on 0..1: the network's input."""
    return cv2.resize(y255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA) * np.float32(1 / 255)


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """``box_mean`` in OpenCV: the mean over the part of the window inside the image."""
    side = (2 * radius + 1, 2 * radius + 1)
    sums = cv2.boxFilter(x, -1, side, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return np.divide(sums, _window_counts(x.shape, radius), out=sums)


@functools.lru_cache(maxsize=8)
def _window_counts(shape: tuple[int, ...], radius: int) -> np.ndarray:
    """How many pixels of each (2r+1)^2 window lie inside an image of ``shape``: the same for every photo.
    Of the full shape, channels included, since dividing by a broadcast plane costs NumPy three times as much."""
    side = (2 * radius + 1, 2 * radius + 1)
    counts = cv2.boxFilter(np.ones(shape[:2], np.float32), -1, side, normalize=False, borderType=cv2.BORDER_CONSTANT)
    if len(shape) == 3:
        counts = np.repeat(counts[..., None], shape[2], axis=2)
    counts.flags.writeable = False
    return counts


def _guide_planes(y_small: np.ndarray, uv_small: np.ndarray, method: str) -> np.ndarray:
    """The five low-resolution planes the full-size chroma is made of, (5, h, w): U and V and Y on
    0..255, and guided upsampling's slopes of U and V on luminance (zero for bilinear)."""
    if method not in UPSAMPLING_METHODS:
        raise ValueError(f"unknown upsampling {method!r}; choose one of {UPSAMPLING_METHODS}")
    slope = np.zeros_like(uv_small)
    if method == "guided":
        mean_y = _box_mean(y_small, GUIDED_RADIUS)[..., None]
        mean_uv = _box_mean(uv_small, GUIDED_RADIUS)
        cov_y_uv = _box_mean(y_small[..., None] * uv_small, GUIDED_RADIUS) - mean_y * mean_uv
        var_y = _box_mean(y_small * y_small, GUIDED_RADIUS)[..., None] - mean_y * mean_y
        slope = _box_mean(cov_y_uv / (var_y + GUIDED_EPS), GUIDED_RADIUS)
    # Y and chroma on 0..255, so the full-size work ends in 8-bit levels without another multiplication;
    # a slope is chroma per luminance, the same on either scale.
    planes = [255 * uv_small[..., 0], 255 * uv_small[..., 1], slope[..., 0], slope[..., 1], 255 * y_small]
    return np.stack(planes).astype(np.float32, copy=False)


def _between(size: int, small_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output row (or column), the two low-resolution ones it lies between and its weight on the
    second (half-pixel centres and clamped edges, as ``tf.image.resize``'s bilinear)."""
    position = (np.arange(size) + 0.5) * (small_size / size) - 0.5
    below = np.floor(position)
    weight = (position - below).astype(np.float32)
    return np.clip(below, 0, small_size - 1).astype(np.intp), np.clip(below + 1, 0, small_size - 1).astype(np.intp), weight


def finish(y255: np.ndarray, y_small: np.ndarray, uv_small: np.ndarray, method: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) from full-resolution Y (``full_luminance``) and the network's chroma (h, w, 2)
    at the size of ``y_small`` (h, w): ``recombine``'s arithmetic, a strip of rows at a time."""
    height, width = y255.shape
    y255 = np.ascontiguousarray(y255, np.float32)
    planes = _guide_planes(y_small, uv_small.astype(np.float32), method)
    rows = _between(height, planes.shape[1])
    columns = _between(width, planes.shape[2])
    out = np.empty((height, width, 3), np.uint8)
    list(_POOL.map(lambda top: _finish_rows(y255, planes, *rows, *columns, out, top, min(top + STRIP_ROWS, height)),
                   range(0, height, STRIP_ROWS)))
    return out


(_R_PER_U, _R_PER_V), (_G_PER_U, _G_PER_V), (_B_PER_U, _B_PER_V) = (
    (np.float32(per_u), np.float32(per_v)) for per_u, per_v in RGB_PER_UV)


# Compiled, since in NumPy each of these steps is a pass over a strip with its own temporary: at 12 MP
# they took 150 ms, this 55 on two threads. Serial and without the GIL: the strips run on _POOL's threads,
# which (unlike Numba's own thread pool) are safe to enter from several threads at once and after a fork.
@compiled(fastmath={"nnan", "ninf", "nsz"})
def _finish_rows(y255, planes, below, above, down, left, right, across, out, top, bottom):
    zero, one, full = np.float32(0), np.float32(1), np.float32(255)
    tiny = np.float32(1e-12)
    width = y255.shape[1]
    line = np.empty((planes.shape[0], planes.shape[2]), np.float32)
    full_row = np.empty((planes.shape[0], width), np.float32)
    rgb = np.empty((3, width), np.float32)
    for row in range(top, bottom):
        # Bilinear is separable: first down, on the low-resolution row, then across to the full width.
        for plane in range(planes.shape[0]):
            for col in range(planes.shape[2]):
                first = planes[plane, below[row], col]
                line[plane, col] = first + down[row] * (planes[plane, above[row], col] - first)
            for col in range(width):
                first = line[plane, left[col]]
                full_row[plane, col] = first + across[col] * (line[plane, right[col]] - first)
        # The five planes at full size: U, V, their slopes on luminance, and the guide's Y.
        u, v, slope_u, slope_v, y_guide = full_row[0], full_row[1], full_row[2], full_row[3], full_row[4]
        for col in range(width):
            y = min(max(y255[row, col], zero), full)
            detail = y - y_guide[col]  # the luminance detail the low resolution misses
            u_col = u[col] + slope_u[col] * detail
            v_col = v[col] + slope_v[col] * detail
            red = _R_PER_U * u_col + _R_PER_V * v_col
            green = _G_PER_U * u_col + _G_PER_V * v_col
            blue = _B_PER_U * u_col + _B_PER_V * v_col
            # yuv_to_rgb_in_gamut: chroma shortened until every channel fits. Chroma has no luminance, so
            # the channels' steps straddle 0 and only the largest and the smallest can leave the cube.
            scale = min((full - y) / max(max(red, green, blue), tiny), one)
            scale = min(scale, y / max(-min(red, green, blue), tiny))
            # Rounded half to even and saturated to 0..255.
            rgb[0, col] = min(max(np.rint(y + scale * red), zero), full)
            rgb[1, col] = min(max(np.rint(y + scale * green), zero), full)
            rgb[2, col] = min(max(np.rint(y + scale * blue), zero), full)
        for col in range(width):
            for channel in range(3):
                out[row, col, channel] = np.uint8(rgb[channel, col])


class Colorizer:
    """Colorizes full-resolution photos with a network that predicts chroma at ``size`` px.

    ``predict_uv`` maps a batch of Y (n, size, size, 1), a float32 array, to chroma (n, size, size, 2):
    a Keras model, or an exported model's network (colorizer/export.py).
    """

    def __init__(self, predict_uv: Callable[[tf.Tensor], tf.Tensor], size: int, upsampling: str = "guided"):
        if upsampling not in UPSAMPLING_METHODS:
            raise ValueError(f"unknown upsampling {upsampling!r}; choose one of {UPSAMPLING_METHODS}")
        self.predict_uv = predict_uv
        self.size = size
        self.upsampling = upsampling

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB arrays in, uint8 RGB arrays of the same sizes out; colour input is grayed first."""
        if not images:
            return []
        y_full = [full_luminance(np.asarray(image, np.uint8)) for image in images]
        y_small = [shrink_luminance(y255, (self.size, self.size)) for y255 in y_full]
        uv = np.asarray(self.predict_uv(np.stack(y_small)[..., None]), np.float32)
        return [finish(y255, small, uv[i], self.upsampling) for i, (y255, small) in enumerate(zip(y_full, y_small))]

    def colorize_one(self, image: np.ndarray) -> np.ndarray:
        return self.colorize([image])[0]
