"""The one way bytes become pixels, and pixels become bytes to store.

Every step that reads an image (the downloader, pairing, colorize, evaluate, the report, the
``colorize`` command, the model server) decodes it here, so they all start from the same pixels:
the EXIF orientation applied, alpha put on white, 16-bit scaled (not clipped) to 8 bits, palette
and CMYK converted, an animation's first frame, under one pixel cap. What ``db.store.store_image``
records about an image (format and upright size) comes from here too, as :class:`EncodedImage`.

Every way a corrupt file can make Pillow fail is turned into :class:`UnreadableImageError`, so a
caller needs to handle one exception: ``tests/test_images.py`` fuzzes this module with mutated
JPEG, PNG, WebP and GIF files to keep that true. Importing it loads no TensorFlow, so the bot and
the evaluation can use it cheaply.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
from isal import isal_zlib

from colorizer.threads import ForkSafePool

DEFAULT_MAX_PIXELS = 200_000_000
"""The pixel cap when the caller sets none; Pillow's own bomb limit (about 179 million) still applies."""

ACCEPTED_FORMATS = frozenset({"jpeg", "png", "webp", "gif"})
"""The formats a post's images may have; anything else is refused for good when downloaded."""

READABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""The Pillow plugins a file may be opened with (local files may also be BMP or TIFF scans). Pillow
tries no other: EPS would start Ghostscript, and no one posts a photo as an icon or a PDF."""

_FORMAT_NAMES = {"MPO": "jpeg"}  # the JPEG plugin opens a camera's multi-picture JPEG as MPO: its first picture is the photo

# What Pillow raises on corrupt or hostile files. Fuzzing (see the module docstring) met OSError,
# ValueError, SyntaxError, struct.error, DecompressionBombError and, from damaged EXIF tags,
# TypeError and AttributeError; the others are a margin, since plugins index tables, divide and
# inflate with values read from the file.
DECODER_ERRORS = (
    OSError, ValueError, SyntaxError, TypeError, AttributeError, KeyError, IndexError, EOFError,
    ZeroDivisionError, OverflowError, struct.error, zlib.error, PIL.Image.DecompressionBombError,
)


class UnreadableImageError(ValueError):
    """A file or a byte string that cannot be read as an image; the message says why."""


class RefusedImageError(UnreadableImageError):
    """An image refused by rule, not by damage (more pixels than the cap: a decompression bomb): no retry helps."""


@dataclass(frozen=True)
class Picture:
    """A decoded image: its format (lower case), its upright size and its pixels (uint8 RGB, H x W x 3)."""

    format: str
    width: int
    height: int
    pixels: np.ndarray


@dataclass(frozen=True)
class EncodedImage:
    """Bytes to store and what decoding them gave: what ``db.store.store_image`` records."""

    data: bytes
    format: str
    width: int
    height: int


def read_image(source: str | Path | bytes | io.BytesIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode a file (a path) or bytes; raises :class:`UnreadableImageError`, or OSError for a missing file."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with PIL.Image.open(file, formats=READABLE_FORMATS) as image:
            fmt = _FORMAT_NAMES.get(image.format or "", (image.format or "unknown").lower())
            _check_size(image.width, image.height, max_pixels)
            image.load()  # before the EXIF is read, so damaged pixels are not blamed on the EXIF
            upright = _upright(image)
            pixels = _to_rgb_array(upright)
    except UnreadableImageError:
        raise
    except PIL.Image.DecompressionBombError as exc:
        raise RefusedImageError(str(exc)) from exc
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # the path's problem, not the image's: the caller words it
    except DECODER_ERRORS as exc:
        raise UnreadableImageError(f"cannot read image: {_reason(exc)}") from exc
    height, width = pixels.shape[:2]
    return Picture(fmt, width, height, pixels)


def stated_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the image's header states them, decoding no pixel: what admission control
    (the model server's pixel budget) can know of an image before paying for it."""
    try:
        with PIL.Image.open(io.BytesIO(data), formats=READABLE_FORMATS) as image:
            return image.size
    except PIL.Image.DecompressionBombError as exc:
        raise RefusedImageError(str(exc)) from exc
    except DECODER_ERRORS as exc:
        raise UnreadableImageError(f"cannot read image: {_reason(exc)}") from exc


