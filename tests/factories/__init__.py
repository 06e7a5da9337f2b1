"""The one place tests (and benchmarks) get synthetic photos, encoded image files and posts from.

``from tests.factories import color_scene, encoded, add_post, ...``; the submodules split them by
what they make: ``photos`` (uint8 arrays), ``images`` (encoded files), ``reddit`` (API and dump
objects), ``posts`` (rows in the database), ``bulk_posts`` (thousands of stored posts at once, for scale).
"""

from .images import (
    AWKWARD, ORIENTATION, ROTATE_TO_DISPLAY, SCENE, animation, composite_file, corrupt_exif_jpeg, encoded,
    exif_rotated_jpeg, flat_png, gray16_png, pair, png, rgb16_png, with_alpha,
)
from .photos import (
    CHROMA, LUMA_WEIGHTS, color_scene, cyanotype, faded, gradient_scene, gray_copy, luma, noise_photo, sepia,
    side_by_side, synthetic_photo, toned, with_noise, write_synthetic_folder,
)
from .bulk_posts import SyntheticPosts
from .posts import add_encoded_post, add_post
from .reddit import (
    filler_objects, gallery_post, image_post, new_comment, new_gallery, new_post, old_comment, old_post, t1, t3,
    write_dump,
)

__all__ = [
    "AWKWARD", "ORIENTATION", "ROTATE_TO_DISPLAY", "SCENE", "animation", "composite_file", "corrupt_exif_jpeg",
    "encoded", "exif_rotated_jpeg", "flat_png", "gray16_png", "pair", "png", "rgb16_png", "with_alpha",
    "CHROMA", "LUMA_WEIGHTS", "color_scene", "cyanotype", "faded", "gradient_scene", "gray_copy", "luma",
    "noise_photo", "sepia", "side_by_side", "synthetic_photo", "toned", "with_noise", "write_synthetic_folder",
    "SyntheticPosts", "add_encoded_post", "add_post",
    "filler_objects", "gallery_post", "image_post", "new_comment", "new_gallery", "new_post", "old_comment",
    "old_post", "t1", "t3", "write_dump",
]
