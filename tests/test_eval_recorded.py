"""The evaluate step's figures on three test pairs, against values recorded from the code before it was made faster.

The values below were printed by the alignment and metrics of commit 86c125f (before matching on
downscaled copies and the one-pass float32 metrics), so a change that moves any figure shows here.
Metrics must stay within 1e-4 (ΔE2000 too: the tolerance of Sharma's test data), and so must the
alignment's overlap and correlation. The feature figures (inliers, their ratio, the median residual)
describe the copies SIFT runs on, which are smaller than before for a pair above
``feature_max_side``, and for one above ``ecc_start_max_side`` whose ECC refinement is kept: they
are compared only for the pairs whose feature copies are the ones they were.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from eval.align import METHOD_FEATURES, align
from eval.metrics import all_metrics
from eval.settings import EvalSettings
from tests.factories import faded, gray_copy, sepia

METRIC_TOLERANCE = 1e-4

ALIGNMENT_TOLERANCE = {"overlap": 1e-4, "correlation": 1e-4}
FEATURE_TOLERANCE = {"inlier_ratio": 1e-4, "median_residual": 1e-4}


def rotated_crop(photo: np.ndarray, degrees: float, scale: float, crop_share: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo's gray copy as the original, and the photo rotated, scaled and cropped as the human version."""
    height, width = photo.shape[:2]
    transform = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    human = cv2.warpAffine(photo, transform, (width, height))
    dy, dx = int(height * crop_share), int(width * crop_share)
    return gray_copy(photo), human[dy : height - dy, dx : width - dx]


