"""The classification head's chroma bins, after Zhang, Isola and Efros, "Colorful Image Colorization" (2016).

Regressing U and V with a distance loss pulls every uncertain pixel to the mean of its plausible
colours, which is a brownish gray: the residual encoder's sepia. Zhang et al. instead classify each
pixel's chroma into quantized bins, weight the loss by the rarity of the true bin in the training
photos (class rebalancing) and decode by the annealed mean of the predicted distribution.

Zhang et al. quantize CIE a*b* into 313 in-gamut bins 10 units wide. Here the grid is over U and V,
the chroma the rest of colorbot predicts, recombines and measures: the network's target, the gamut
test and the export's output then need no colour-space conversion. A bin of 0.05 in U and V is
about 10 a*b* units for mid-tones (U and V span about 1.1 and 1.2; a*b* about 180 and 200). A bin
is kept when its centre is a colour some luminance can show (in the RGB gamut for some Y).
The soft targets spread each true colour over its 5 nearest bins with a Gaussian of half a bin
(Zhang's σ = 5 for 10-unit bins); the prior is smoothed with the same half-bin Gaussian.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorizer.color import UV_MAX

NEAREST_BINS = 5  # soft-encoding: each true colour spread over this many bins
SIGMA_IN_BINS = 0.5  # soft-encoding and prior smoothing, in bin widths (Zhang: 5 a*b* units of 10)
REBALANCE_LAMBDA = 0.5  # the weights mix the smoothed prior with a uniform one, half each
PRIOR_FILE = "chroma_prior.json"

# RGB = Y + these rows times (U, V): the inverse BT.601 matrix of colorizer/color.py.
_RGB_PER_UV = np.array([[0.0, 1.13988303], [-0.394642334, -0.58062185], [2.03206185, 0.0]])


def uv_in_gamut(uv: np.ndarray) -> np.ndarray:
    """Whether some luminance in [0, 1] shows each (U, V) inside the RGB cube.

    The channels' offsets from Y always straddle zero (their luminance-weighted sum is 0), so a
    Y exists exactly when the spread between the largest and the smallest offset is at most 1.
    """
    offsets = uv @ _RGB_PER_UV.T
    return offsets.max(axis=-1) - offsets.min(axis=-1) <= 1.0


@functools.lru_cache(maxsize=8)
def _grid(bin_size: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(in-gamut centres (Q, 2), their (row, column) on the full grid, the full grid's shape)."""
    u_steps = int(np.floor(UV_MAX[0] / bin_size + 1e-9))
    v_steps = int(np.floor(UV_MAX[1] / bin_size + 1e-9))
    u = np.arange(-u_steps, u_steps + 1) * bin_size
    v = np.arange(-v_steps, v_steps + 1) * bin_size
    grid_u, grid_v = np.meshgrid(u, v, indexing="ij")
    centres = np.stack([grid_u, grid_v], axis=-1)
    keep = uv_in_gamut(centres)
    cells = np.argwhere(keep)
    for array in (centres, cells):
        array.setflags(write=False)
    return centres[keep].astype(np.float32), cells, keep.shape


def bin_centres(bin_size: float) -> np.ndarray:
    """The (Q, 2) U and V centres of the in-gamut bins, in a fixed order (U-major)."""
    return _grid(float(bin_size))[0]


def nearest_bins(uv: tf.Tensor, centres: np.ndarray, k: int = NEAREST_BINS) -> tuple[tf.Tensor, tf.Tensor]:
    """(indices (..., k), squared distances (..., k)) of the k bins nearest each (U, V), nearest first."""
    centres = tf.constant(centres, tf.float32)
    uv = tf.cast(uv, tf.float32)
    squared = (tf.reduce_sum(tf.square(uv), -1, keepdims=True) - 2.0 * tf.tensordot(uv, centres, [[-1], [1]])
               + tf.reduce_sum(tf.square(centres), -1))
    negative, indices = tf.math.top_k(-squared, k=k)
    return indices, tf.maximum(-negative, 0.0)


def soft_encode(uv: tf.Tensor, bin_size: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Zhang's soft target: (the 5 nearest bins, their Gaussian weights summing to 1) per pixel."""
    indices, squared = nearest_bins(uv, bin_centres(bin_size))
    sigma = SIGMA_IN_BINS * bin_size
    weights = tf.nn.softmax(-squared / (2.0 * sigma**2), axis=-1)
    return indices, weights


def classification_loss(logits: tf.Tensor, true_uv: tf.Tensor, bin_size: float, stride: int,
                        rebalance: tf.Tensor) -> tf.Tensor:
    """Cross-entropy of the predicted bins against the soft targets, each pixel weighted by the
    rebalancing weight of its nearest bin; the true chroma is area-averaged to the logits' size."""
    logits = tf.cast(logits, tf.float32)
    true_uv = tf.cast(true_uv, tf.float32)
    if stride > 1:
        true_uv = tf.nn.avg_pool2d(true_uv, stride, stride, "VALID")
    indices, target = soft_encode(true_uv, bin_size)
    log_probabilities = tf.nn.log_softmax(logits, axis=-1)
    cross_entropy = -tf.reduce_sum(target * tf.gather(log_probabilities, indices, batch_dims=3), axis=-1)
    return tf.reduce_mean(tf.gather(rebalance, indices[..., 0]) * cross_entropy)


def annealed_mean(logits: tf.Tensor, centres: tf.Tensor, temperature) -> tf.Tensor:
    """Σ_q f_T(z)_q c_q with f_T(z) ∝ exp(log z / T): the softmax of the logits divided by T.

    T = 1 is the mean of the distribution (sepia again), T → 0 its mode (vivid but patchy);
    Zhang's 0.38 lies between.
    """
    weights = tf.nn.softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)
    return tf.tensordot(weights, centres, [[-1], [0]])


