"""The headline score (eval.headline): what it rewards and punishes, and that it measures only the measured area."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

import skimage.color

from eval.headline import (
    LEVELS, STRUCTURE_C, WINDOW, WORKING_PIXELS, ChromaPyramid, _pooled_structure, headline_score, prepare_pyramid,
)
from eval.metrics import measure, prepare_reference
from tests.factories import gray_copy, sepia


def _photo() -> np.ndarray:
    return skimage.data.astronaut()[::2, ::2].copy()  # 256 × 256, strongly coloured


def _score(machine: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None) -> float:
    valid = np.ones(reference.shape[:2], bool) if valid is None else valid
    return measure(machine, prepare_reference(reference, valid))["score"]


def _with_chroma_of(lightness_from: np.ndarray, chroma_from: np.ndarray) -> np.ndarray:
    """An image with the L* of one image and the a* b* of another."""
    lab = cv2.cvtColor(lightness_from.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    lab[..., 1:] = cv2.cvtColor(chroma_from.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 1:]
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _chroma_shifted(photo: np.ndarray, share: float) -> np.ndarray:
    """The photo with its colour displaced sideways by ``share`` of its width: colour bleeding over edges."""
    shift = round(share * photo.shape[1])
    return _with_chroma_of(photo, np.roll(photo, shift, axis=1))


def test_the_reference_itself_scores_one():
    photo = _photo()
    assert _score(photo, photo) == pytest.approx(1.0, abs=1e-9)


def test_gray_and_sepia_score_far_below_a_faithful_colorization():
    photo = _photo()
    faithful = _with_chroma_of(photo, cv2.GaussianBlur(photo, (0, 0), 2))  # colour slightly soft, as models give
    assert _score(faithful, photo) > 0.9
    for washed_out in (gray_copy(photo), sepia(photo)):
        assert _score(washed_out, photo) < 0.7


def test_colour_bleeding_over_edges_scores_lower_the_further_it_bleeds():
    photo = _photo()
    scores = [_score(_chroma_shifted(photo, share), photo) for share in (0.01, 0.02, 0.03, 0.04)]
    assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 0.1, scores


def test_a_uniform_colour_cast_is_not_what_it_measures():
    # Documented: the score compares how colour varies, not its mean; ΔE2000 beside it shows a cast.
    photo = _photo()
    lab = cv2.cvtColor(photo.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    lab[..., 2] += 6.0
    cast = np.clip(np.round(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255), 0, 255).astype(np.uint8)
    metrics = measure(cast, prepare_reference(photo, np.ones(photo.shape[:2], bool)))
    assert metrics["score"] > 0.97 and metrics["delta_e_2000"] > 3


def test_pixels_outside_the_measured_area_do_not_count():
    photo = _photo()
    valid = np.zeros(photo.shape[:2], bool)
    valid[:, :200] = True
    machine = _chroma_shifted(photo, 0.02)
    scrambled = machine.copy()
    scrambled[:, 200:] = np.random.default_rng(0).integers(0, 256, scrambled[:, 200:].shape, dtype=np.uint8)
    assert _score(scrambled, photo, valid) == pytest.approx(_score(machine, photo, valid), abs=1e-12)


def test_it_judges_the_photo_as_seen_whole_whatever_its_resolution():
    photo, machine = _photo(), _chroma_shifted(_photo(), 0.02)
    big = lambda image: cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC)  # noqa: E731
    assert _score(big(machine), big(photo)) == pytest.approx(_score(machine, photo), abs=0.01)


def test_an_area_too_small_for_its_windows_has_no_score():
    photo = skimage.data.astronaut()  # 512 × 512
    valid = np.zeros(photo.shape[:2], bool)
    valid[100:150, 100:150] = True  # ~6 px at the coarsest levels: no 11 px window fits
    assert prepare_pyramid(photo, valid) is None
    assert math.isnan(_score(gray_copy(photo), photo, valid))


def _cs(m: np.ndarray, h: np.ndarray) -> float:
    """SSIM's contrast-structure term of one window, from its definition (population variances)."""
    covariance = np.mean(m * h) - m.mean() * h.mean()
    return (2 * covariance + STRUCTURE_C) / (m.var() + h.var() + STRUCTURE_C)


def _information(window: np.ndarray) -> float:
    return math.log1p(window.var() / STRUCTURE_C)


