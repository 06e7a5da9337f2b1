"""YUV (BT.601) as the network sees it: Y in [0, 1], U and V in their symmetric ranges.

The matrix is the one of ``skimage.color.rgb2yuv`` and ``tf.image.rgb_to_yuv``. Converting back
never lets a colour change the luminance: out-of-gamut chroma is shortened towards gray rather
than clipped per channel, so the output's Y is always the input's.
"""

from __future__ import annotations

import tensorflow as tf

U_MAX = 0.43601035
V_MAX = 0.61497538
UV_MAX = (U_MAX, V_MAX)

# How each RGB channel moves per unit of U and V (rows R, G, B; columns U, V).
_CHROMA_TO_RGB = tf.constant(
    [[0.0, 1.13988303], [-0.394642334, -0.58062185], [2.03206185, 0.0]], dtype=tf.float32
)


def rgb_to_yuv(rgb: tf.Tensor) -> tf.Tensor:
    """RGB floats in [0, 1] (…, 3) to YUV (…, 3)."""
    return tf.image.rgb_to_yuv(rgb)


def luminance(rgb: tf.Tensor) -> tf.Tensor:
    """Y of RGB floats in [0, 1], keeping a channel axis: (…, 3) -> (…, 1)."""
    return rgb_to_yuv(rgb)[..., :1]


def yuv_to_rgb_in_gamut(y: tf.Tensor, uv: tf.Tensor) -> tf.Tensor:
    """Recombine luminance (…, 1) and chroma (…, 2) into RGB in [0, 1] with exactly that Y.

    Where Y + chroma would leave the RGB cube, the chroma is scaled down (same hue, less
    saturation) until the pixel fits; the luminance is never touched.
    """
    y = tf.clip_by_value(y, 0.0, 1.0)
    delta = tf.einsum("...k,ck->...c", uv, _CHROMA_TO_RGB)
    room = tf.where(delta > 0, (1.0 - y) / tf.maximum(delta, 1e-12), y / tf.maximum(-delta, 1e-12))
    scale = tf.minimum(1.0, tf.reduce_min(room, axis=-1, keepdims=True))
    return tf.clip_by_value(y + scale * delta, 0.0, 1.0)
