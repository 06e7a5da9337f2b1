from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.color import hsv2rgb, rgb2hsv

import eval.align as eval_align
from eval.align import (
    EDGE_EROSION_PX,
    FOOTPRINT_MARGIN_PX,
    METHOD_FEATURES,
    METHOD_REFINED,
    AlignmentResult,
    _correlation,
    _footprint_box,
    _ratio_test_matches,
    _refine_ecc,
    _shrink,
    align,
    refusal_reasons,
    transform_rotation_deg,
    transform_scale,
    warp_into,
)
from eval.metrics import all_metrics
from eval.settings import EvalSettings
from tests.factories import gray_copy


def similarity(scale: float, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])


def human_version(photo: np.ndarray, scale: float, degrees: float, crop: float = 0.0):
    """The photo rotated and rescaled onto a canvas that holds it, then cropped by ``crop`` per side.

    Returns the image and the true transform from original to human pixel coordinates.
    """
    height, width = photo.shape[:2]
    transform = similarity(scale, degrees)
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], float) @ transform[:, :2].T
    transform[:, 2] = -corners.min(axis=0)
    size = np.ceil(corners.max(axis=0) - corners.min(axis=0)).astype(int)
    human = cv2.warpAffine(photo, transform, tuple(int(v) for v in size), flags=cv2.INTER_LINEAR)
    if crop:
        margin = int(crop * size.min())
        human = human[margin:-margin, margin:-margin]
        transform[:, 2] -= margin
    return human, transform


def worst_error_px(estimated: np.ndarray, true_original_to_human: np.ndarray, human: np.ndarray) -> float:
    """Largest distance, over a grid on the human image, between estimated and true positions."""
    truth = cv2.invertAffineTransform(true_original_to_human)
    height, width = human.shape[:2]
    grid = np.array([[x, y] for x in np.linspace(0, width - 1, 7) for y in np.linspace(0, height - 1, 7)])
    mapped = grid @ estimated[:, :2].T + estimated[:, 2]
    expected = grid @ truth[:, :2].T + truth[:, 2]
    return float(np.linalg.norm(mapped - expected, axis=1).max())


def change_contrast(rgb: np.ndarray) -> np.ndarray:
    """A colourist's re-grade: lower contrast, lifted blacks, a gamma curve."""
    graded = 255 * (0.15 + 0.7 * (rgb / 255.0) ** 0.8)
    return np.clip(np.round(graded), 0, 255).astype(np.uint8)