def _two_windows(left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray]) -> float:
    """The pooled structure of two side-by-side 11 × 11 windows (machine, reference), read at their centres."""
    machine, reference = np.hstack([left[0], right[0]]), np.hstack([left[1], right[1]])
    centres = np.zeros(machine.shape, bool)
    centres[WINDOW // 2, [WINDOW // 2, WINDOW + WINDOW // 2]] = True
    return _pooled_structure(machine, reference, centres)


def test_windows_are_pooled_by_their_information_content():
    rng = np.random.default_rng(0)
    quiet, busy = rng.normal(0, 10, (WINDOW, WINDOW)), rng.normal(0, 30, (WINDOW, WINDOW))
    left, right = (0.5 * quiet + 3, quiet), (-busy, busy)  # half the variation; the opposite variation
    weights = [_information(m) + _information(h) for m, h in (left, right)]
    expected = (weights[0] * _cs(*left) + weights[1] * _cs(*right)) / sum(weights)
    assert _two_windows(left, right) == pytest.approx(expected, rel=1e-9)
    assert -1 < _cs(*right) < -0.9 < 0.7 < _cs(*left) < 1  # the cases are what their names say


def test_slight_spurious_variation_on_a_flat_reference_is_weighted_too():
    # Weights well under 1 (variances of 1 and 4 against C ≈ 58.5) still weigh: only both-flat is "agree".
    rng = np.random.default_rng(1)
    flat = np.zeros((WINDOW, WINDOW))
    faint, slight = rng.normal(0, 1, flat.shape), rng.normal(0, 2, flat.shape)
    weights = [_information(faint), _information(slight)]
    assert sum(weights) < 0.2
    expected = (weights[0] * _cs(faint, flat) + weights[1] * _cs(slight, flat)) / sum(weights)
    assert _two_windows((faint, flat), (slight, flat)) == pytest.approx(expected, rel=1e-9)
    assert _two_windows((flat, flat), (flat + 5, flat)) == 1.0  # both flat (a mere cast): they agree


@pytest.mark.parametrize("rows, cols", [(768, 1024), (200, 300), (1000, 250)])
def test_the_pyramid_starts_near_the_working_size_with_the_photos_shape_and_halves(rows, cols):
    pyramid = prepare_pyramid(np.zeros((rows, cols, 3), np.uint8), np.ones((rows, cols), bool))
    (width, height), *halvings = pyramid.sizes
    assert width * height == pytest.approx(WORKING_PIXELS, rel=0.01)
    assert width / height == pytest.approx(cols / rows, rel=0.01)
    assert len(halvings) == max(LEVELS)
    for (w, h), (half_w, half_h) in zip(pyramid.sizes, halvings):
        assert (half_w, half_h) == (w // 2, h // 2)
    for level in LEVELS:
        assert pyramid.chroma[level].shape == (pyramid.sizes[level][1], pyramid.sizes[level][0], 2)
    if (rows, cols) == (768, 1024):
        assert pyramid.sizes == [(512, 384), (256, 192), (128, 96), (64, 48), (32, 24)]


def test_both_chroma_channels_count():
    photo = _photo()
    lab = cv2.cvtColor(photo.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    for channel in (1, 2):
        one_wrong = lab.copy()
        one_wrong[..., channel] = one_wrong[..., channel].mean()  # that channel flat, the other exact
        machine = np.clip(np.round(cv2.cvtColor(one_wrong, cv2.COLOR_LAB2RGB) * 255), 0, 255).astype(np.uint8)
        assert 0.3 < _score(machine, photo) < 0.75, channel  # about half: one of the two channels is lost


def _chroma_by_hand(photo: np.ndarray, sizes, working_interpolation: int) -> dict[int, np.ndarray]:
    """a* b* of each level the score uses, computed from the definition: CIE Lab of the photo (OpenCV's,
    which is within half a unit of scikit-image's) brought to the working copy, then halvings by area."""
    lab = cv2.cvtColor(photo.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 1:]
    assert np.abs(lab - skimage.color.rgb2lab(photo)[..., 1:]).max() < 0.5
    current = cv2.resize(lab, sizes[0], interpolation=working_interpolation)
    levels = {}
    for level in range(1, max(LEVELS) + 1):
        current = cv2.resize(current, sizes[level], interpolation=cv2.INTER_AREA)
        levels[level] = current
    return {level: levels[level] for level in LEVELS}


@pytest.mark.parametrize("rows, cols, interpolation", [
    (600, 400, cv2.INTER_AREA),  # more pixels than the working copy (and a tall one): averaged down
    (150, 200, cv2.INTER_LINEAR),  # fewer: enlarged bilinearly
    (300, 400, cv2.INTER_LINEAR),  # fewer, though more than its first halving holds
])
def test_the_levels_are_cie_chroma_of_the_working_copy_made_by_area_or_bilinearly(rows, cols, interpolation):
    photo = cv2.resize(_photo(), (cols, rows), interpolation=cv2.INTER_AREA)
    pyramid = prepare_pyramid(photo, np.ones((rows, cols), bool))
    expected = _chroma_by_hand(photo, pyramid.sizes, interpolation)
    for level in LEVELS:
        np.testing.assert_allclose(pyramid.chroma[level], expected[level], atol=1e-3)
        other = cv2.INTER_LINEAR if interpolation == cv2.INTER_AREA else cv2.INTER_AREA
        assert np.abs(pyramid.chroma[level] - _chroma_by_hand(photo, pyramid.sizes, other)[level]).max() > 0.05


def test_a_pyramid_whose_only_usable_level_is_the_coarsest_still_scores():
    photo = _photo()
    full = prepare_pyramid(photo, np.ones(photo.shape[:2], bool))
    coarsest = max(LEVELS)
    only_coarsest = ChromaPyramid(sizes=full.sizes, chroma={coarsest: full.chroma[coarsest]},
                                  centres={coarsest: full.centres[coarsest]})
    assert headline_score(photo, only_coarsest) == pytest.approx(1.0)
    assert headline_score(gray_copy(photo), only_coarsest) < 0.5


def test_only_centres_whose_whole_window_lies_inside_the_image_count():
    photo = _photo()
    pyramid = prepare_pyramid(photo, np.ones(photo.shape[:2], bool))
    half = WINDOW // 2
    for level in LEVELS:
        centres = pyramid.centres[level]
        expected = np.zeros_like(centres)
        expected[half:-half, half:-half] = True  # everything measured: only the image's edge limits them
        np.testing.assert_array_equal(centres, expected)
