"""Synthetic test photos for the eval/ tests, built from scikit-image's bundled pictures."""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray


def gray_copy(rgb: np.ndarray) -> np.ndarray:
    """The photo's luminance as a three-channel uint8 gray image."""
    luminance = np.round(rgb2gray(rgb) * 255).astype(np.uint8)
    return np.repeat(luminance[..., None], 3, axis=2)


def toned(rgb: np.ndarray, dark: tuple[int, int, int], light: tuple[int, int, int]) -> np.ndarray:
    """A monochrome print: luminance mapped linearly from the ``dark`` to the ``light`` colour."""
    luminance = rgb2gray(rgb)[..., None]
    dark_rgb, light_rgb = np.array(dark, float), np.array(light, float)
    return np.clip(np.round(dark_rgb + (light_rgb - dark_rgb) * luminance), 0, 255).astype(np.uint8)


def sepia(rgb: np.ndarray) -> np.ndarray:
    return toned(rgb, (40, 20, 5), (255, 235, 195))


def cyanotype(rgb: np.ndarray) -> np.ndarray:
    return toned(rgb, (10, 30, 80), (220, 235, 250))


def faded(rgb: np.ndarray) -> np.ndarray:
    """An old colour print: a third of the colour left, lower contrast, a warm cast."""
    mix = 0.35 * rgb + 0.65 * gray_copy(rgb)
    return np.clip(mix * 0.8 + 40 + np.array([10, 5, -5]), 0, 255).astype(np.uint8)


def with_noise(rgb: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Independent Gaussian noise on every channel, as a colour scan of a gray print has."""
    noise = np.random.default_rng(seed).normal(0, sigma, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)