def shift_hue(rgb: np.ndarray, turn: float) -> np.ndarray:
    hsv = rgb2hsv(rgb)
    hsv[..., 0] = (hsv[..., 0] + turn) % 1.0
    return np.round(hsv2rgb(hsv) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.mark.parametrize(
    ("scale", "degrees", "crop"),
    [(1.0, 0.0, 0.0), (0.5, 8.0, 0.0), (2.0, -8.0, 0.0), (1.37, 1.5, 0.1), (0.7, -5.0, 0.15)],
)
def test_recovers_known_similarity(astronaut, scale, degrees, crop):
    human, truth = human_version(astronaut, scale, degrees, crop)
    result = align(gray_copy(astronaut), human)
    assert result.accepted, result.reason
    assert worst_error_px(result.transform, truth, human) <= 1.0
    assert result.scale == pytest.approx(1 / scale, rel=0.01)
    assert result.rotation_deg == pytest.approx(-degrees, abs=0.2)


@pytest.mark.parametrize("edit", [change_contrast, lambda rgb: shift_hue(rgb, 0.4)], ids=["contrast", "hue"])
def test_recovers_transform_of_regraded_colorization(astronaut, edit):
    human, truth = human_version(edit(astronaut), 1.2, 3.0, crop=0.05)
    result = align(gray_copy(astronaut), human)
    assert result.accepted, result.reason
    assert worst_error_px(result.transform, truth, human) <= 1.0


def test_warped_colorization_matches_original_where_valid(astronaut):
    human, _ = human_version(astronaut, 1.5, 4.0, crop=0.1)
    result = align(gray_copy(astronaut), human)
    assert result.warped.shape == astronaut.shape
    assert result.valid.mean() == pytest.approx(result.overlap)
    assert 0.5 < result.overlap < 0.95
    difference = np.abs(result.warped.astype(int) - astronaut.astype(int))[result.valid]
    assert np.median(difference) <= 3
    assert not result.valid[0, 0], "the cropped-away corner is not covered"


@pytest.mark.parametrize(("original", "other"), [("astronaut", "coffee"), ("rocket", "chelsea"), ("coffee", "camera")])
def test_unrelated_pairs_are_refused(original, other):
    other_image = getattr(skimage.data, other)()
    if other_image.ndim == 2:
        other_image = np.repeat(other_image[..., None], 3, axis=2)
    result = align(gray_copy(getattr(skimage.data, original)()), other_image)
    assert not result.accepted
    assert result.reason
    assert result.warped is None and result.valid is None


def test_refusal_names_each_broken_rule(astronaut):
    human, _ = human_version(astronaut, 1.0, 0.0)
    result = align(gray_copy(astronaut), human, EvalSettings(min_inliers=100_000, min_correlation=1.0))
    assert not result.accepted
    inliers, correlation = result.reason.split("; ")
    assert inliers.endswith("RANSAC inliers (needs ≥ 100000)")
    assert correlation.startswith("luminance correlation") and correlation.endswith("(needs ≥ 1.0)")


def test_large_images_are_matched_on_small_copies(astronaut):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    human, truth = human_version(big, 0.8, 2.0, crop=0.05)
    result = align(gray_copy(big), human, EvalSettings(match_max_side=512))
    assert result.accepted, result.reason
    assert worst_error_px(result.transform, truth, human) <= 3.0  # 1 px of a copy a third the size


def test_transform_record_rounds_and_names_the_direction():
    transform = similarity(1.23456789, 3.3333333)
    transform[:, 2] = (10.123456789123, -4.5)
    record = AlignmentResult(accepted=True, transform=transform).transform_record()
    assert record == {
        "matrix": np.round(transform, 8).tolist(),
        "maps": "colorization pixel (x, y) -> original pixel (x, y)",
        "scale": 1.234568,
        "rotation_deg": 3.333333,
    }
    assert record["matrix"][0][2] == 10.12345679
    assert AlignmentResult(accepted=False, reason="refused").transform_record() is None


def test_transform_record_is_json_ready(astronaut):
    human, _ = human_version(astronaut, 0.9, 2.0)
    record = align(gray_copy(astronaut), human).transform_record()
    assert record["scale"] == pytest.approx(1 / 0.9, rel=0.01)
    assert record["rotation_deg"] == pytest.approx(-2.0, abs=0.2)
    assert np.asarray(record["matrix"]).shape == (2, 3)


def test_scale_and_rotation_of_a_matrix():
    matrix = similarity(2.0, 30.0)
    assert transform_scale(matrix) == pytest.approx(2.0)
    assert transform_rotation_deg(matrix) == pytest.approx(30.0)


def test_large_pair_aligned_and_measured_on_capped_copies(astronaut):
    """Both size caps at once: features matched on ≤ 512 px copies, metrics on ≤ 0.3 MP copies."""
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    human, _ = human_version(big, 1.3, 4.0, crop=0.05)
    result = align(gray_copy(big), human, EvalSettings(match_max_side=512))
    assert result.accepted, result.reason
    perfect = all_metrics(big, result.warped, result.valid, max_pixels=300_000)
    gray = all_metrics(gray_copy(big), result.warped, result.valid, max_pixels=300_000)
    assert perfect["delta_e_2000"] < 1.0 and perfect["ssim"] > 0.98
    assert gray["delta_e_2000"] > 5 * perfect["delta_e_2000"]
    assert perfect["chroma_human"] == pytest.approx(perfect["chroma_machine"], rel=0.02)


def _registration(settings: EvalSettings, **overrides) -> AlignmentResult:
    """A registration sitting exactly on every acceptance limit of ``settings`` but scale and rotation."""
    values = dict(
        inliers=settings.min_inliers, inlier_ratio=settings.min_inlier_ratio,
        median_residual=settings.max_median_residual_px, overlap=settings.min_overlap,
        correlation=settings.min_correlation, transform=similarity(1.0, 0.0),
    )
    values.update(overrides)
    return AlignmentResult(accepted=True, **values)


def test_every_acceptance_limit_is_inclusive():
    settings = EvalSettings()
    limits = [similarity(settings.min_scale, 0.0), similarity(settings.max_scale, 0.0),
              similarity(1.0, settings.max_rotation_deg), similarity(1.0, -settings.max_rotation_deg)]
    for transform in [similarity(1.0, 0.0), *limits]:
        assert refusal_reasons(_registration(settings, transform=transform), settings) == []


@pytest.mark.parametrize(
    ("field", "past_limit", "named"),
    [
        ("inliers", lambda s: s.min_inliers - 1, "RANSAC inliers"),
        ("inlier_ratio", lambda s: s.min_inlier_ratio - 1e-6, "inlier ratio"),
        ("median_residual", lambda s: s.max_median_residual_px + 1e-6, "median residual"),
        ("overlap", lambda s: s.min_overlap - 1e-6, "overlap"),
        ("correlation", lambda s: s.min_correlation - 1e-6, "luminance correlation"),
        ("transform", lambda s: similarity(s.min_scale * 0.999, 0.0), "scale"),
        ("transform", lambda s: similarity(s.max_scale * 1.001, 0.0), "scale"),
        ("transform", lambda s: similarity(1.0, s.max_rotation_deg + 0.01), "rotation"),
        ("transform", lambda s: similarity(1.0, -s.max_rotation_deg - 0.01), "rotation"),  # the sign counts both ways
    ],
)
def test_a_registration_just_past_one_limit_is_refused_for_that_rule_alone(field, past_limit, named):
    settings = EvalSettings()
    reasons = refusal_reasons(_registration(settings, **{field: past_limit(settings)}), settings)
    assert len(reasons) == 1 and named in reasons[0], reasons


def astronaut_features() -> tuple[np.ndarray, np.ndarray]:
    """SIFT descriptors of the astronaut's luminance and of a rotated, rescaled copy of it."""
    gray = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    turned, _ = human_version(gray, 0.9, 5.0, crop=0.05)
    sift = cv2.SIFT_create()
    return sift.detectAndCompute(turned, None)[1], sift.detectAndCompute(gray, None)[1]


def test_ratio_test_matches_are_opencvs_brute_force_matches():
    source, target = astronaut_features()
    ratio = EvalSettings().lowe_ratio
    expected = [
        (pair[0].queryIdx, pair[0].trainIdx)
        for pair in cv2.BFMatcher(cv2.NORM_L2).knnMatch(source, target, k=2)
        if pair[0].distance < ratio * pair[1].distance
    ]
    source_indices, target_indices = _ratio_test_matches(source, target, ratio)
    assert len(expected) > 100
    assert list(zip(source_indices.tolist(), target_indices.tolist())) == expected


def test_ratio_test_matches_in_blocks_are_the_same(monkeypatch):
    source, target = astronaut_features()
    whole = _ratio_test_matches(source, target, 0.75)
    monkeypatch.setattr(eval_align, "MATCH_ROWS_PER_BLOCK", 97)
    for expected, got in zip(whole, _ratio_test_matches(source, target, 0.75)):
        np.testing.assert_array_equal(got, expected)


def test_correlation_is_pearsons_over_the_covered_pixels():
    original = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    colorization = original[40:400, 60:470]
    transform = np.array([[0.98, -0.03, 70.0], [0.03, 0.98, 35.0]])
    warped, valid = warp_into(colorization, transform, original.shape)
    expected = np.corrcoef(original[valid].astype(float), warped[valid].astype(float))[0, 1]
    # Warping into the cropped frame moves the warp's 1/32-pixel interpolation grid by rounding only.
    assert _correlation(original, colorization, transform) == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope="module")