def decode(source: str | Path | bytes | io.BytesIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Any image this module reads, in any mode and orientation, as an upright uint8 RGB array.

    Alpha is composited onto white; 16-bit and float images are scaled to 8 bits; CMYK and
    palette images are converted; the EXIF orientation is applied; an animated image (GIF, APNG,
    WebP) gives its first frame.
    """
    return read_image(source, max_pixels=max_pixels).pixels


def examine(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> EncodedImage:
    """The bytes with their format and upright size, from decoding them: what is stored is known to decode."""
    picture = read_image(data, max_pixels=max_pixels)
    return EncodedImage(data, picture.format, picture.width, picture.height)


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG, written for speed: every row Up-filtered, deflated by ISA-L at level 2, equal bands of
    rows in parallel (as pigz does), since Pillow's adaptive filtering and one zlib stream take about a
    second at 12 MP. ISA-L's level 2 is 3.3 times as fast as zlib-ng's level 2, its files 2% larger
    (benchmarks/png.py); zlib-ng's level 1 is slower still and its files 30% larger, and colorizations are
    kept for ever.
    Any uint8 gray, gray+alpha, RGB or RGBA array; others go through Pillow."""
    pixels = np.ascontiguousarray(rgb)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or channels not in _PNG_COLOUR_TYPES or 0 in pixels.shape:
        buffer = io.BytesIO()
        PIL.Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * channels)
    band = _band_rows(height, rows.shape[1], _PNG_POOL.workers)
    tops = range(0, height, band)
    last = tops[-1]
    pieces = list(_PNG_POOL.map(lambda top: _deflate_band(rows, top, band, top == last), tops)) if len(tops) > 1 \
        else [_deflate_band(rows, 0, band, True)]
    adler = pieces[0][1]
    for _, piece_adler, length in pieces[1:]:
        adler = _adler32_combine(adler, piece_adler, length)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    idat = [_ZLIB_HEADER] + [data for data, _, _ in pieces] + [struct.pack(">I", adler)]
    return b"".join([_PNG_SIGNATURE, _png_chunk(b"IHDR", header), *(_png_chunk(b"IDAT", d) for d in idat),
                     _png_chunk(b"IEND", b"")])


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_PNG_BAND_BYTES = 1 << 20
_PNG_UP_FILTER = 2
_PNG_DEFLATE_LEVEL = 2
_ZLIB_HEADER = b"\x78\x5e"  # deflate, 32 KiB window, "fast" level
_PNG_POOL = ForkSafePool(max(1, min(4, os.cpu_count() or 1)), "png")  # ISA-L releases the GIL


def _band_rows(height: int, row_bytes: int, workers: int) -> int:
    """Rows per band: bands of at most about _PNG_BAND_BYTES, as many as a multiple of the workers and of
    equal size, since one short band left over would be deflated while the other workers wait."""
    bands = max(1, -(-height * row_bytes // _PNG_BAND_BYTES))
    if bands > 1:
        bands = -(-bands // workers) * workers
    return max(1, -(-height // bands))


def up_filtered(rows: np.ndarray, top: int = 0, band: int | None = None) -> np.ndarray:
    """Rows top..top+band of (height, bytes per row) pixels as PNG scanlines: each row's Up filter byte,
    then its difference from the row above (the row above the first is zeros)."""
    chunk = rows[top : None if band is None else top + band]
    filtered = np.empty((chunk.shape[0], chunk.shape[1] + 1), np.uint8)
    filtered[:, 0] = _PNG_UP_FILTER
    previous = rows[top - 1 : top] if top else np.zeros((1, chunk.shape[1]), np.uint8)
    np.subtract(chunk[:1], previous, out=filtered[:1, 1:])
    np.subtract(chunk[1:], chunk[:-1], out=filtered[1:, 1:])
    return filtered


def _deflate_band(rows: np.ndarray, top: int, band: int, last: bool) -> tuple[bytes, int, int]:
    """Rows top..top+band Up-filtered and raw-deflated: (deflate bytes, their Adler-32, filtered length).

    A band that is not the last ends with a sync flush, so the bands' outputs concatenate into
    one valid deflate stream."""
    filtered = up_filtered(rows, top, band)
    compressor = isal_zlib.compressobj(_PNG_DEFLATE_LEVEL, isal_zlib.DEFLATED, -15, 9)
    data = compressor.compress(filtered) + compressor.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH)
    return data, isal_zlib.adler32(filtered), filtered.size


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from theirs (zlib's adler32_combine)."""
    base = 65521
    remainder = second_length % base
    low = first & 0xFFFF
    high = (remainder * low) % base
    low = (low + (second & 0xFFFF) + base - 1) % base
    high = (high + (first >> 16) + (second >> 16) + base - remainder) % base
    return low | (high << 16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", isal_zlib.crc32(data, isal_zlib.crc32(kind)))


def png_image(rgb: np.ndarray) -> EncodedImage:
    """``encode_png(rgb)`` ready to store (its size is the array's: no need to decode it again)."""
    return EncodedImage(encode_png(rgb), "png", int(rgb.shape[1]), int(rgb.shape[0]))


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise RefusedImageError(f"{width}x{height} is over the limit of {max_pixels:,} pixels")
    if width == 0 or height == 0:
        raise UnreadableImageError("image has no pixels")


def _upright(image: PIL.Image.Image) -> PIL.Image.Image:
    try:
        PIL.ImageOps.exif_transpose(image, in_place=True)  # in place: an upright photo is not copied (36 MB at 12 MP)
        return image
    except DECODER_ERRORS as exc:
        # Pillow re-serialises the whole EXIF block when it rotates, and a damaged tag anywhere in
        # it raises. Viewers disagree on such files, so none of their pixels are guessed at.
        raise UnreadableImageError(f"cannot read image: its EXIF block is corrupt ({_reason(exc)})") from exc


def _to_rgb_array(image: PIL.Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        gray = np.clip(np.round(pixels / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PIL.Image.alpha_composite(background, rgba)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    # Pillow's own messages read well alone; a bare TypeError or struct.error needs its name.
    if isinstance(exc, (OSError, PIL.UnidentifiedImageError, SyntaxError)) and text:
        return text[:300]
    return f"{type(exc).__name__}: {text}"[:300]
