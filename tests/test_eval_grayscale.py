from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.color import lab2rgb, rgb2lab

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
