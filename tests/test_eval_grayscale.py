from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.color import lab2rgb, rgb2lab

from eval import grayscale
from eval.grayscale import ANALYSIS_SIDE, Tone, analysis_lab, classify_tone
from tests.factories import cyanotype, faded, gray_copy, sepia, with_noise

PHOTOS = ["astronaut", "coffee", "rocket"]


@pytest.fixture(scope="module", params=PHOTOS)
def photo(request) -> np.ndarray:
    return getattr(skimage.data, request.param)()


def test_gray_photo_is_gray(photo):
    assert classify_tone(gray_copy(photo)) is Tone.GRAY


def test_single_channel_photo_is_gray(photo):
    assert classify_tone(gray_copy(photo)[..., 0]) is Tone.GRAY


def test_noisy_gray_scan_is_gray(photo):
    assert classify_tone(with_noise(gray_copy(photo), sigma=8)) is Tone.GRAY


def test_sepia_is_tinted(photo):
    assert classify_tone(sepia(photo)) is Tone.TINTED


def test_cyanotype_is_tinted(photo):
    assert classify_tone(cyanotype(photo)) is Tone.TINTED


def test_colour_photo_is_colour(photo):
    assert classify_tone(photo) is Tone.COLOR


def test_faded_colour_photo_is_still_colour():
    assert classify_tone(faded(skimage.data.astronaut())) is Tone.COLOR


def test_alpha_channel_is_ignored():
    rgba = np.dstack([sepia(skimage.data.coffee()), np.full((400, 600), 255, np.uint8)])
    assert classify_tone(rgba) is Tone.TINTED


def test_large_photo_is_classified_on_a_small_copy():
    big = np.kron(skimage.data.chelsea(), np.ones((8, 8, 1), np.uint8))  # 2400 × 3608
    assert classify_tone(big) is Tone.COLOR
    assert classify_tone(gray_copy(big)) is Tone.GRAY


def test_float_images_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        classify_tone(skimage.data.astronaut() / 255.0)


def _uniformly_tinted(rgb: np.ndarray, a_star: float) -> np.ndarray:
    """The photo's gray copy with Lab a* set to ``a_star`` everywhere: chroma of about ``a_star``."""
    lab = rgb2lab(gray_copy(rgb))
    lab[..., 1] = a_star
    return np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


def test_the_gray_limit_sits_between_a_faint_and_a_slight_tint():
    # GRAY_MAX_CHROMA is 5: a tint of chroma 4.5 is still a gray photo, one of 5.5 is a tinted print.
    photo = skimage.data.astronaut()[::2, ::2]
    assert classify_tone(_uniformly_tinted(photo, 4.5)) is Tone.GRAY
    assert classify_tone(_uniformly_tinted(photo, 5.5)) is Tone.TINTED


def test_the_analysis_copy_is_shrunk_to_its_side_and_never_enlarged():
    big = np.kron(skimage.data.chelsea(), np.ones((4, 4, 1), np.uint8))  # 1200 × 1804
    assert max(analysis_lab(big).shape[:2]) == ANALYSIS_SIDE
    small = skimage.data.astronaut()[:200, :180]
    assert analysis_lab(small).shape == small.shape


def _lab(lightness, a_star, b_star) -> np.ndarray:
    """A one-row Lab image from per-pixel L*, a* and b* values."""
    return np.stack(np.broadcast_arrays(*(np.asarray(v, float) for v in (lightness, a_star, b_star))), -1)[None]


def test_the_chroma_percentile_is_the_95th_percentile_of_the_chroma():
    # a* = 3, b* = 4 is chroma 5 exactly; 0..100 in a* alone has 95 as its 95th percentile.
    assert grayscale.chroma_percentile(_lab(50, np.full(10, 3.0), 4)) == 5.0
    assert grayscale.chroma_percentile(_lab(50, np.arange(101.0), 0)) == pytest.approx(95.0)


def test_a_colour_that_varies_at_one_brightness_is_left_whole_by_the_band_means():
    # One band (L* 51 and 53 are both in [50, 55)) whose (a*, b*) alternate ±(3, 4): the band's mean is 0,
    # so the residual is the chroma itself, 5, at every pixel; in a* alone it is |a*|.
    signs = np.tile([1.0, -1.0], 10)
    lightness = np.tile([51.0, 53.0], 10)
    assert grayscale.residual_chroma_percentile(_lab(lightness, 3 * signs, 4 * signs)) == pytest.approx(5.0)
    assert grayscale.residual_chroma_percentile(_lab(lightness, 7 * signs, 0)) == pytest.approx(7.0)