def recorded_pair(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original, human, machine) of one recorded pair."""
    if name == "astronaut":
        photo = skimage.data.astronaut()
        return *rotated_crop(photo, 2.0, 1.1, 0.05), (0.6 * photo + 0.4 * gray_copy(photo)).astype(np.uint8)
    if name == "coffee":
        photo = skimage.data.coffee()
        return *rotated_crop(photo, -4.0, 0.9, 0.03), sepia(photo)
    photo = cv2.resize(skimage.data.astronaut(), (2400, 1800), interpolation=cv2.INTER_CUBIC)  # above the 2 MP cap
    return *rotated_crop(photo, 3.0, 1.2, 0.05), faded(photo)


RECORDED = {
    'astronaut': {
        'accepted': True,
        'method': 'sift+ransac+ecc',
        'inliers': 515,
        'inlier_ratio': 0.9662288930581614,
        'median_residual': 0.12136025604294434,
        'overlap': 0.6597862243652344,
        'correlation': 0.9966545655665624,
        'valid_pixels': 172959,
        'transform': [[0.9085652828216553, -0.031695976853370667, 53.44337463378906], [0.0317675843834877, 0.9085526466369629, 38.793704986572266]],
        'metrics': {
            'score': 0.8996099661003558,
            'uv_error': 0.04581051433500642,
            'uv_rmse': 0.06838206526663584,
            'chroma_machine': 13.473843306062829,
            'chroma_human': 22.571614861362043,
            'saturation_ratio': 0.5969374982171645,
            'near_gray_machine': 0.514630635005984,
            'near_gray_human': 0.3641383217988078,
            'colorfulness_machine': 46.41658861722429,
            'colorfulness_human': 77.02941691105595,
            'colorfulness_gap': 30.612828293831654,
            'delta_e_2000': 4.35488891486848,
            'psnr': 24.680682411477626,
            'ssim': 0.9562588000804769,
            'auc': 0.9386741366451008,
        },
        'gray_metrics': {
            'score': 0.22729072649578871,
            'uv_error': 0.11450452267834063,
            'uv_rmse': 0.17127847783471517,
            'chroma_machine': 0.002782505920020042,
            'chroma_human': 22.571614861362043,
            'saturation_ratio': 0.0001232745613067818,
            'near_gray_machine': 1.0,
            'near_gray_human': 0.3641383217988078,
            'colorfulness_machine': 0.0,
            'colorfulness_human': 77.02941691105595,
            'colorfulness_gap': 77.02941691105595,
            'delta_e_2000': 12.319588896110599,
            'psnr': 17.094001437047698,
            'ssim': 0.8908351818849867,
            'auc': 0.8495387731581858,
        },
    },
    'coffee': {
        'accepted': True,
        'method': 'sift+ransac',
        'inliers': 304,
        'inlier_ratio': 0.9589905362776026,
        'median_residual': 0.1314146909679704,
        'overlap': 0.9754,
        'correlation': 0.993089344588496,
        'valid_pixels': 234096,
        'transform': [[1.1084151253203296, 0.07760470790297834, -27.239673488320236], [-0.07760470790297834, 1.1084151253203296, 13.47237150030492]],
        'metrics': {
            'score': 0.3160240912374966,
            'uv_error': 0.14969805560688498,
            'uv_rmse': 0.1697734838198626,
            'chroma_machine': 17.669072232644986,
            'chroma_human': 43.21349000012431,
            'saturation_ratio': 0.4088786217589498,
            'near_gray_machine': 0.0,
            'near_gray_human': 0.0221874786412412,
            'colorfulness_machine': 17.808902335381973,
            'colorfulness_human': 76.42191250738713,
            'colorfulness_gap': 58.61301017200516,
            'delta_e_2000': 15.065913825410378,
            'psnr': 17.166371116913133,
            'ssim': 0.7712170890027946,
            'auc': 0.79697685280113,
        },
        'gray_metrics': {
            'score': 0.28835082887021446,
            'uv_error': 0.21698165202560177,
            'uv_rmse': 0.23597151686775272,
            'chroma_machine': 0.0025299526113460482,
            'chroma_human': 43.21349000012431,
            'saturation_ratio': 5.8545435958511346e-05,
            'near_gray_machine': 1.0,
            'near_gray_human': 0.0221874786412412,
            'colorfulness_machine': 0.0,
            'colorfulness_human': 76.42191250738713,
            'colorfulness_gap': 76.42191250738713,
            'delta_e_2000': 21.8691499236419,
            'psnr': 14.169536266379502,
            'ssim': 0.724728197153619,
            'auc': 0.7119127765247306,
        },
    },
    'large': {
        'accepted': True,
        'method': 'sift+ransac+ecc',
        'inliers': 1429,
        'inlier_ratio': 0.9841597796143251,
        'median_residual': 0.09174473823349417,
        'overlap': 0.5594861111111111,
        'correlation': 0.9987599467090841,
        'valid_pixels': 2416980,
        'transform': [[0.8322415086958143, -0.04361920472648408, 336.52773206360223], [0.04361735863818062, 0.8322107791900635, 178.81349261860467]],
        'metrics': {
            'score': 0.5777618299941387,
            'uv_error': 0.0755111145986724,
            'uv_rmse': 0.1108777580707691,
            'chroma_machine': 11.053523657379088,
            'chroma_human': 22.535437899607157,
            'saturation_ratio': 0.4904951794866953,
            'near_gray_machine': 0.055528312357066595,
            'near_gray_human': 0.3681211546374747,
            'colorfulness_machine': 25.4160544262388,
            'colorfulness_human': 77.28036349642142,
            'colorfulness_gap': 51.864309070182614,
            'delta_e_2000': 11.133168250839871,
            'psnr': 17.888967566102718,
            'ssim': 0.7765093263417507,
            'auc': 0.8896330475636364,
        },
        'gray_metrics': {
            'score': 0.203850384869662,
            'uv_error': 0.11396457193184983,
            'uv_rmse': 0.17109311294960294,
            'chroma_machine': 0.00277826461353133,
            'chroma_human': 22.535437899607157,
            'saturation_ratio': 0.0001232842523809915,
            'near_gray_machine': 1.0,
            'near_gray_human': 0.3681211546374747,
            'colorfulness_machine': 0.0,
            'colorfulness_human': 77.28036349642142,
            'colorfulness_gap': 77.28036349642142,
            'delta_e_2000': 12.17942228720778,
            'psnr': 17.172865754573643,
            'ssim': 0.9070630116252978,
            'auc': 0.8497745458479123,
        },
    },
}


@pytest.fixture(scope="module", params=sorted(RECORDED))
def measured(request):
    original, human, machine = recorded_pair(request.param)
    result = align(original, human)
    assert result.accepted, result.reason
    settings, longest = EvalSettings(), max(original.shape[:2])
    features_as_before = longest <= settings.feature_max_side and (
        longest <= settings.ecc_start_max_side or result.method == METHOD_FEATURES
    )
    return (RECORDED[request.param], result, all_metrics(machine, result.warped, result.valid),
            all_metrics(original, result.warped, result.valid), features_as_before)


def test_alignment_figures_are_unchanged(measured):
    recorded, result, _, _, features_as_before = measured
    assert result.method == recorded["method"]
    tolerances = {**ALIGNMENT_TOLERANCE, **(FEATURE_TOLERANCE if features_as_before else {})}
    for name, tolerance in tolerances.items():
        assert getattr(result, name) == pytest.approx(recorded[name], abs=tolerance), name
    if features_as_before:
        assert result.inliers == recorded["inliers"]
    np.testing.assert_allclose(result.transform, recorded["transform"], atol=1e-3)
    assert int(result.valid.sum()) == pytest.approx(recorded["valid_pixels"], rel=1e-3)


@pytest.mark.parametrize("which", ["metrics", "gray_metrics"])
def test_metrics_are_unchanged(measured, which):
    recorded, _, machine_metrics, gray_metrics, _ = measured
    values = machine_metrics if which == "metrics" else gray_metrics
    assert set(values) == set(recorded[which])
    for name, expected in recorded[which].items():
        assert values[name] == pytest.approx(expected, abs=METRIC_TOLERANCE), name
