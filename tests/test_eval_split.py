from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from eval.split import NotACompositeError, _locate_seam, split_composite, trim_blank_borders
from tests.factories import color_scene, cyanotype, faded, gray_copy, sepia, side_by_side

WHITE, BLACK = 255, 0


def assert_seam_near(found: int, expected: int, length: int) -> None:
    assert abs(found - expected) <= 0.02 * length, f"seam at {found}, expected {expected} ± 2 %"


@pytest.fixture(scope="module", params=["astronaut", "coffee", "rocket"])
def photo(request) -> np.ndarray:
    return getattr(skimage.data, request.param)()


def test_gray_beside_colour_without_divider(photo):
    composite = side_by_side(gray_copy(photo), photo)
    split = split_composite(composite)
    assert split.orientation == "side-by-side"
    assert_seam_near(split.seam, photo.shape[1], composite.shape[1])
    assert split.original.shape == photo.shape
    assert np.array_equal(split.colorization, photo)


def test_colour_beside_sepia_with_white_divider_and_border(photo):
    composite = side_by_side(photo, sepia(photo), divider=20, border=15)
    split = split_composite(composite)
    assert_seam_near(split.seam, 15 + photo.shape[1] + 10, composite.shape[1])
    assert split.original.shape == photo.shape, "divider and border must be trimmed"
    assert np.array_equal(split.colorization, photo)


def test_black_divider_is_cut_out(photo):
    composite = side_by_side(cyanotype(photo), photo, divider=12, fill=BLACK)
    split = split_composite(composite)
    assert_seam_near(split.seam, photo.shape[1] + 6, composite.shape[1])
    assert split.colorization.shape == photo.shape


def test_over_under(photo):
    composite = np.concatenate([gray_copy(photo), photo], axis=0)
    split = split_composite(composite)
    assert split.orientation == "over-under"
    assert_seam_near(split.seam, photo.shape[0], composite.shape[0])


def test_unequal_halves(photo):
    """The original posted smaller than the colorization, padded to the same height."""
    height, width = photo.shape[:2]
    small = cv2.resize(gray_copy(photo), (round(width * 0.6), round(height * 0.6)), interpolation=cv2.INTER_AREA)
    top = (height - small.shape[0]) // 2
    padded = np.pad(small, ((top, height - small.shape[0] - top), (0, 0), (0, 0)), constant_values=WHITE)
    composite = side_by_side(padded, photo)
    split = split_composite(composite)
    assert_seam_near(split.seam, small.shape[1], composite.shape[1])
    assert split.original.shape == small.shape


@pytest.mark.parametrize("make_single", [lambda p: p, gray_copy, sepia, faded], ids=["colour", "gray", "sepia", "faded"])
def test_single_photos_are_refused(photo, make_single):
    with pytest.raises(NotACompositeError):
        split_composite(make_single(photo))


def test_two_different_pictures_are_refused():
    astronaut, coffee = skimage.data.astronaut(), skimage.data.coffee()
    composite = side_by_side(gray_copy(coffee)[:, :512], cv2.resize(astronaut, (512, 400)))
    with pytest.raises(NotACompositeError, match="different pictures"):
        split_composite(composite)


def test_refusal_says_why():
    with pytest.raises(NotACompositeError, match="no gray half"):
        split_composite(skimage.data.astronaut())


@pytest.mark.parametrize("seed", [9, 19])
def test_plain_photo_with_blank_sky_is_refused_not_crashed(seed):
    with pytest.raises(NotACompositeError):
        split_composite(color_scene(seed))


def test_blank_run_reaching_the_edge_is_not_a_divider():
    """A plain area running into the edge is part of a picture: cutting there leaves nothing."""
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (60, 200)).astype(np.uint8)
    gray[:, :50] = 128  # blank from the left edge to column 50, across the searched columns
    first_end, second_start = _locate_seam(gray, 40, 60, 45.0)
    assert 40 <= first_end <= second_start <= 60


def test_trim_blank_borders_of_an_empty_image():
    empty = np.zeros((0, 5, 3), np.uint8)
    assert trim_blank_borders(empty).shape == (0, 5, 3)