def pair_above_the_ecc_start():
    """A 900-pixel original and its rotated, rescaled, cropped colour version (both above 640 px)."""
    photo = cv2.resize(skimage.data.astronaut(), (900, 900), interpolation=cv2.INTER_CUBIC)
    human, _ = human_version(photo, 1.1, 2.0, crop=0.05)
    return gray_copy(photo), human


def feature_copy_sides(monkeypatch) -> list[int]:
    """The longest side of the copies each SIFT matching in ``align`` runs on, as they come."""
    sides, match = [], eval_align._match_features

    def counting(source, target, ratio):
        sides.append(max(*source.shape, *target.shape))
        return match(source, target, ratio)

    monkeypatch.setattr(eval_align, "_match_features", counting)
    return sides


def test_ecc_starts_from_features_of_smaller_copies(monkeypatch, pair_above_the_ecc_start):
    """SIFT runs once, on the ECC-start copies, and ECC lands where it does from the usual copies' features."""
    original, human = pair_above_the_ecc_start
    usual = align(original, human, EvalSettings(ecc_start_max_side=640))
    sides = feature_copy_sides(monkeypatch)
    quick = align(original, human)
    assert sides == [512]
    assert quick.accepted and quick.method == usual.method == METHOD_REFINED
    assert quick.inliers < usual.inliers  # the features did come from the smaller copies
    np.testing.assert_allclose(quick.transform, usual.transform, atol=1e-3)
    usual_metrics = all_metrics(original, usual.warped, usual.valid)
    for name, value in all_metrics(original, quick.warped, quick.valid).items():
        assert value == pytest.approx(usual_metrics[name], abs=1e-4), name


