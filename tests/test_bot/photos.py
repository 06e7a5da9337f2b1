"""Small synthetic photos for the bot tests: a colour scene, its gray original, composites."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image


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


def gray_of(rgb: np.ndarray) -> np.ndarray:
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gray = np.clip(luma, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(rgb).save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def pair(seed: int, fmt: str = "PNG") -> tuple[bytes, bytes]:
    """(original, colorization) as encoded bytes."""
    scene = color_scene(seed)
    return encode(gray_of(scene), fmt), encode(scene, fmt)


def side_by_side(original: bytes, colorized: bytes) -> bytes:
    """The composite a colourist posts: original on the left, colorization on the right."""
    return encode(np.concatenate([decode(original), decode(colorized)], axis=1))
