"""Training data from any folder tree of colour photos, desaturated on the fly.

Files are decoded with Pillow (so WebP, CMYK and EXIF-rotated JPEGs work), unreadable and
grayscale ones are skipped and counted, and every random choice is a stateless function of
(seed, epoch, position), so a run resumed after a kill sees exactly the batches it would have.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import tensorflow as tf

from colorizer.color import rgb_to_yuv
from colorizer.images import DECODER_ERRORS

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# The seed's data path shrank every photo to twice the crop size on decoding (``legacy_decode``).
LEGACY_DECODE_SIDE_FACTOR = 2
# BT.601 RGB to YUV, the matrix of tf.image.rgb_to_yuv, for numpy work outside the graph.
_RGB_TO_YUV = np.array([[0.299, 0.587, 0.114], [-0.14714119, -0.28886916, 0.43601035],
                        [0.61497538, -0.51496512, -0.10001026]], np.float32)
# A photo whose 95th-percentile chroma (|UV| on a thumbnail) is below this is treated as grayscale.
GRAYSCALE_CHROMA = 0.03


def find_images(root: str | Path) -> list[str]:
    """Every JPEG/PNG/WebP file below ``root``, in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass
class DecodeCounts:
    """Files seen while decoding, by outcome; shared by the decoding threads."""

    used: int = 0
    unreadable: int = 0
    grayscale: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"used": self.used, "unreadable": self.unreadable, "grayscale": self.grayscale}


def decode_side(size: int, min_crop_area: float, legacy: bool = False) -> int:
    """The short side photos are decoded at: the smallest crop (``min_crop_area`` of a square photo,
    at the narrowest aspect ratio the crops take, 3:4) is then still ``size`` wide, so nothing larger
    is ever needed. Photos smaller than this are not resized at all."""
    if legacy:
        return LEGACY_DECODE_SIDE_FACTOR * size
    return int(np.ceil(size / np.sqrt(min_crop_area * 3 / 4)))