def test_features_are_found_again_where_ecc_is_not_kept(monkeypatch, pair_above_the_ecc_start):
    """Without ECC's refinement the features' estimate is the result: it comes from the usual copies, as before."""
    monkeypatch.setattr(eval_align, "_refine_ecc", lambda *_: None)
    original, human = pair_above_the_ecc_start
    before = align(original, human, EvalSettings(ecc_start_max_side=640))
    sides = feature_copy_sides(monkeypatch)
    result = align(original, human)
    assert sides == [512, 640]
    assert result.method == METHOD_FEATURES
    np.testing.assert_array_equal(result.transform, before.transform)
    assert (result.inliers, result.median_residual) == (before.inliers, before.median_residual)


def test_a_pair_refused_from_the_ecc_start_is_tried_on_the_usual_copies(monkeypatch, pair_above_the_ecc_start):
    original, human = pair_above_the_ecc_start
    usual = align(original, human, EvalSettings(ecc_start_max_side=640))
    quick = align(original, human)
    needed = (quick.inliers + usual.inliers) // 2  # more than the smaller copies give
    sides = feature_copy_sides(monkeypatch)
    result = align(original, human, EvalSettings(min_inliers=needed))
    assert sides == [512, 640]
    assert result.accepted, result.reason
    assert result.inliers == usual.inliers


def test_no_ecc_start_where_ecc_is_off_or_the_copies_are_small(monkeypatch, pair_above_the_ecc_start):
    original, human = pair_above_the_ecc_start
    sides = feature_copy_sides(monkeypatch)
    assert align(original, human, EvalSettings(refine_ecc=False)).method == METHOD_FEATURES
    small = cv2.resize(human, (450, 450), interpolation=cv2.INTER_AREA)
    assert align(cv2.resize(original, (500, 500), interpolation=cv2.INTER_AREA), small).accepted
    assert sides == [640, 500]


def test_ecc_on_the_cropped_original_refines_as_on_the_whole():
    """ECC on the original cropped to the colorization's footprint lands where it does on the whole original."""
    original = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    colorization = cv2.resize(original[60:420, 50:450], (320, 288), interpolation=cv2.INTER_AREA)
    truth = np.array([[1.25, 0.0, 50.0], [0.0, 1.25, 60.0]])
    start = truth + np.array([[0.004, -0.003, 0.8], [0.002, 0.003, -0.6]])
    warp = cv2.invertAffineTransform(start).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
    _, warp = cv2.findTransformECC(
        original.astype(np.float32), colorization.astype(np.float32), warp, cv2.MOTION_AFFINE, criteria, None, 5
    )
    on_the_whole = cv2.invertAffineTransform(warp)
    refined = _refine_ecc(original, colorization, start)
    assert _footprint_box(start, colorization.shape, original.shape) != (0, 0, 512, 512)  # it did crop
    np.testing.assert_allclose(refined, on_the_whole, atol=1e-3)
    assert np.abs(refined - start).max() > 0.1  # and it did refine


# Feature matches on a 256-pixel grid of the coarse copies (feature_max_side=256 halves the 512-pixel astronaut).
MATCH_GRID = np.array([[x, y] for x in np.linspace(20, 230, 6) for y in np.linspace(20, 230, 5)], np.float32)
OFFSET_DIRECTIONS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [0.6, 0.8]] * 2, np.float32)


def align_with_matches(monkeypatch, source, target, **settings) -> AlignmentResult:
    """``align`` of the astronaut onto itself, SIFT's matches replaced by the given coarse-copy points."""
    monkeypatch.setattr(eval_align, "_match_features", lambda *_: (source.copy(), target.copy()))
    photo = skimage.data.astronaut()
    return align(gray_copy(photo), photo, EvalSettings(feature_max_side=256, **settings))


