"""The training loss: UV distance at full detail and after two Gaussian blurs.

Comparing blurred chroma as well rewards getting a region's colour roughly right even where the
exact edge is off, which per-pixel distance alone punishes as hard as a wrong colour.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BLUR_SIZES = (3, 5)


def uv_distance(pred: tf.Tensor, true: tf.Tensor, norm: str = "l2") -> tf.Tensor:
    """Per-pixel distance between two (…, 2) chroma tensors.

    ``"l2"`` is the Euclidean distance the original post describes; ``"l1"`` the sum of absolute
    differences its code used.
    """
    diff = pred - true
    if norm == "l2":
        # The epsilon keeps the gradient finite where prediction and truth coincide.
        return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1) + 1e-8)
    if norm == "l1":
        return tf.reduce_sum(tf.abs(diff), axis=-1)
    raise ValueError(f"unknown norm {norm!r}; use 'l2' or 'l1'")


def gaussian_kernel(size: int) -> np.ndarray:
    """A normalised 2-D Gaussian of ``size`` x ``size`` taps, as a depthwise kernel for 2 channels."""
    sigma = size / 3.0
    offsets = np.arange(size) - (size - 1) / 2
    one_d = np.exp(-(offsets**2) / (2 * sigma**2))
    two_d = np.outer(one_d, one_d)
    two_d /= two_d.sum()
    return np.repeat(two_d[:, :, None, None], 2, axis=2).astype(np.float32)


def blur(uv: tf.Tensor, size: int) -> tf.Tensor:
    """Gaussian blur of (n, h, w, 2) chroma; borders are mirrored so edges are not pulled to gray.

    A full convolution whose kernel blurs each channel into itself only: on the CPU it runs forward and
    backward in half the time of TensorFlow's depthwise convolution of two channels
    (benchmarks/train_throughput.py).
    """
    planar = gaussian_kernel(size)[:, :, :, 0]
    kernel = np.zeros((size, size, 2, 2), np.float32)
    kernel[:, :, 0, 0], kernel[:, :, 1, 1] = planar[:, :, 0], planar[:, :, 1]
    pad = size // 2
    padded = tf.pad(uv, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    return tf.nn.conv2d(padded, tf.constant(kernel, dtype=uv.dtype), strides=1, padding="VALID")


def colorization_loss(pred: tf.Tensor, true: tf.Tensor, norm: str = "l2") -> tf.Tensor:
    """Mean over the unblurred, 3 px and 5 px blurred versions of the mean UV distance.

    Blurring is linear, so the blurred prediction's distance from the blurred truth is the blurred
    difference's length: one blur per size instead of two.
    """
    pred = tf.cast(pred, tf.float32)
    true = tf.cast(true, tf.float32)
    terms = [tf.reduce_mean(uv_distance(pred, true, norm))]
    difference = pred - true
    for size in BLUR_SIZES:
        terms.append(tf.reduce_mean(uv_distance(blur(difference, size), tf.zeros_like(difference), norm)))
    return tf.add_n(terms) / len(terms)


def uv_error(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """Mean Euclidean UV distance per pixel: the metric reported during training."""
    diff = tf.cast(pred, tf.float32) - tf.cast(true, tf.float32)
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1)))
