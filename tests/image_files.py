"""Image files that decoders disagree on: EXIF orientation, alpha, 16 bits, palette, CMYK, animation.

Each ``AWKWARD`` entry is the bytes of a small photo stand-in with structure in its luminance, so a
rotation, a clipped bit depth or a dropped alpha channel shows in the pixels. ``corrupt_exif_jpeg``
is a JPEG whose EXIF block makes Pillow's ``exif_transpose`` raise.
"""

from __future__ import annotations

import io

import numpy as np
import PIL.Image

from bot.replay import corrupt_exif_jpeg as replay_corrupt_exif_jpeg
from test_bot.photos import color_scene

ORIENTATION = 0x0112
ROTATE_TO_DISPLAY = 6  # EXIF orientation: the stored pixels must be turned 90° clockwise to be upright


def encoded(image: PIL.Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(upright: np.ndarray, quality: int = 95) -> bytes:
    """A JPEG that shows ``upright`` only once its EXIF orientation is applied (stored sideways)."""
    exif = PIL.Image.Exif()
    exif[ORIENTATION] = ROTATE_TO_DISPLAY
    stored = PIL.Image.fromarray(upright).transpose(PIL.Image.Transpose.ROTATE_90)
    return encoded(stored, "JPEG", quality=quality, exif=exif.tobytes())


def corrupt_exif_jpeg(rgb: np.ndarray | None = None) -> bytes:
    """A JPEG whose pixels decode but whose EXIF block makes Pillow's ``exif_transpose`` raise
    ``TypeError`` (bot.replay's recipe, which the soak serves too)."""
    return replay_corrupt_exif_jpeg(color_scene(5, 48, 32) if rgb is None else rgb)


def with_alpha(rgb: np.ndarray, mode: str) -> bytes:
    """A PNG in ``mode`` (RGBA, LA or P with a transparent index) whose left third is transparent."""
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, : rgb.shape[1] // 3] = 0
    alpha[:, rgb.shape[1] // 3 : rgb.shape[1] // 2] = 128
    rgba = PIL.Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if mode == "P":
        quantized = PIL.Image.fromarray(rgb).quantize(63)
        indices = np.asarray(quantized).copy()
        indices[:, : rgb.shape[1] // 3] = 63  # an index no colour uses, declared transparent
        palette = PIL.Image.fromarray(indices, "P")
        palette.putpalette(quantized.getpalette()[: 63 * 3] + [0, 0, 0])
        return encoded(palette, "PNG", transparency=63)
    return encoded(rgba.convert(mode), "PNG")


def gray16_png(rgb: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG using the whole 16-bit range (clipping it to 8 bits would show)."""
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return encoded(PIL.Image.fromarray(np.round(luma * 257).astype(np.uint16)), "PNG")


def animation(rgb: np.ndarray, fmt: str) -> bytes:
    """Two frames, the photo then its negative: the first frame is the one every step must use."""
    frames = [PIL.Image.fromarray(rgb), PIL.Image.fromarray(255 - rgb)]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


SCENE = color_scene(7, 96, 64)

AWKWARD = {
    "exif-rotated.jpg": exif_rotated_jpeg(SCENE),
    "rgba.png": with_alpha(SCENE, "RGBA"),
    "la.png": with_alpha(SCENE, "LA"),
    "palette-transparent.png": with_alpha(SCENE, "P"),
    "gray16.png": gray16_png(SCENE),
    "cmyk.jpg": encoded(PIL.Image.fromarray(SCENE).convert("CMYK"), "JPEG", quality=95),
    "animated.gif": animation(SCENE, "GIF"),
    "animated.webp": animation(SCENE, "WEBP"),
}
"""name -> bytes; every one shows SCENE (96 wide, 64 high) once decoded right."""