@pytest.mark.parametrize(("threshold_px", "inliers"), [(3.0, 40), (10.0, 50)])
def test_ransac_threshold_is_in_matching_copy_pixels(monkeypatch, threshold_px, inliers):
    """Matches 4.5 coarse pixels (9 matching-copy pixels) off are outliers at 3 px and inliers at 10 px."""
    source = np.vstack([MATCH_GRID, MATCH_GRID[:10], MATCH_GRID[10:20]])
    target = np.vstack([MATCH_GRID, MATCH_GRID[:10] + 4.5 * OFFSET_DIRECTIONS, MATCH_GRID[10:20] + 0.7 * OFFSET_DIRECTIONS])
    result = align_with_matches(monkeypatch, source, target, ransac_threshold_px=threshold_px)
    assert (result.inliers, result.inlier_ratio) == (inliers, inliers / 50)


def test_three_feature_matches_are_enough_to_try(monkeypatch):
    two = align_with_matches(monkeypatch, MATCH_GRID[:2], MATCH_GRID[:2], min_inliers=3)
    assert (two.accepted, two.reason) == (False, "only 2 feature matches (needs ≥ 3)")
    three = align_with_matches(monkeypatch, MATCH_GRID[:3], MATCH_GRID[:3], min_inliers=3)
    assert three.accepted, three.reason
    assert three.inliers == 3


@pytest.mark.parametrize(("refine_ecc", "method"), [(True, METHOD_REFINED), (False, METHOD_FEATURES)])
def test_method_names_the_estimate_kept(monkeypatch, refine_ecc, method):
    """ECC's refinement is kept, and named, when it raises the correlation; never when it is switched off."""
    source = np.vstack([MATCH_GRID, MATCH_GRID[:10]])
    target = np.vstack([MATCH_GRID, MATCH_GRID[:10] + 0.7 * OFFSET_DIRECTIONS])
    result = align_with_matches(monkeypatch, source, target, refine_ecc=refine_ecc)
    assert result.accepted, result.reason
    assert result.method == method


def test_ecc_that_lowers_the_correlation_is_dropped(monkeypatch):
    """Exact matches of the photo onto itself: the features' estimate is already the best there is."""
    result = align_with_matches(monkeypatch, MATCH_GRID, MATCH_GRID)
    assert result.method == METHOD_FEATURES
    np.testing.assert_allclose(result.transform, similarity(1.0, 0.0), atol=1e-9)
    assert result.median_residual == pytest.approx(0.0, abs=1e-9)


def test_warp_into_covers_the_image_less_its_edge():
    image = np.full((20, 30, 3), 200, np.uint8)
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 3.0]])
    warped, valid = warp_into(image, shift, (40, 50))
    expected = np.zeros((40, 50), bool)
    expected[3 + EDGE_EROSION_PX : 23 - EDGE_EROSION_PX, 5 + EDGE_EROSION_PX : 35 - EDGE_EROSION_PX] = True
    np.testing.assert_array_equal(valid, expected)
    assert warped.shape == (40, 50, 3)
    assert (warped[3:23, 5:35] == 200).all() and warped.sum() == 200 * 3 * 20 * 30  # the border is black


def test_warp_into_erodes_along_the_frame_edge_too():
    """Pixels at the frame's own edge are eroded as at the image's: interpolation there mixes in the border."""
    _, valid = warp_into(np.zeros((10, 12), np.uint8), similarity(1.0, 0.0), (10, 12))
    assert valid.sum() == (10 - 2 * EDGE_EROSION_PX) * (12 - 2 * EDGE_EROSION_PX)
    assert valid[EDGE_EROSION_PX : 10 - EDGE_EROSION_PX, EDGE_EROSION_PX : 12 - EDGE_EROSION_PX].all()


def test_ratio_test_is_strict_and_keeps_exact_duplicates():
    """As OpenCV's matcher: a nearest match exactly at the ratio fails, a zero-distance one passes."""
    at_the_ratio = _ratio_test_matches(np.float32([[0, 0]]), np.float32([[3, 0], [0, 4]]), 0.75)
    assert [indices.tolist() for indices in at_the_ratio] == [[], []]
    duplicate = _ratio_test_matches(np.float32([[5, 5], [0, 0]]), np.float32([[9, 9], [0, 0], [1, 0]]), 0.75)
    assert [indices.tolist() for indices in duplicate] == [[1], [1]]


def test_correlation_without_contrast_or_cover_is_zero():
    """Nothing to correlate reads as no correlation, so such a registration is refused, never accepted."""
    original = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    flat = np.full((100, 120), 128, np.uint8)
    placed = np.array([[1.0, 0.0, 50.0], [0.0, 1.0, 60.0]])
    assert _correlation(original, flat, placed) == 0.0
    assert _correlation(np.full_like(original, 90), original[:100, :120], placed) == 0.0
    assert _correlation(original, original[:100, :120], np.array([[1.0, 0.0, 900.0], [0.0, 1.0, 0.0]])) == 0.0
    assert _correlation(original, original[60:160, 50:170], placed) == pytest.approx(1.0)


