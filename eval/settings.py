"""Settings for evaluation, as read from the ``[eval]`` section of colorbot.toml.

The alignment thresholds decide when a human colorization counts as registered onto its
original; the defaults accept only registrations that are clearly right.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvalSettings(BaseModel):
    """How human colorizations are aligned to their originals before measuring."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    match_max_side: int = Field(
        1600, ge=256, description="longest side of the copies features are matched on (pixels)"
    )
    feature_max_side: int = Field(
        640, ge=128, description="longest side of the copies SIFT features are found on (pixels); the estimate "
        "is then refined and checked on the matching copies"
    )
    ecc_start_max_side: int = Field(
        512, ge=128, description="longest side of the copies the features that start ECC are found on (pixels); "
        "where ECC's refinement is not kept, or the pair is refused, features are found again on feature_max_side "
        "copies; set it to feature_max_side for the slower, slightly more accurate way without an ECC start"
    )
    lowe_ratio: float = Field(0.75, gt=0, lt=1, description="SIFT match ratio test")
    ransac_threshold_px: float = Field(3.0, gt=0, description="RANSAC inlier distance, matching-copy pixels")
    refine_ecc: bool = Field(True, description="refine the feature estimate with ECC (OpenCV findTransformECC's, as eval.ecc computes it)")
    min_inliers: int = Field(20, ge=3)
    min_inlier_ratio: float = Field(0.3, ge=0, le=1)
    max_median_residual_px: float = Field(1.5, gt=0, description="matching-copy pixels")
    min_scale: float = Field(0.2, gt=0)
    max_scale: float = Field(5.0, gt=0)
    max_rotation_deg: float = Field(10.0, ge=0, le=180)
    min_overlap: float = Field(0.5, ge=0, le=1, description="share of the original the colorization covers")
    min_correlation: float = Field(
        0.9, ge=-1, le=1, description="luminance correlation of original and warped colorization"
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="evaluation attempts per post before it is skipped with the last error"
    )
