"""The headline score (eval.headline): what it rewards and punishes, and that it measures only the measured area."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

from eval.headline import prepare_pyramid
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
