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

# How R, G and B move per unit of U and V (the inverse of the BT.601 matrix; Y adds to each equally).
_R_PER_V = 1.13988303
_G_PER_U, _G_PER_V = -0.394642334, -0.58062185
_B_PER_U = 2.03206185
RGB_PER_UV = ((0.0, _R_PER_V), (_G_PER_U, _G_PER_V), (_B_PER_U, 0.0))
"""(per U, per V) for R, G and B: the same inverse matrix, for code outside TensorFlow."""
Y_FROM_RGB = (0.299, 0.587, 0.114)
"""BT.601 luminance weights (the first row of ``tf.image.rgb_to_yuv``'s matrix)."""


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
    u, v = uv[..., :1], uv[..., 1:2]
    deltas = (_R_PER_V * v, _G_PER_U * u + _G_PER_V * v, _B_PER_U * u)
    # Per channel, the share of its chroma step that still fits between 0 and 1; the pixel takes the least.
    scale = tf.ones_like(y)
    for delta in deltas:
        headroom = tf.where(delta > 0, 1.0 - y, y)
        scale = tf.minimum(scale, headroom / tf.maximum(tf.abs(delta), 1e-12))
    return tf.clip_by_value(tf.concat([y + scale * delta for delta in deltas], axis=-1), 0.0, 1.0)
