"""eval.ecc gives what OpenCV's findTransformECC (MOTION_AFFINE, no mask, 5×5 Gaussian) gives."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from eval.ecc import EccError, find_transform_ecc

CRITERIA = cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT


def opencv_ecc(template, image, warp, max_iterations=50, epsilon=1e-5):
    _, refined = cv2.findTransformECC(template, image, np.array(warp, np.float32), cv2.MOTION_AFFINE,
                                      (CRITERIA, max_iterations, epsilon), None, 5)
    return refined


def astronaut_pair(rotation_deg: float, scale: float, shift: tuple[float, float]):
    """The astronaut's luminance as the template, and a rotated, scaled, shifted, cropped copy as the image,
    with the exact warp (template → image coordinates) and a start a little off it."""
    template = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    to_image = cv2.getRotationMatrix2D((256, 256), rotation_deg, scale)
    to_image[:, 2] += shift
    image = cv2.warpAffine(template, to_image, (460, 430), flags=cv2.INTER_CUBIC)
    start = to_image + np.array([[0.003, -0.004, 1.2], [0.002, 0.004, -0.9]])
    return template, image, start.astype(np.float32), to_image


@pytest.mark.parametrize("rotation_deg, scale, shift", [(2.0, 1.1, (-20.0, -30.0)), (-4.0, 0.8, (10.0, 5.0)),
                                                         (0.0, 1.0, (-3.0, 2.0))])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_the_refined_warp_is_opencvs(rotation_deg, scale, shift, dtype):
    template, image, start, truth = astronaut_pair(rotation_deg, scale, shift)
    template, image = template.astype(dtype), image.astype(dtype)
    ours = find_transform_ecc(template, image, start)
    np.testing.assert_allclose(ours, opencv_ecc(template, image, start), rtol=0, atol=1e-5)
    assert ours.dtype == np.float32 and ours.shape == (2, 3)
    assert np.abs(ours - truth).max() < np.abs(start - truth).max() / 2  # it refined


@pytest.mark.parametrize("iterations", [1, 2])
def test_the_iteration_limit_is_opencvs(iterations):
    template, image, start, _ = astronaut_pair(2.0, 1.1, (-20.0, -30.0))
    ours = find_transform_ecc(template, image, start, max_iterations=iterations, epsilon=1e-12)
    np.testing.assert_allclose(ours, opencv_ecc(template, image, start, iterations, 1e-12), rtol=0, atol=1e-5)
    assert not np.allclose(ours, find_transform_ecc(template, image, start))  # it stopped early


def test_the_start_is_not_changed():
    template, image, start, _ = astronaut_pair(2.0, 1.1, (-20.0, -30.0))
    kept = start.copy()
    find_transform_ecc(template, image, start)
    np.testing.assert_array_equal(start, kept)


def test_images_that_do_not_correlate_fail_where_opencv_does():
    rng = np.random.default_rng(7)
    template = rng.integers(0, 256, (200, 200), np.uint8)
    image = rng.integers(0, 256, (200, 200), np.uint8)
    start = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    with pytest.raises(cv2.error):
        opencv_ecc(template, image, start)
    with pytest.raises(EccError):
        find_transform_ecc(template, image, start)


@pytest.mark.parametrize("flat", ["template", "image"])
def test_a_flat_image_fails(flat):
    template, image, start, _ = astronaut_pair(2.0, 1.1, (-20.0, -30.0))
    if flat == "template":
        template = np.full_like(template, 128)
    else:
        image = np.full_like(image, 128)
    with pytest.raises(EccError):
        find_transform_ecc(template, image, start)


def test_a_warp_off_the_image_fails():
    template, image, _, _ = astronaut_pair(2.0, 1.1, (-20.0, -30.0))
    far_away = np.array([[1, 0, 5000], [0, 1, 5000]], np.float32)
    with pytest.raises(EccError):
        find_transform_ecc(template, image, far_away)
