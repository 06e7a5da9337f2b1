"""Synthetic photos as uint8 RGB arrays: scenes with structure in their luminance, their gray copies,
toned prints, and photos whose colour follows shape and texture rather than brightness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from skimage.color import rgb2gray

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # BT.601, as colorizer/ and eval/ compute luma


def color_scene(seed: int, width: int = 240, height: int = 180) -> np.ndarray:
    """A colour 'photo': a sky gradient, a field and a few coloured blocks of different hues."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.zeros((height, width, 3), np.float32)
    sky = y < height * 0.45
    rgb[sky] = np.stack([90 + 0.3 * y[sky], 140 + 0.4 * y[sky], 230 - 0.2 * y[sky]], axis=-1)
    rgb[~sky] = np.stack([70 + 0.2 * x[~sky], 150 - 0.1 * y[~sky], 60 + 0.0 * x[~sky]], axis=-1)
    for _ in range(4):
        x0, y0 = rng.integers(0, width - 30), rng.integers(0, height - 30)
        w, h = rng.integers(15, 30), rng.integers(15, 30)
        rgb[y0 : y0 + h, x0 : x0 + w] = rng.integers(30, 230, 3)
    rgb += rng.normal(0, 2.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def gradient_scene(height: int = 72, width: int = 96) -> np.ndarray:
    """A deterministic colour stand-in with structure in its luminance and no noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 3) % 256], axis=-1).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in 0..255 as floats (of the first three channels, so RGBA works too)."""
    return rgb[..., :3].astype(np.float64) @ LUMA_WEIGHTS


def gray_copy(rgb: np.ndarray) -> np.ndarray:
    """The photo's luminance as a three-channel uint8 gray image: the 'original' of a colorized post.

    scikit-image's (BT.709) luminance, as the published gray-baseline figures the metric tests check use.
    """
    luminance = np.round(rgb2gray(rgb) * 255).astype(np.uint8)
    return np.repeat(luminance[..., None], 3, axis=2)


def toned(rgb: np.ndarray, dark: tuple[int, int, int], light: tuple[int, int, int]) -> np.ndarray:
    """A monochrome print: luminance mapped linearly from the ``dark`` to the ``light`` colour."""
    shade = rgb2gray(rgb)[..., None]
    dark_rgb, light_rgb = np.array(dark, float), np.array(light, float)
    return np.clip(np.round(dark_rgb + (light_rgb - dark_rgb) * shade), 0, 255).astype(np.uint8)


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


def side_by_side(left: np.ndarray, right: np.ndarray, divider: int = 0, border: int = 0, fill: int = 255) -> np.ndarray:
    """Two pictures of equal height next to each other, optionally with a divider and a frame of ``fill``."""
    parts = [left] + ([np.full((left.shape[0], divider, 3), fill, np.uint8)] if divider else []) + [right]
    composite = np.concatenate(parts, axis=1)
    return np.pad(composite, ((border, border), (border, border), (0, 0)), constant_values=fill)


def noise_photo(seed: int, width: int = 16, height: int = 12) -> np.ndarray:
    """Uniform random pixels: distinct seeds give distinct images (and distinct hashes)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# -- photos whose colour a network can learn only from shape and texture -----------------------------

# (U, V) of each class; all well inside the gamut for Y in [0.35, 0.65].
CHROMA = {
    "stripes": (-0.12, 0.16),  # orange
    "checker": (0.16, -0.08),  # blue
    "disc": (-0.12, -0.14),  # green
    "square": (0.12, 0.14),  # magenta
}
_YUV_TO_RGB = np.array([[1.0, 0.0, 1.13988303], [1.0, -0.394642334, -0.58062185], [1.0, 2.03206185, 0.0]])


def synthetic_photo(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A textured background and one smooth shape; horizontal stripes are orange, a checkerboard blue, a
    disc green, a square magenta, and every region's brightness is random, so luminance alone says
    nothing about colour and a network that only copies gray or guesses an average tint cannot score well."""
    rows, cols = np.mgrid[0:size, 0:size]
    texture = "stripes" if rng.random() < 0.5 else "checker"
    if texture == "stripes":
        pattern = ((rows // 2) % 2) * 2 - 1
    else:
        pattern = (((rows // 2) + (cols // 2)) % 2) * 2 - 1
    y = rng.uniform(0.35, 0.65) + 0.06 * pattern
    u = np.full((size, size), CHROMA[texture][0])
    v = np.full((size, size), CHROMA[texture][1])

    shape = "disc" if rng.random() < 0.5 else "square"
    radius = rng.uniform(0.18, 0.3) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    if shape == "disc":
        inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
    else:
        inside = (np.abs(rows - cy) <= radius * 0.85) & (np.abs(cols - cx) <= radius * 0.85)
    y = np.where(inside, rng.uniform(0.35, 0.65), y)
    u = np.where(inside, CHROMA[shape][0], u)
    v = np.where(inside, CHROMA[shape][1], v)
    rgb = np.stack([y, u, v], axis=-1) @ _YUV_TO_RGB.T
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def write_synthetic_folder(folder: Path, count: int, seed: int, size: int = 64, name: str = "{:04d}.png") -> Path:
    """``folder`` holding ``count`` synthetic photos as PNG files named ``name.format(i)``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        PIL.Image.fromarray(synthetic_photo(rng, size)).save(folder / name.format(i))
    return folder
