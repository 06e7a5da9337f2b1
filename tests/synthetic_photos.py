"""Synthetic colour photos in which colour follows shape and texture, never luminance.

Each picture has a textured background and one smooth shape. Horizontal stripes are orange,
a checkerboard is blue, a disc is green, a square is magenta; every region's brightness is drawn
at random, so luminance alone says nothing about colour and a network that only copies gray or
guesses an average tint cannot score well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image

# (U, V) of each class; all well inside the gamut for Y in [0.35, 0.65].
CHROMA = {
    "stripes": (-0.12, 0.16),  # orange
    "checker": (0.16, -0.08),  # blue
    "disc": (-0.12, -0.14),  # green
    "square": (0.12, 0.14),  # magenta
}
_YUV_TO_RGB = np.array([[1.0, 0.0, 1.13988303], [1.0, -0.394642334, -0.58062185], [1.0, 2.03206185, 0.0]])


def synthetic_photo(rng: np.random.Generator, size: int = 64) -> np.ndarray:
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


def write_synthetic_folder(folder: Path, count: int, seed: int, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        PIL.Image.fromarray(synthetic_photo(rng, size)).save(folder / f"{i:04d}.png")
    return folder
