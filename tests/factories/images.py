"""Encoded image files: photos as PNG/JPEG/... bytes, and the files decoders disagree on (EXIF
orientation, alpha, 16 bits, palette, CMYK, animation, a corrupt EXIF block).

Everything is written by Pillow except what Pillow cannot write (48-bit RGB PNG) or must not write
correctly (a damaged EXIF block): those few are built byte by byte here, and only here.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import PIL.Image

from bot.replay import corrupt_exif_jpeg as replay_corrupt_exif_jpeg
from colorizer.images import decode

from .photos import color_scene, gray_copy, luma, side_by_side

ORIENTATION = 0x0112
ROTATE_TO_DISPLAY = 6  # EXIF orientation: the stored pixels must be turned 90° clockwise to be upright


def encoded(picture: PIL.Image.Image | np.ndarray, fmt: str = "PNG", **options) -> bytes:
    """``picture`` (a Pillow image or a uint8/uint16 array) saved as ``fmt`` with Pillow's ``options``."""
    image = PIL.Image.fromarray(picture) if isinstance(picture, np.ndarray) else picture
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(rgb: np.ndarray) -> bytes:
    return encoded(rgb, "PNG")


def flat_png(width: int, height: int, color: tuple[int, int, int] = (90, 90, 90)) -> bytes:
    """A PNG of one colour: many pixels in few bytes, as a flood would send."""
    return encoded(PIL.Image.new("RGB", (width, height), color), "PNG")


def pair(seed: int, fmt: str = "PNG") -> tuple[bytes, bytes]:
    """(original, colorization) of one colour scene as encoded bytes: its gray copy and itself."""
    scene = color_scene(seed)
    options = {"quality": 92} if fmt == "JPEG" else {}
    return encoded(gray_copy(scene), fmt, **options), encoded(scene, fmt, **options)


def composite_file(original: bytes, colorized: bytes, fmt: str = "PNG", **options) -> bytes:
    """The composite a colourist posts: original on the left, colorization on the right."""
    return encoded(side_by_side(decode(original), decode(colorized)), fmt, **options)


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
    return encoded(np.round(luma(rgb) * 257).astype(np.uint16), "PNG")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def rgb16_png(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG of uint16 ``pixels`` (Pillow reads these but cannot write them)."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2")
    raw = b"".join(b"\x00" + rows[row].tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


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
