"""Full-resolution colorization: chroma predicted at the network's size, luminance kept at the photo's.

The network sees a small square copy of the luminance; its U and V are brought back up to the
photo's size and recombined with the photo's own full-resolution Y. The chroma can be brought up
bilinearly or by guided upsampling, which fits chroma as a local linear function of luminance at
low resolution and adds the full-resolution luminance detail through that fit, so colour edges
follow the photo's edges a little better than the 224 px grid. ``benchmarks/upsampling.py``
measures both; guided is the default because it loses less on held-out photos.

Everything after decoding is TensorFlow ops, so the exported SavedModel runs exactly this code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from colorizer.color import luminance, yuv_to_rgb_in_gamut
# Decoding and encoding live in colorizer.images; these names stay importable from here.
from colorizer.images import UnreadableImageError, encode_png  # noqa: F401
from colorizer.images import decode as load_rgb  # noqa: F401

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


class Colorizer:
    """Colorizes full-resolution photos with a network that predicts chroma at ``size`` px.

    ``predict_uv`` maps a batch of Y (n, size, size, 1) to chroma (n, size, size, 2): a Keras
    model, or the signature of an exported SavedModel.
    """

    def __init__(self, predict_uv: Callable[[tf.Tensor], tf.Tensor], size: int, upsampling: str = "guided"):
        if upsampling not in UPSAMPLING_METHODS:
            raise ValueError(f"unknown upsampling {upsampling!r}; choose one of {UPSAMPLING_METHODS}")
        self.predict_uv = predict_uv
        self.size = size
        self.upsampling = upsampling
        self._prepare = tf.function(
            lambda rgb: network_input(rgb, size),
            input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
            reduce_retracing=True,
        )
        self._finish = tf.function(
            lambda y_full, y_small, uv: recombine(y_full, y_small, uv, upsampling),
            input_signature=[
                tf.TensorSpec([1, None, None, 1], tf.float32),
                tf.TensorSpec([1, size, size, 1], tf.float32),
                tf.TensorSpec([size, size, 2], tf.float32),
            ],
        )

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB arrays in, uint8 RGB arrays of the same sizes out; colour input is grayed first."""
        if not images:
            return []
        prepared = [self._prepare(tf.convert_to_tensor(image, tf.uint8)) for image in images]
        batch = tf.concat([y_small for _, y_small in prepared], axis=0)
        uv = tf.cast(self.predict_uv(batch), tf.float32)
        return [
            self._finish(y_full, y_small, uv[i]).numpy() for i, (y_full, y_small) in enumerate(prepared)
        ]

    def colorize_one(self, image: np.ndarray) -> np.ndarray:
        return self.colorize([image])[0]
