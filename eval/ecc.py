"""ECC's affine refinement (Evangelidis & Psarakis, 2008), as OpenCV's ``findTransformECC`` computes it.

OpenCV builds each iteration from whole-image passes: four warps, two masked means, a 6-block
Jacobian written out in full (six times the template's pixels), then 21 + 6 + 6 + 6 dot products
over it, largely on one core. Here the warps are OpenCV's own (the image and its two gradients
as one 3-channel warp, which interpolates each channel as the separate warps do), and everything
after them is two compiled passes over the warped pixels that never store the Jacobian. The
arithmetic is OpenCV's, step by step, except that sums are made in float64 in another order and the
6×6 system is solved in float64: the refined transform agrees with OpenCV's to a float32 rounding
(2.4e-7 at most in tests/test_eval_ecc.py, to the bit on benchmarks/evaluate.py's pairs), in less
than half its time (``benchmarks/evaluate.py --steps``: 76 against 42 ms on the 1 MP benchmark pair, 171
against 71 ms on the 12 MP one).

Only what ``eval.align`` uses is here: MOTION_AFFINE, no masks, a 5×5 Gaussian, OpenCV's
stopping rule (at most ``max_iterations``, or until the correlation moves by less than ``epsilon``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from colorizer.compiled import compiled

GAUSSIAN_SIZE = 5
"""OpenCV's default ``gaussFiltSize``: both images are smoothed with it before anything else."""

_GRADIENT = np.array([[-0.5, 0.0, 0.5]], np.float32)


class EccError(ValueError):
    """ECC did not converge (OpenCV raises ``cv2.error`` with StsNoConv in the same cases)."""