@pytest.mark.parametrize("flat_side", ["colorization", "original"])
def test_a_featureless_image_is_refused_for_want_of_matches(astronaut, flat_side):
    flat = np.full_like(astronaut, 128)
    original, colorization = (gray_copy(astronaut), flat) if flat_side == "colorization" else (flat, astronaut)
    result = align(original, colorization)
    assert (result.accepted, result.reason) == (False, "only 0 feature matches (needs ≥ 3)")


def test_an_original_with_a_single_feature_is_refused_not_a_crash(astronaut):
    # A bright spot with a dark notch beside it: SIFT finds one keypoint, too few for the ratio test's two
    # nearest neighbours.
    rows, cols = np.mgrid[:120, :120]
    spot = 128 + 90 * np.exp(-((rows - 60) ** 2 + (cols - 60) ** 2) / 32) - 60 * np.exp(-((rows - 60) ** 2 + (cols - 65) ** 2) / 8)
    original = np.repeat(np.clip(spot, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    assert len(cv2.SIFT_create().detect(original[..., 0], None)) == 1
    result = align(original, astronaut)
    assert (result.accepted, result.reason) == (False, "only 0 feature matches (needs ≥ 3)")


def test_shrink_caps_the_longest_side_and_never_enlarges():
    gray = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)[:200, :500]
    same, factor = _shrink(gray, 500)
    assert same is gray and factor == 1.0
    small, factor = _shrink(gray, 100)
    assert factor == 0.2
    np.testing.assert_array_equal(small, cv2.resize(gray, (100, 40), interpolation=cv2.INTER_AREA))
    strip, _ = _shrink(np.zeros((3, 1000), np.uint8), 100)
    assert strip.shape == (1, 100)  # never a side of zero pixels
    assert _shrink(np.zeros((1000, 3), np.uint8), 100)[0].shape == (100, 1)


def shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


@pytest.mark.parametrize(
    ("transform", "box"),
    [
        # pixel areas run from -0.5 to size - 0.5: columns 49.5–169.5 and rows 59.5–159.5, then the margin
        (shift(50, 60), (50 - 1 - FOOTPRINT_MARGIN_PX, 60 - 1 - FOOTPRINT_MARGIN_PX,
                         170 + FOOTPRINT_MARGIN_PX, 160 + FOOTPRINT_MARGIN_PX)),
        (shift(-30, 480), (0, 480 - 1 - FOOTPRINT_MARGIN_PX, 90 + FOOTPRINT_MARGIN_PX, 512)),  # clipped
        (similarity(2.0, 0.0), (0, 0, 239 + FOOTPRINT_MARGIN_PX, 199 + FOOTPRINT_MARGIN_PX)),  # -1 to 239 and 199
        (shift(900, 700), (511, 511, 512, 512)),  # wholly outside: one pixel, never an empty box
        (shift(-900, -700), (0, 0, 1, 1)),
    ],
)
def test_footprint_box_holds_the_placed_image_and_its_margin(transform, box):
    assert _footprint_box(transform, (100, 120, 3), (512, 512)) == box


def test_footprint_box_of_a_turned_image_reaches_each_corner():
    """Turned 30°, each corner of the image's pixel area is the extreme on some side of the box."""
    transform = similarity(2.0, 30.0)
    transform[:, 2] = (400, 300)
    area = np.array([[-0.5, -0.5], [119.5, -0.5], [-0.5, 99.5], [119.5, 99.5]])
    corners = area @ transform[:, :2].T + transform[:, 2]
    low, high = np.floor(corners.min(axis=0)) - FOOTPRINT_MARGIN_PX, np.ceil(corners.max(axis=0)) + FOOTPRINT_MARGIN_PX
    assert _footprint_box(transform, (100, 120), (1024, 1024)) == (*low.astype(int).tolist(), *high.astype(int).tolist())


def test_matches_all_at_one_point_give_no_transform_and_are_refused(monkeypatch):
    same_point = np.float32([[100, 100]] * 5)  # degenerate: RANSAC cannot fit anything to them
    result = align_with_matches(monkeypatch, same_point, same_point)
    assert (result.accepted, result.reason) == (False, "RANSAC found no transform among 5 matches")
    assert result.transform is None and result.warped is None