@keras.saving.register_keras_serializable(package="colorbot")
class AnnealedMean(keras.layers.Layer):
    """Logits over the bins to (U, V). Centres and temperature are (non-trainable) weights, so the
    exported weights file, and with it the model's identity, changes when either does."""

    def __init__(self, bin_size: float, temperature: float, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        self.bin_size = float(bin_size)
        self.initial_temperature = float(temperature)

    def build(self, input_shape):
        centres = bin_centres(self.bin_size)
        self.centres = self.add_weight(name="centres", shape=centres.shape, initializer="zeros", trainable=False)
        self.centres.assign(centres)
        self.temperature = self.add_weight(name="temperature", shape=(), initializer="zeros", trainable=False)
        self.temperature.assign(self.initial_temperature)

    def call(self, logits):
        return annealed_mean(logits, self.centres, self.temperature)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return {**super().get_config(), "bin_size": self.bin_size, "temperature": self.initial_temperature}


def hard_counts(uv: np.ndarray, bin_size: float) -> np.ndarray:
    """How many of the (..., 2) chroma values fall nearest each bin: shape (Q,)."""
    indices, _ = nearest_bins(tf.constant(uv.reshape(-1, 2)), bin_centres(bin_size), k=1)
    return np.bincount(indices.numpy()[:, 0], minlength=len(bin_centres(bin_size))).astype(np.float64)


def smooth_prior(counts: np.ndarray, bin_size: float) -> np.ndarray:
    """The empirical bin distribution, smoothed with a half-bin Gaussian on the U-V grid
    (out-of-gamut cells count as empty and are dropped afterwards), summing to 1."""
    _, cells, shape = _grid(float(bin_size))
    grid = np.zeros(shape)
    grid[cells[:, 0], cells[:, 1]] = counts / max(counts.sum(), 1e-12)
    radius = 3
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * SIGMA_IN_BINS**2))
    kernel /= kernel.sum()
    for axis in (0, 1):
        grid = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="same"), axis, grid)
    smoothed = grid[cells[:, 0], cells[:, 1]]
    return smoothed / smoothed.sum()


def rebalancing_weights(smoothed: np.ndarray, mix: float = REBALANCE_LAMBDA) -> np.ndarray:
    """w ∝ ((1 − λ) p̃ + λ / Q)^−1, scaled so that its expectation under p̃ is 1 (Zhang's eq. 4)."""
    weights = 1.0 / ((1.0 - mix) * smoothed + mix / len(smoothed))
    return weights / float(np.sum(smoothed * weights))


def write_prior(out_dir: str | Path, counts: np.ndarray, bin_size: float, photos: int) -> dict:
    """Save the prior (counts, smoothed prior, weights) as ``chroma_prior.json``; returns its contents."""
    smoothed = smooth_prior(counts, bin_size)
    prior = {
        "bin_size": float(bin_size),
        "photos": int(photos),
        "centres": bin_centres(bin_size).tolist(),
        "counts": counts.astype(int).tolist(),
        "smoothed_prior": smoothed.tolist(),
        "weights": rebalancing_weights(smoothed).tolist(),
        "rebalance_lambda": REBALANCE_LAMBDA,
        "sigma_in_bins": SIGMA_IN_BINS,
    }
    Path(out_dir, PRIOR_FILE).write_text(json.dumps(prior), encoding="utf-8")
    return prior


def read_prior(out_dir: str | Path, bin_size: float) -> dict | None:
    """The saved prior, or None when there is none; refuses one made for other bins."""
    file = Path(out_dir, PRIOR_FILE)
    if not file.is_file():
        return None
    prior = json.loads(file.read_text(encoding="utf-8"))
    if prior["bin_size"] != float(bin_size) or len(prior["weights"]) != len(bin_centres(bin_size)):
        raise ValueError(f"{file} was computed for bins of {prior['bin_size']}, not {bin_size}")
    return prior


PRIOR_PHOTOS = 2000  # enough photos to estimate a few hundred bins' frequencies
PRIOR_SIDE = 64  # photos are decoded this small for the prior: it counts colours, not detail


def count_photo_chroma(paths: list[str], bin_size: float, max_photos: int = PRIOR_PHOTOS) -> tuple[np.ndarray, int]:
    """(bin counts over the pixels of up to ``max_photos`` evenly spread training photos, photos used)."""
    from colorizer.data import DecodeCounts, decode_photo, rgb_to_yuv_array

    chosen = paths[:: max(1, len(paths) // max_photos)][:max_photos]
    counts, used, outcomes = np.zeros(len(bin_centres(bin_size))), 0, DecodeCounts()
    for path in chosen:
        pixels = decode_photo(path, PRIOR_SIDE, outcomes)
        if pixels is not None:
            counts += hard_counts(rgb_to_yuv_array(pixels)[..., 1:], bin_size)
            used += 1
    if not used:
        raise ValueError(f"no usable photos to compute the chroma prior from: {outcomes.as_dict()}")
    return counts, used