def find_transform_ecc(
    template: np.ndarray, image: np.ndarray, warp: np.ndarray, max_iterations: int = 50, epsilon: float = 1e-5
) -> np.ndarray:
    """The 2×3 float32 warp mapping ``template`` coordinates into ``image``, refined from ``warp``.

    ``cv2.findTransformECC(template, image, warp, cv2.MOTION_AFFINE, (EPS | COUNT, max_iterations,
    epsilon), None, 5)``, which it replaces: the same inputs (uint8 or float32 gray) and result.
    """
    template_float = cv2.GaussianBlur(template.astype(np.float32), (GAUSSIAN_SIZE, GAUSSIAN_SIZE), 0, 0)
    image_float = cv2.GaussianBlur(image.astype(np.float32), (GAUSSIAN_SIZE, GAUSSIAN_SIZE), 0, 0)
    # OpenCV warps the image and its gradients separately; merged, each channel is interpolated alike.
    with_gradients = cv2.merge([image_float, cv2.filter2D(image_float, -1, _GRADIENT),
                                cv2.filter2D(image_float, -1, _GRADIENT.T)])
    coverage = np.ones(image.shape[:2], np.uint8)
    size = (template.shape[1], template.shape[0])
    warp = np.array(warp, np.float32)
    rho, last_rho = -1.0, -epsilon
    iteration = 0
    while iteration < max_iterations and abs(rho - last_rho) >= epsilon:
        iteration += 1
        warped = cv2.warpAffine(with_gradients, warp, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        mask = cv2.warpAffine(coverage, warp, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        last_rho = rho
        rho, delta = _step(template_float, warped, mask)
        warp[0, 0] += delta[0]
        warp[1, 0] += delta[1]
        warp[0, 1] += delta[2]
        warp[1, 1] += delta[3]
        warp[0, 2] += delta[4]
        warp[1, 2] += delta[5]
    return warp


def _step(template: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """The correlation at the current warp and the parameter update (OpenCV's deltaP)."""
    count, image_sum, image_squares, template_sum, template_squares = _masked_moments(warped, template, mask)
    if count == 0:
        raise EccError("ECC: the warped image no longer overlaps the template")
    image_mean = np.float32(image_sum / count)
    template_mean = np.float32(template_sum / count)
    # meanStdDev's standard deviations, squared and times the count, are these norms squared.
    image_norm = math.sqrt(count * max(image_squares / count - (image_sum / count) ** 2, 0.0))
    template_norm = math.sqrt(count * max(template_squares / count - (template_sum / count) ** 2, 0.0))
    hessian, image_projection, template_projection, correlation = _projections(
        warped, template, mask, image_mean, template_mean
    )
    if image_norm * template_norm == 0:  # OpenCV stops at a NaN, and would go on from an infinity to nonsense
        raise EccError("ECC: the correlation is not a number (a flat image or template)")
    rho = correlation / (image_norm * template_norm)
    try:
        hessian_inverse = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:  # OpenCV's inverse of a singular matrix is zeros: no update
        hessian_inverse = np.zeros_like(hessian)
    image_projection_hessian = hessian_inverse @ image_projection
    lambda_n = image_norm * image_norm - image_projection @ image_projection_hessian
    lambda_d = correlation - template_projection @ image_projection_hessian
    if lambda_d <= 0.0:
        raise EccError("ECC stopped before converging: the images may be uncorrelated or not overlap")
    # OpenCV projects error = lambda * template - image onto the Jacobian; the projection is linear.
    error_projection = (lambda_n / lambda_d) * template_projection - image_projection
    return rho, hessian_inverse @ error_projection


@compiled()
def _masked_moments(warped, template, mask):
    """Count, sum and sum of squares of the warped image and of the template where ``mask`` is set."""
    count = 0
    image_sum = image_squares = template_sum = template_squares = 0.0
    for row in range(mask.shape[0]):
        for col in range(mask.shape[1]):
            if mask[row, col]:
                value = np.float64(warped[row, col, 0])
                reference = np.float64(template[row, col])
                count += 1
                image_sum += value
                image_squares += value * value
                template_sum += reference
                template_squares += reference * reference
    return count, image_sum, image_squares, template_sum, template_squares


@compiled(fastmath={"reassoc"})
def _projections(warped, template, mask, image_mean, template_mean):
    """J'J, J'(image), J'(template) and template·image, J being the affine Jacobian of each pixel.

    As OpenCV has them: the image is made zero-mean only where ``mask`` is set (elsewhere it keeps its
    warped value), the template is zero-mean where set and 0 elsewhere, and the Jacobian's six
    columns are gx·x, gy·x, gx·y, gy·y, gx, gy of the warped gradients (float32 products).
    The sums are spelled out one by one so that they stay in registers.
    """
    h = np.zeros(21)  # the upper triangle of J'J, row by row
    image_projection = np.zeros(6)
    template_projection = np.zeros(6)
    correlation = 0.0
    for row in range(mask.shape[0]):
        y = np.float32(row)
        h00 = h01 = h02 = h03 = h04 = h05 = h11 = h12 = h13 = h14 = h15 = 0.0
        h22 = h23 = h24 = h25 = h33 = h34 = h35 = h44 = h45 = h55 = 0.0
        i0 = i1 = i2 = i3 = i4 = i5 = t0 = t1 = t2 = t3 = t4 = t5 = 0.0
        for col in range(mask.shape[1]):
            x = np.float32(col)
            value = warped[row, col, 0]
            gx = warped[row, col, 1]
            gy = warped[row, col, 2]
            reference = np.float32(0)
            if mask[row, col]:
                value = value - image_mean
                reference = template[row, col] - template_mean
                correlation += np.float64(reference) * np.float64(value)
            j0, j1, j2, j3 = np.float64(gx * x), np.float64(gy * x), np.float64(gx * y), np.float64(gy * y)
            j4, j5 = np.float64(gx), np.float64(gy)
            v, r = np.float64(value), np.float64(reference)
            h00 += j0 * j0; h01 += j0 * j1; h02 += j0 * j2; h03 += j0 * j3; h04 += j0 * j4; h05 += j0 * j5  # noqa: E702
            h11 += j1 * j1; h12 += j1 * j2; h13 += j1 * j3; h14 += j1 * j4; h15 += j1 * j5  # noqa: E702
            h22 += j2 * j2; h23 += j2 * j3; h24 += j2 * j4; h25 += j2 * j5  # noqa: E702
            h33 += j3 * j3; h34 += j3 * j4; h35 += j3 * j5  # noqa: E702
            h44 += j4 * j4; h45 += j4 * j5  # noqa: E702
            h55 += j5 * j5
            i0 += j0 * v; i1 += j1 * v; i2 += j2 * v; i3 += j3 * v; i4 += j4 * v; i5 += j5 * v  # noqa: E702
            t0 += j0 * r; t1 += j1 * r; t2 += j2 * r; t3 += j3 * r; t4 += j4 * r; t5 += j5 * r  # noqa: E702
        for k, term in enumerate((h00, h01, h02, h03, h04, h05, h11, h12, h13, h14, h15,
                                  h22, h23, h24, h25, h33, h34, h35, h44, h45, h55)):
            h[k] += term
        for k, (term_i, term_t) in enumerate(((i0, t0), (i1, t1), (i2, t2), (i3, t3), (i4, t4), (i5, t5))):
            image_projection[k] += term_i
            template_projection[k] += term_t
    hessian = np.empty((6, 6))
    k = 0
    for i in range(6):
        for j in range(i, 6):
            hessian[i, j] = hessian[j, i] = h[k]
            k += 1
    return hessian, image_projection, template_projection, correlation