def decode_photo(path: str, max_side: int, counts: DecodeCounts, check_gray: bool = True) -> np.ndarray | None:
    """An upright uint8 RGB array no larger than ``max_side`` on its short side, or None if unusable.

    ``check_gray=False`` skips the grayscale test for photos a pool scan (colorizer/pool.py) already passed.
    """
    try:
        with PIL.Image.open(path) as image:
            image = PIL.ImageOps.exif_transpose(image)
            image.draft("RGB", (max_side, max_side))  # JPEG decodes straight to a smaller scale
            grayscale_mode = image.mode in ("1", "L", "LA", "I", "I;16", "F")
            image = image.convert("RGB")
            scale = max_side / min(image.size)
            if scale < 1:
                image = image.resize(
                    (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                    PIL.Image.Resampling.BILINEAR,
                )
            pixels = np.asarray(image, dtype=np.uint8)
    except DECODER_ERRORS as exc:  # a corrupt file among thousands must not stop training
        log.warning("skipping unreadable %s: %s", path, exc)
        counts.add("unreadable")
        return None
    if grayscale_mode or (check_gray and is_grayscale(pixels)):
        counts.add("grayscale")
        return None
    counts.add("used")
    return pixels


def is_grayscale(rgb: np.ndarray) -> bool:
    """True if a photo has (almost) no chroma anywhere: it would teach the network nothing."""
    step = max(1, min(rgb.shape[:2]) // 64)
    uv = rgb_to_yuv_array(rgb[::step, ::step])[..., 1:]
    return float(np.percentile(np.hypot(uv[..., 0], uv[..., 1]), 95)) < GRAYSCALE_CHROMA


def rgb_to_yuv_array(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) to float32 YUV in numpy: inside tf.data's decoding threads an eager
    TensorFlow call per photo costs more than the arithmetic."""
    return (rgb.astype(np.float32) / 255.0) @ _RGB_TO_YUV.T


def _load(paths: list[str], max_side: int, counts: DecodeCounts, check_gray: bool = True):
    def load(index: np.int64) -> tuple[np.ndarray, bool]:
        pixels = decode_photo(paths[int(index)], max_side, counts, check_gray)
        if pixels is None:
            return np.zeros((1, 1, 3), np.uint8), False
        return pixels, True

    return _dataset_op(load)


def _dataset_op(load):
    """``load`` (a photo index to (pixels, decoded?) in numpy) as a tf.data map function."""
    def load_op(index, position):
        pixels, ok = tf.numpy_function(load, [index], (tf.uint8, tf.bool), stateful=False)
        pixels.set_shape([None, None, 3])
        ok.set_shape([])
        return pixels, ok, position

    return load_op


def split_yuv(rgb_float: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    yuv = rgb_to_yuv(rgb_float)
    return yuv[..., :1], yuv[..., 1:]


def training_dataset(
    paths: list[str],
    *,
    size: int,
    batch_size: int,
    seed: int,
    epoch: int,
    start: int,
    counts: DecodeCounts,
    min_crop_area: float = 0.25,
    check_gray: bool = True,
    legacy_decode: bool = False,
) -> tf.data.Dataset:
    """One epoch's batches of (Y, UV, position), beginning at ``start`` in the epoch's order.

    ``position`` is each example's place in the epoch's shuffled order; the trainer checkpoints
    the position after the last example it used, and a resumed run starts there.
    ``legacy_decode`` is the seed's data path (decoding at twice the crop size, the grayscale test
    through TensorFlow), kept for benchmarks/train_throughput.py's comparison.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(paths))
    positions = np.arange(start, len(paths), dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((order[start:].astype(np.int64), positions))
    max_side = decode_side(size, min_crop_area, legacy_decode)
    load = _legacy_load(paths, max_side, counts) if legacy_decode else _load(paths, max_side, counts, check_gray)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.filter(lambda pixels, ok, position: ok)

    def augment(pixels, ok, position):
        example_seed = tf.stack([tf.cast(seed * 1_000_003 + epoch, tf.int64), position])
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(pixels),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=example_seed,
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(min_crop_area, 1.0),
            use_image_if_no_bounding_boxes=True,
        )
        crop = tf.slice(pixels, begin, crop_size)
        crop = tf.image.resize(tf.cast(crop, tf.float32) / 255.0, (size, size), antialias=True)
        crop = tf.image.stateless_random_flip_left_right(crop, seed=example_seed + 1)
        y, uv = split_yuv(tf.clip_by_value(crop, 0.0, 1.0))
        return y, uv, position

    dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_dataset(paths: list[str], *, size: int, batch_size: int, counts: DecodeCounts) -> tf.data.Dataset:
    """Batches of (Y, UV): each photo's short side scaled to ``size``, centre-cropped square."""
    indices = np.arange(len(paths), dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((indices, indices))
    # Validation and calibration keep the seed's decode size, so their figures stay comparable.
    load = _load(paths, LEGACY_DECODE_SIDE_FACTOR * size, counts)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.filter(lambda pixels, ok, position: ok)

    def centre(pixels, ok, position):
        image = tf.cast(pixels, tf.float32) / 255.0
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scaled = tf.cast(tf.math.ceil(shape * size / tf.reduce_min(shape)), tf.int32)
        image = tf.image.resize(image, scaled, antialias=True)
        image = tf.image.resize_with_crop_or_pad(image, size, size)
        return split_yuv(tf.clip_by_value(image, 0.0, 1.0))

    dataset = dataset.map(centre, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _legacy_load(paths: list[str], max_side: int, counts: DecodeCounts):
    """The seed's decoding: the grayscale test converts through eager TensorFlow in every call."""
    def legacy_is_grayscale(rgb: np.ndarray) -> bool:
        step = max(1, min(rgb.shape[:2]) // 64)
        uv = rgb_to_yuv(rgb[::step, ::step].astype(np.float32) / 255.0).numpy()[..., 1:]
        return float(np.percentile(np.hypot(uv[..., 0], uv[..., 1]), 95)) < GRAYSCALE_CHROMA

    def load(index: np.int64) -> tuple[np.ndarray, bool]:
        outcome = DecodeCounts()
        pixels = decode_photo(paths[int(index)], max_side, outcome, check_gray=False)
        if pixels is not None and legacy_is_grayscale(pixels):
            pixels = None
            outcome = DecodeCounts(grayscale=1)
        counts.add(next(name for name, value in outcome.as_dict().items() if value))
        if pixels is None:
            return np.zeros((1, 1, 3), np.uint8), False
        return pixels, True

    return _dataset_op(load)
