"""Fitting the chroma scale: how far to trust the network's colour on photos it has not seen.

A network trained on a few thousand photos is over-confident on new ones: where its guess of a hue
is wrong, the full-strength guess costs more than a weaker one would. Scaling the predicted U and V
by one factor towards gray trades saturation for error. The factor is fitted on photos kept out of
training (``TrainConfig.calibration_share``), never on the photos the model is judged on, and it
may not take the mean chroma below ``min_chroma_ratio`` of the true photos': a model that hides in
gray is not the goal. ``colorbot export`` stores the factor in the exported model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from colorizer.data import DecodeCounts, validation_dataset

SCALES = tuple(round(0.05 * i, 2) for i in range(0, 31))  # 0 (gray) … 1.5
DEFAULT_MIN_CHROMA_RATIO = 0.5


@dataclass
class ChromaFit:
    """The chosen scale and the curve it was chosen from (all on the calibration photos)."""

    scale: float
    photos: int
    min_chroma_ratio: float
    uv_error: dict[float, float]  # scale → mean Euclidean UV error
    chroma_ratio: dict[float, float]  # scale → mean |UV| of the model / mean |UV| of the truth

    def describe(self) -> str:
        unscaled, chosen, gray = self.uv_error[1.0], self.uv_error[self.scale], self.uv_error[0.0]
        return (f"chroma scale {self.scale:.2f} fitted on {self.photos} calibration photos: UV error "
                f"{chosen:.4f} (unscaled {unscaled:.4f}, gray {gray:.4f}), mean chroma "
                f"{self.chroma_ratio[self.scale]:.0%} of the truth's (floor {self.min_chroma_ratio:.0%})")


def fit_chroma_scale(
    model: keras.Model,
    paths: list[str],
    size: int,
    *,
    min_chroma_ratio: float = DEFAULT_MIN_CHROMA_RATIO,
    batch_size: int = 16,
) -> ChromaFit:
    """The scale in ``SCALES`` with the least UV error whose mean chroma stays above the floor.

    Each photo is centre-cropped to ``size`` as in validation; the network runs once per photo and
    every scale is measured on the same predictions.
    """
    counts = DecodeCounts()
    error_sums = np.zeros(len(SCALES))
    predicted_chroma = true_chroma = 0.0
    photos = 0
    scales = tf.constant(SCALES, tf.float32)[:, None, None, None, None]
    for y, uv in validation_dataset(paths, size=size, batch_size=batch_size, counts=counts):
        pred = tf.cast(model(y, training=False), tf.float32)
        distance = tf.norm(scales * pred[None] - uv[None], axis=-1)  # (scales, n, h, w)
        error_sums += tf.reduce_sum(tf.reduce_mean(distance, axis=[2, 3]), axis=1).numpy()
        predicted_chroma += float(tf.reduce_sum(tf.reduce_mean(tf.norm(pred, axis=-1), axis=[1, 2])))
        true_chroma += float(tf.reduce_sum(tf.reduce_mean(tf.norm(uv, axis=-1), axis=[1, 2])))
        photos += int(y.shape[0])
    if photos == 0:
        raise ValueError(f"no usable calibration photos among {len(paths)} files: {counts.as_dict()}")
    uv_error = {scale: float(total / photos) for scale, total in zip(SCALES, error_sums)}
    chroma_ratio = {scale: scale * predicted_chroma / true_chroma for scale in SCALES}
    allowed = [scale for scale in SCALES if chroma_ratio[scale] >= min_chroma_ratio]
    # A model too gray to reach the floor at any scale is left as it is: boosting a bad guess is no cure.
    best = min(allowed, key=lambda scale: uv_error[scale]) if allowed else 1.0
    return ChromaFit(best, photos, min_chroma_ratio, uv_error, chroma_ratio)
