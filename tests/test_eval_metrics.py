from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data

from skimage.color import deltaE_ciede2000, rgb2lab, rgb2xyz
from skimage.color.colorconv import xyz_from_rgb, yuv_from_rgb
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

import eval.metrics
from eval.ciede2000 import BLOCK, _ciede2000_block, ciede2000_planes
from eval.headline import headline_score, prepare_pyramid
from eval.metrics import (
    MAX_MEASURED_PIXELS,
    METRICS,
    PSNR_CAP_DB,
    all_metrics,
    auc_of_ab_errors,
    colorfulness,
    delta_e_2000,
    masked_ssim,
    measure,
    measuring_size,
    prepare_reference,
    psnr,
    rgb_to_lab,
    saturation_ratio,
    uv_distances,
)
from tests.factories import gray_copy

# Sharma, Wu and Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 ΔE00.
SHARMA_PAIRS = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]

RED, BLUE, MID_GRAY = (255, 0, 0), (0, 0, 255), (128, 128, 128)


def flat(colour: tuple[int, int, int], shape: tuple[int, int] = (16, 16)) -> np.ndarray:
    return np.full((*shape, 3), colour, np.uint8)


def everywhere(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape[:2], bool)


def test_sharma_table_is_complete():
    assert len(SHARMA_PAIRS) == 34


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row", SHARMA_PAIRS)
def test_ciede2000_matches_sharma(row, dtype):
    lab1, lab2, expected = np.array([row[:3]], dtype), np.array([row[3:6]], dtype), row[6]
    assert delta_e_2000(lab1, lab2)[0] == pytest.approx(expected, abs=1e-4)
    assert delta_e_2000(lab2, lab1)[0] == pytest.approx(expected, abs=1e-4)