def test_a_tint_that_changes_with_brightness_leaves_no_residual_even_in_a_one_pixel_band():
    # Nine pixels of neutral shadow and one bright pixel of chroma 50 alone in its band: one tint per
    # brightness, so nothing is left once each band's own mean is removed.
    lab = _lab(np.r_[np.full(9, 20.0), 80.0], np.r_[np.zeros(9), 30.0], np.r_[np.zeros(9), 40.0])
    assert grayscale.residual_chroma_percentile(lab) == pytest.approx(0.0, abs=1e-9)


def test_the_limits_are_strict(monkeypatch):
    # Chroma and residual of exactly 5 cannot be made from 8-bit pixels, so the Lab copy is given directly:
    # "below GRAY_MAX_CHROMA" is gray, and a residual of exactly TINT_MAX_RESIDUAL_CHROMA is colour.
    assert grayscale.GRAY_MAX_CHROMA == grayscale.TINT_MAX_RESIDUAL_CHROMA == 5.0
    signs = np.tile([1.0, -1.0], 10)
    one_tint_of_chroma_5 = _lab(50, np.full(20, 3.0), 4)
    two_hues_of_chroma_5 = _lab(50, 3 * signs, 4 * signs)
    photo = np.zeros((1, 20, 3), np.uint8)
    monkeypatch.setattr(grayscale, "analysis_lab", lambda rgb: one_tint_of_chroma_5)
    assert classify_tone(photo) is Tone.TINTED
    monkeypatch.setattr(grayscale, "analysis_lab", lambda rgb: two_hues_of_chroma_5)
    assert classify_tone(photo) is Tone.COLOR


def _sepia_with_split_hue(spread: float, size: int = 200) -> np.ndarray:
    """A sepia-like gradient (L* 25..85 down the rows, b* 15) whose left half has a* = 5 + ``spread`` and
    right half 5 − ``spread``: each brightness band's mean a* is 5, so the residual chroma is ``spread``."""
    lab = np.empty((size, size, 3))
    lab[..., 0] = np.linspace(25, 85, size)[:, None]
    lab[..., 1] = np.where(np.arange(size) < size // 2, 5 + spread, 5 - spread)
    lab[..., 2] = 15
    return np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


def test_the_tint_limit_sits_between_a_slight_and_a_clear_hue_difference():
    # TINT_MAX_RESIDUAL_CHROMA is 5: halves ±4 apart in a* are still one tint, ±6 apart are two colours.
    assert classify_tone(_sepia_with_split_hue(4.0)) is Tone.TINTED
    assert classify_tone(_sepia_with_split_hue(6.0)) is Tone.COLOR


def test_the_analysis_copy_averages_every_pixel_when_it_shrinks():
    # Every fourth column (120, 180, 150) among (160, 140, 150): each 4-pixel block averages to (150, 150, 150),
    # so an area-averaged copy is gray; a copy sampling pixels (bilinear, nearest) would see the pinkish gray.
    stripes = np.empty((1024, 1024, 3), np.uint8)
    stripes[:] = (160, 140, 150)
    stripes[:, ::4] = (120, 180, 150)
    assert classify_tone(stripes) is Tone.GRAY


def test_the_chroma_smoothing_is_a_round_gaussian_of_one_pixel():
    # One coloured pixel in a gray field: a Gaussian of σ = 1 keeps 1 / (2π σ²) of it at the centre and
    # spreads the rest the same way along rows and columns.
    field = np.full((64, 64, 3), 128, np.uint8)
    field[32, 32] = (200, 100, 128)
    lone_a = rgb2lab(field[32:33, 32:33])[0, 0, 1]
    smoothed_a = analysis_lab(field)[..., 1]
    assert smoothed_a[32, 32] == pytest.approx(lone_a / (2 * np.pi), rel=0.01)
    assert smoothed_a[32, 33] == pytest.approx(smoothed_a[33, 32], rel=1e-6)
    assert smoothed_a[32, 33] == pytest.approx(lone_a * np.exp(-0.5) / (2 * np.pi), rel=0.01)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 2), (8, 8, 5)])
def test_anything_but_rgb_or_rgba_is_refused_with_its_shape(shape):
    with pytest.raises(ValueError, match=rf"RGB image, got shape \({shape[0]}, {shape[1]}"):
        analysis_lab(np.zeros(shape, np.uint8))