def random_pixel_pairs(count: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Random 8-bit colours and nearby ones, with gray, black and exactly opposite-hue pixels among them."""
    rng = np.random.default_rng(7)
    first = rng.integers(0, 256, (count, 3)).astype(np.uint8)
    second = np.clip(first + rng.integers(-60, 61, (count, 3)), 0, 255).astype(np.uint8)
    first[:2000] = first[:2000, :1]  # gray against colour
    second[2000:4000] = 0
    second[4000:6000] = 255 - first[4000:6000]  # complementary colours
    return first, second


def test_ciede2000_in_float32_agrees_with_scikit_image_in_float64():
    first, second = random_pixel_pairs()
    lab1, lab2 = rgb_to_lab(first), rgb_to_lab(second)
    expected = deltaE_ciede2000(lab1.astype(np.float64), lab2.astype(np.float64))
    got = delta_e_2000(lab1, lab2)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    assert abs(float(got.mean(dtype=np.float64)) - float(expected.mean())) < 1e-6


def test_lab_of_random_pixels_agrees_with_scikit_image():
    pixels = np.concatenate(random_pixel_pairs())
    error = np.abs(rgb_to_lab(pixels) - rgb2lab(pixels[None])[0])
    assert error.max() < 2e-4  # the float32 cube root
    assert error.mean() < 2e-5


def test_uv_colourfulness_and_psnr_agree_with_float64_formulas():
    first, second = random_pixel_pairs()
    uv = (first.astype(float) / 255) @ yuv_from_rgb[1:].T - (second.astype(float) / 255) @ yuv_from_rgb[1:].T
    np.testing.assert_allclose(uv_distances(first, second), np.hypot(uv[:, 0], uv[:, 1]), atol=1e-6)
    rgb = first.astype(float)
    rg, yb = rgb[:, 0] - rgb[:, 1], 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    expected = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    assert colorfulness(first) == pytest.approx(expected, abs=1e-9)
    mse = np.mean((first.astype(float) - second) ** 2)
    assert psnr(first, second) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)


def test_uv_distance_of_gray_to_pure_red():
    # BT.601: pure red has U = -0.14714119, V = 0.61497538; mid gray has U = V = 0.
    distance = uv_distances(np.array([MID_GRAY], np.uint8), np.array([RED], np.uint8))
    assert distance[0] == pytest.approx(math.hypot(0.14714119, 0.61497538), abs=1e-6)


def test_uv_error_and_rmse_differ_as_mean_and_root_mean_square():
    machine = np.concatenate([flat(MID_GRAY), flat(MID_GRAY)], axis=1)
    human = np.concatenate([flat(MID_GRAY), flat(RED)], axis=1)
    values = all_metrics(machine, human, everywhere(machine))
    red_distance = math.hypot(0.14714119, 0.61497538)
    assert values["uv_error"] == pytest.approx(red_distance / 2, abs=1e-6)
    assert values["uv_rmse"] == pytest.approx(red_distance / math.sqrt(2), abs=1e-6)


def test_saturation_of_gray_against_red():
    values = all_metrics(flat(MID_GRAY), flat(RED), everywhere(flat(RED)))
    assert values["chroma_machine"] == pytest.approx(0, abs=0.01)  # D65 white is not exactly a = b = 0
    assert values["chroma_human"] == pytest.approx(math.hypot(80.092, 67.203), abs=0.01)  # Lab of sRGB red (D65)
    assert values["saturation_ratio"] == pytest.approx(0, abs=1e-4)
    assert values["near_gray_machine"] == 1.0
    assert values["near_gray_human"] == 0.0


def test_colourfulness_uses_signed_opponent_channels():
    half_red_half_blue = np.array([RED, BLUE], np.uint8)
    # rg = 255 | 0, yb = 127.5 | -255: σ = 127.5, 191.25; μ = 127.5, -63.75.
    expected = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, -63.75)
    assert colorfulness(half_red_half_blue) == pytest.approx(expected)
    assert colorfulness(np.array([MID_GRAY] * 4, np.uint8)) == 0.0


def test_colourfulness_of_astronaut_matches_hasler_susstrunk():
    assert colorfulness(skimage.data.astronaut().reshape(-1, 3)) == pytest.approx(72.61, abs=0.01)


def test_psnr_of_a_constant_offset():
    machine, human = np.full((4, 3), 110, np.uint8), np.full((4, 3), 100, np.uint8)
    assert psnr(machine, human) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(human, human) == PSNR_CAP_DB


def test_ssim_of_flat_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    machine, human = flat((110, 110, 110), (32, 32)), flat((100, 100, 100), (32, 32))
    # SSIM is filtered in float32: a flat window's variance comes out at about 1e-5, not 0.
    assert masked_ssim(machine, human, everywhere(machine)) == pytest.approx(expected, abs=1e-6)


def test_ssim_ignores_pixels_outside_the_mask():
    photo = skimage.data.astronaut()[:128, :128]
    damaged = photo.copy()
    damaged[:, 64:] = 0
    valid = np.zeros((128, 128), bool)
    valid[:, :50] = True
    assert masked_ssim(photo, damaged, valid) == pytest.approx(1.0)
    assert masked_ssim(photo, damaged, everywhere(photo)) < 0.8


def test_auc_of_perfect_and_hopeless_halves():
    assert auc_of_ab_errors(np.zeros(10)) == pytest.approx(1.0)
    assert auc_of_ab_errors(np.array([0.0, 200.0])) == pytest.approx(0.5)


def test_auc_of_a_constant_error_between_thresholds():
    # Within-share is 0 up to t = 30 and 1 from t = 31: area 0.5 + 119 over 150.
    assert auc_of_ab_errors(np.full(5, 30.5)) == pytest.approx(119.5 / 150)


def auc_by_sorting(errors: np.ndarray) -> float:
    """The AuC's definition as written: the share of errors at most each threshold, from the sorted errors."""
    thresholds = np.arange(151)
    within = np.searchsorted(np.sort(errors), thresholds, side="right") / len(errors)
    return float(np.trapezoid(within, thresholds) / 150)


@pytest.mark.parametrize("errors", [
    np.random.default_rng(3).gamma(2.0, 12.0, 50_000).astype(np.float32),  # as ab errors come, float32
    np.round(np.random.default_rng(4).uniform(0, 160, 5_000)),  # on the thresholds themselves
    np.nextafter(np.arange(151, dtype=np.float32), np.float32(200)),  # a float32 step past each
    np.array([0.0, -0.0, -2.5, 150.0, 150.00001, 1e9, np.inf, np.nan, 7.2], np.float32),
])
def test_auc_counts_what_the_sorted_errors_give(errors):
    assert auc_of_ab_errors(errors) == auc_by_sorting(errors)


def test_gray_baseline_against_astronaut_matches_published_figures():
    photo = skimage.data.astronaut()
    values = all_metrics(gray_copy(photo), photo, everywhere(photo))
    assert values["psnr"] == pytest.approx(17.8, abs=0.1)
    assert values["delta_e_2000"] == pytest.approx(11.5, abs=0.1)
    assert values["auc"] == pytest.approx(0.86, abs=0.01)
    assert 0.85 < values["ssim"] < 0.95


def test_only_valid_pixels_count():
    machine = np.concatenate([flat(RED), flat(BLUE)], axis=1)
    human = np.concatenate([flat(RED), flat(MID_GRAY)], axis=1)
    valid = np.zeros(machine.shape[:2], bool)
    valid[:, :16] = True
    values = all_metrics(machine, human, valid)
    assert values["uv_error"] == 0 and values["delta_e_2000"] == 0 and values["psnr"] == PSNR_CAP_DB


def test_every_metric_is_described():
    values = all_metrics(flat(RED), flat(BLUE), everywhere(flat(RED)))
    assert set(values) == set(METRICS)


def test_lab_agrees_with_scikit_image():
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    pixels = np.stack(np.meshgrid(levels, levels, levels), axis=-1).reshape(-1, 3)
    assert np.abs(rgb_to_lab(pixels) - rgb2lab(pixels[None])[0]).max() < 1e-3


def test_ssim_agrees_with_scikit_image():
    photo = skimage.data.astronaut()[100:228, 150:278]
    other = np.clip(photo.astype(int) + np.random.default_rng(0).integers(-40, 40, photo.shape), 0, 255)
    other = other.astype(np.uint8)
    _, ssim_map = structural_similarity(
        photo, other, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, full=True,
    )
    valid = np.ones(photo.shape[:2], bool)
    expected = ssim_map.mean(axis=-1)[5:-5, 5:-5].mean()
    assert masked_ssim(photo, other, valid) == pytest.approx(expected, abs=1e-7)  # filtered in float32


def test_shared_reference_gives_the_same_numbers():
    photo = skimage.data.astronaut()
    valid = np.ones(photo.shape[:2], bool)
    valid[:, :40] = False
    reference = prepare_reference(photo, valid)
    for machine in (gray_copy(photo), photo[::-1].copy()):
        assert measure(machine, reference) == all_metrics(machine, photo, valid)


def test_normal_sizes_are_not_resized():
    assert measuring_size((1000, 1000)) is None
    assert measuring_size((1200, 1600)) is None


def test_large_sizes_are_capped_keeping_the_aspect():
    width, height = measuring_size((3000, 4000))
    assert width * height <= MAX_MEASURED_PIXELS
    assert width * height > 0.99 * MAX_MEASURED_PIXELS
    assert width / height == pytest.approx(4000 / 3000, rel=1e-2)


def test_downscaled_measurement_keeps_per_pixel_means_and_leaves_the_border_out():
    """An aligned human image, black outside its valid area, measured on a quarter-size copy."""
    photo = skimage.data.astronaut()
    human = photo.copy()
    human[:, :101] = 0  # outside the warped colorization
    valid = np.ones(photo.shape[:2], bool)
    valid[:, :101] = False
    machine = gray_copy(photo)
    full = all_metrics(machine, human, valid)
    capped = all_metrics(machine, human, valid, max_pixels=photo.shape[0] * photo.shape[1] // 4)
    for name in ("uv_error", "chroma_human", "chroma_machine", "delta_e_2000", "colorfulness_human"):
        assert capped[name] == pytest.approx(full[name], rel=0.05), name
    same = all_metrics(photo, human, valid, max_pixels=photo.shape[0] * photo.shape[1] // 4)
    assert same["uv_error"] == 0 and same["psnr"] == PSNR_CAP_DB and same["ssim"] == pytest.approx(1.0)


def float64_metrics(machine: np.ndarray, human: np.ndarray, rows: slice, cols: slice) -> dict[str, float]:
    """Every per-pixel metric and SSIM of a rectangular valid area, by scikit-image and float64 formulas."""
    machine_pixels = machine[rows, cols].reshape(-1, 3)
    human_pixels = human[rows, cols].reshape(-1, 3)
    machine_lab, human_lab = rgb2lab(machine_pixels[None])[0], rgb2lab(human_pixels[None])[0]
    machine_chroma, human_chroma = np.hypot(*machine_lab[:, 1:].T), np.hypot(*human_lab[:, 1:].T)
    uv = (machine_pixels / 255.0 - human_pixels / 255.0) @ yuv_from_rgb[1:].T
    uv_distance = np.hypot(uv[:, 0], uv[:, 1])
    ab_errors = np.hypot(*(machine_lab[:, 1:] - human_lab[:, 1:]).T)
    within = [(ab_errors <= t).mean() for t in range(151)]
    mse = np.mean((machine_pixels.astype(float) - human_pixels) ** 2)

    def hasler(pixels):
        rgb = pixels.astype(float)
        rg, yb = rgb[:, 0] - rgb[:, 1], 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
        return math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())

    _, ssim_map = structural_similarity(
        machine[rows, cols], human[rows, cols], channel_axis=-1, data_range=255, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False, full=True,
    )
    return {
        "uv_error": uv_distance.mean(),
        "uv_rmse": math.sqrt(np.mean(uv_distance**2)),
        "chroma_machine": machine_chroma.mean(),
        "chroma_human": human_chroma.mean(),
        "saturation_ratio": machine_chroma.mean() / human_chroma.mean(),
        "near_gray_machine": (machine_chroma < 5).mean(),
        "near_gray_human": (human_chroma < 5).mean(),
        "colorfulness_machine": hasler(machine_pixels),
        "colorfulness_human": hasler(human_pixels),
        "colorfulness_gap": abs(hasler(machine_pixels) - hasler(human_pixels)),
        "delta_e_2000": deltaE_ciede2000(machine_lab, human_lab).mean(),
        "psnr": 10 * math.log10(255**2 / mse),
        "ssim": ssim_map.mean(axis=-1)[5:-5, 5:-5].mean(),
        "auc": np.trapezoid(within) / 150,
    }


def test_every_metric_of_a_masked_pair_agrees_with_float64_formulas():
    """A faded, tinted colorization against the photo, measured only inside a rectangle of the frame."""
    photo = skimage.data.astronaut()[100:260, 120:300]
    faded = (0.6 * photo + 0.4 * gray_copy(photo)).astype(np.uint8)
    machine = np.clip(faded.astype(int) + (12, -5, 20), 0, 255).astype(np.uint8)
    machine[:, :30] = photo[:, :30]  # part of the measured area coloured exactly right
    human = photo.copy()
    human[:20] = 255 - human[:20]  # outside the valid area: must not count
    rows, cols = slice(20, 150), slice(10, 170)
    valid = np.zeros(photo.shape[:2], bool)
    valid[rows, cols] = True
    expected = float64_metrics(machine, human, rows, cols)
    assert 0.05 < expected["near_gray_machine"] < 0.95 and expected["near_gray_machine"] != expected["near_gray_human"]
    values = all_metrics(machine, human, valid)
    assert list(values) == list(METRICS)
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    assert values["score"] == pytest.approx(headline_score(machine, prepare_pyramid(human, valid)))


def test_exactly_the_pixel_cap_is_not_resized_and_one_more_row_is():
    assert measuring_size((1000, 2000)) is None
    assert measuring_size((1001, 2000)) == (1999, 1000)


def test_a_frame_far_longer_than_the_cap_keeps_one_pixel_across():
    assert measuring_size((10, 1000), max_pixels=50) == (70, 1)
    assert measuring_size((1000, 10), max_pixels=50) == (1, 70)


def test_psnr_of_a_one_level_error_and_of_a_tiny_one():
    machine, human = np.full((4, 3), 101, np.uint8), np.full((4, 3), 100, np.uint8)
    assert psnr(machine, human) == pytest.approx(10 * math.log10(255**2), abs=1e-9)  # MSE exactly 1
    # One level off in one channel of 400 × 400 pixels: 105 dB, above the cap.
    machine = np.zeros((160_000, 3), np.uint8)
    human = machine.copy()
    human[0, 0] = 1
    assert psnr(machine, human) == PSNR_CAP_DB


def test_auc_counts_an_error_equal_to_a_threshold_as_within_it():
    # Within-share is 0 up to t = 29 and 1 from t = 30: area 0.5 + 120 over 150.
    assert auc_of_ab_errors(np.full(5, 30.0)) == pytest.approx(120.5 / 150)


def test_saturation_ratio_against_a_human_without_chroma_is_not_a_number():
    assert math.isnan(saturation_ratio(np.full(4, 3.0, np.float32), np.zeros(4, np.float32)))
    assert saturation_ratio(np.full(4, 3.0, np.float32), np.full(4, 0.5, np.float32)) == 6.0  # a nearly gray human


def test_an_empty_mask_or_a_wrong_size_is_refused():
    photo = flat(RED, (32, 32))
    with pytest.raises(ValueError, match="^no valid pixels to measure$"):
        all_metrics(photo, photo, np.zeros((32, 32), bool))
    valid = np.zeros((32, 32), bool)
    valid[::2, ::2] = True  # no 2 × 2 block of the half-size copy is wholly valid
    with pytest.raises(ValueError, match="^no valid pixels to measure after downscaling$"):
        all_metrics(photo, photo, valid, max_pixels=256)
    reference = prepare_reference(photo, everywhere(photo))
    with pytest.raises(ValueError, match=r"^colorization of size \(32, 31\) does not match the frame \(32, 32\)$"):
        measure(photo[:, :31], reference)


def test_ssim_needs_a_valid_area_of_seven_by_seven():
    photo = skimage.data.astronaut()[:64, :64]
    valid = np.zeros((64, 64), bool)
    valid[20:27, 30:37] = True
    assert masked_ssim(photo, photo, valid) == pytest.approx(1.0)
    valid[20] = False
    with pytest.raises(ValueError, match=r"^valid area too small for SSIM \(needs at least 7 × 7 pixels\)$"):
        masked_ssim(photo, photo, valid)


def test_ssim_of_a_small_valid_area_ignores_what_surrounds_it():
    """Too small for a whole window inside it, the area is measured as it is, its border reflected."""
    photo = skimage.data.astronaut()[:64, :64]
    other = 255 - photo
    valid = np.zeros((64, 64), bool)
    valid[20:30, 30:40] = True
    other[valid] = photo[valid]
    assert masked_ssim(photo, other, valid) == pytest.approx(1.0)
    assert masked_ssim(photo, other, everywhere(photo)) < 0.5


def test_srgb_curve_table_matches_scikit_image_linearisation():
    # The table is built once at import, so only a direct call shows what it holds.
    levels = np.arange(256, dtype=np.uint8)
    xyz = rgb2xyz(np.stack([levels] * 3, axis=-1)[None])[0]
    linear = (np.linalg.inv(xyz_from_rgb) @ xyz.T)[0]
    table = eval.metrics._srgb_to_linear()
    assert table.dtype == np.float32 and table.shape == (256,)
    np.testing.assert_allclose(table, linear, atol=1e-7)


def test_lab_of_an_image_keeps_its_shape():
    image = skimage.data.astronaut()[200:205, 300:307]  # 105 values: no other row length divides them
    lab = rgb_to_lab(image)
    assert lab.shape == (5, 7, 3)
    np.testing.assert_allclose(lab, rgb2lab(image), atol=2e-4)


def test_downscaled_copies_average_whole_blocks_and_keep_only_wholly_valid_ones():
    """Measured at a quarter of each side: a 4 × 4 block counts as its mean, and only when all of it is valid."""
    columns = np.arange(64)
    striped = flat(MID_GRAY, (64, 64))
    striped[:, columns % 4 == 0] = 255
    striped[:, columns % 4 != 0] = 0  # each block's mean: 63.75, stored as 64
    level = flat((64, 64, 64), (64, 64))
    cap = 64 * 64 // 16
    assert all_metrics(striped, level, everywhere(level), max_pixels=cap)["psnr"] == PSNR_CAP_DB
    assert all_metrics(level, striped, everywhere(level), max_pixels=cap)["psnr"] == PSNR_CAP_DB
    valid = everywhere(level)
    valid[:, (columns % 4 == 0) & (columns < 32)] = False  # left half: no block wholly valid
    human = level.copy()
    human[:, (columns % 4 == 1) & (columns < 32)] = 0
    assert all_metrics(level, human, valid, max_pixels=cap)["psnr"] == PSNR_CAP_DB
    assert all_metrics(level, human, valid)["psnr"] < 25  # the same pair at full size


def float64_ssim(machine: np.ndarray, human: np.ndarray) -> float:
    """Wang et al.'s mean SSIM over every pixel, scipy's Gaussian (σ 1.5, truncate 3.5, reflected borders)."""
    def blur(image):
        return gaussian_filter(image, sigma=(1.5, 1.5, 0), truncate=3.5, mode="reflect")

    x, y = machine.astype(float), human.astype(float)
    mean_x, mean_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mean_x**2, blur(y * y) - mean_y**2, blur(x * y) - mean_x * mean_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = (2 * mean_x * mean_y + c1) * (2 * cov + c2) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def test_ssim_of_an_area_too_small_for_a_whole_window_reflects_at_its_border():
    photo = skimage.data.astronaut()[100:164, 150:214]
    other = np.clip(photo.astype(int) + np.random.default_rng(1).integers(-40, 40, photo.shape), 0, 255)
    other = other.astype(np.uint8)
    valid = np.zeros((64, 64), bool)
    valid[20:29, 30:40] = True
    expected = float64_ssim(other[20:29, 30:40], photo[20:29, 30:40])
    assert masked_ssim(other, photo, valid) == pytest.approx(expected, abs=1e-6)


def test_ciede2000_in_blocks_is_bit_for_bit_one_pass_over_all_pixels():
    first, second = random_pixel_pairs()
    repeats = -(-(2 * BLOCK + 17) // len(first))  # more pixels than two blocks, not a multiple of one
    lab1, lab2 = (np.tile(rgb_to_lab(pixels), (repeats, 1)) for pixels in (first, second))
    planes1, planes2 = ([np.ascontiguousarray(lab[:, channel]) for channel in range(3)] for lab in (lab1, lab2))
    chroma1, chroma2 = (np.hypot(planes[1], planes[2]).astype(np.float32) for planes in (planes1, planes2))
    in_one_pass = _ciede2000_block(*planes1, chroma1, *planes2, chroma2)
    assert len(in_one_pass) > 2 * BLOCK
    np.testing.assert_array_equal(ciede2000_planes(*planes1, chroma1, *planes2, chroma2), in_one_pass)


def test_the_per_pixel_metrics_in_two_halves_are_bit_for_bit_one_pass(tmp_path):
    photo = skimage.data.astronaut()[:301, :389]  # a pixel count that is no multiple of anything
    valid = np.ones(photo.shape[:2], bool)
    valid[:, :7] = False
    machine = np.clip(photo.astype(int) + np.random.default_rng(2).integers(-30, 31, photo.shape), 0, 255).astype(np.uint8)
    reference = eval.metrics.prepare_reference(photo, valid)
    pixels = eval.metrics._gather(machine, reference.indices)
    one_pass = eval.metrics._per_pixel_arrays(pixels, reference, 0, len(pixels))
    measured = eval.metrics.measure(machine, reference)
    expected = eval.metrics._per_pixel_metrics(eval.metrics.colorfulness(pixels), reference, one_pass)
    assert {name: measured[name] for name in expected} == expected
    same = eval.metrics.measure(photo, reference)
    assert same["delta_e_2000"] == 0 and same["auc"] == 1 and same["uv_error"] == 0
