"""What starting ECC from features of smaller copies (``ecc_start_max_side``) costs in accuracy, and saves in time.

For each colour photo of a folder, a "human colorization" is made the way colourists change theirs:
rotated (up to ±8°), rescaled (0.6–1.5×), cropped 3–10 % a side, re-graded (sepia, faded, a hue
shift or a gamma change, in turn) and saved as JPEG quality 70; the original is the photo's gray copy.
Each pair is aligned as before ECC had a start of its own (``ecc_start_max_side`` equal to
``feature_max_side``) and as now (the defaults), in alternation. The true transform is known, so the
script gives how far each result's corners are from where they should be, which pairs came out
differently, and the alignment time of both.

With ``--black-corners`` the rotated photo's black corners are left in the crop (as the recorded test
pairs have them); without, the crop is taken inside the rotated photo, as a colourist's image is.

    python benchmarks/alignment_start.py PHOTO_FOLDER [--limit 300] [--black-corners]

Measured 2026-12-02 on 300 photos of the Houses dataset (emanhamed/Houses-dataset, 640-1024 px, every
seventh file), idle 2-core machine; before = ``ecc_start_max_side=640``, after = 512 (the default):

    crop inside the rotated photo:
      accepted 300 and 300 of 300; corner error median 0.025 and 0.025 px, p95 0.178 and 0.200,
      max 1.058 and 1.059; alignment median 123 -> 101 ms (0.83x)
      3 pairs differ, each now ECC's result where the features' was kept before: 0.09 -> 0.34,
      0.11 -> 0.21, 0.18 -> 0.45 px; the machine colorization's metrics moved by at most
      2e-4 (score), 1.1e-5 (UV error), 0.006 (mean CIEDE2000), 0.009 dB (PSNR), 0.0013 (SSIM)
    --black-corners:
      accepted 300 and 300; median 0.037 and 0.037 px, p95 0.312 and 0.359, max 1.105 and
      1.105; alignment 121 -> 97 ms (0.80x)
      13 pairs differ, all further from the truth after: 0.04-0.41 px before, 0.09-0.63 after
    unrelated pairs (the human version of another photo): refused 300 of 300 by both, each time

Where ECC's optimum is off the truth (a re-grade it cannot follow, black corners), the usual
copies' features beat it on correlation and were kept; the smaller copies' coarser estimate does
not, so ECC's result is. Twice ECC also ended elsewhere from the other start (0.12 -> 0.36 and
0.41 -> 0.63 px): its stopping rule (a change of correlation below 1e-5) ends it wherever
progress becomes slow.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from colorbot.allocator import keep_freed_memory
from colorizer.images import decode
from eval.align import align
from eval.metrics import all_metrics
from eval.settings import EvalSettings

MOVED_METRICS = ("score", "uv_error", "delta_e_2000", "psnr", "ssim")
BEFORE = EvalSettings(ecc_start_max_side=EvalSettings().feature_max_side)
AFTER = EvalSettings()


def regraded(rgb: np.ndarray, which: int, rng: np.random.Generator) -> np.ndarray:
    """The photo re-graded one of four ways: sepia, faded, hue-shifted or gamma-changed."""
    if which == 0:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
        return np.clip(gray * np.float32([1.07, 0.74, 0.43]) + np.float32([20, 10, 0]), 0, 255).astype(np.uint8)
    if which == 1:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
        return (0.45 * rgb + 0.55 * gray).astype(np.uint8)
    if which == 2:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(int) + rng.integers(10, 60)) % 180
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(255 * (rgb / 255.0) ** rng.uniform(0.6, 1.6), 0, 255).astype(np.uint8)


def human_version(photo: np.ndarray, index: int, rng: np.random.Generator, black_corners: bool):
    """(human version, true transform from its pixels to the photo's)."""
    height, width = photo.shape[:2]
    scale = rng.uniform(0.6, 1.5)
    transform = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-8, 8), scale)
    out_width, out_height = int(width * scale), int(height * scale)
    transform[:, 2] += ((out_width - width) / 2, (out_height - height) / 2)
    human = cv2.warpAffine(photo, transform, (out_width, out_height))
    dy, dx = int(out_height * rng.uniform(0.03, 0.1)), int(out_width * rng.uniform(0.03, 0.1))
    if not black_corners:
        covered = cv2.warpAffine(
            np.full((height, width), 255, np.uint8), transform, (out_width, out_height), flags=cv2.INTER_NEAREST
        )
        while not covered[dy : out_height - dy, dx : out_width - dx].all():
            dy, dx = dy + 2, dx + 2
        dy, dx = dy + 2, dx + 2
    human = regraded(human[dy : out_height - dy, dx : out_width - dx], index % 4, rng)
    _, encoded = cv2.imencode(".jpg", human[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    truth = cv2.invertAffineTransform(transform)
    truth[:, 2] += truth[:, :2] @ np.array([dx, dy], np.float64)
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]), truth


def corner_error(transform: np.ndarray, truth: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance in original pixels between where ``transform`` and ``truth`` put the image's corners."""
    height, width = shape[:2]
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
    return float(np.abs(corners @ (transform - truth)[:, :2].T + (transform - truth)[:, 2]).max())


def describe(outcome: tuple) -> str:
    accepted, method, error, *_ = outcome
    return f"{method}, {error:.3f} px" if accepted else "refused"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--black-corners", action="store_true", help="leave the rotation's black corners in the crop")
    args = parser.parse_args()
    keep_freed_memory()
    rng = np.random.default_rng(7)
    paths = sorted(str(p) for p in Path(args.folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    paths = paths[: args.limit]
    runs = {"before": (BEFORE, []), "after": (AFTER, [])}
    refused_unrelated = dict.fromkeys(runs, 0)
    for index, path in enumerate(paths):
        photo = decode(path)
        original = np.repeat(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        human, truth = human_version(photo, index, rng, args.black_corners)
        unrelated, _ = human_version(decode(paths[(index + 37) % len(paths)]), index, rng, args.black_corners)
        machine = (0.6 * photo + 0.4 * original).astype(np.uint8)  # a machine colorization to measure
        for name, (settings, results) in runs.items():
            started = time.perf_counter()
            result = align(original, human, settings)
            seconds = time.perf_counter() - started
            error = corner_error(result.transform, truth, human.shape) if result.accepted else None
            metrics = all_metrics(machine, result.warped, result.valid) if result.accepted else None
            results.append((result.accepted, result.method, error, seconds, metrics))
            refused_unrelated[name] += not align(original, unrelated, settings).accepted
    for name, (settings, results) in runs.items():
        errors = np.array([error for accepted, _, error, *_ in results if accepted])
        print(
            f"{name} (ecc_start_max_side={settings.ecc_start_max_side}): accepted {len(errors)}/{len(paths)}, "
            f"corner error median {np.median(errors):.3f} px, p95 {np.percentile(errors, 95):.3f}, "
            f"max {errors.max():.3f}; unrelated refused {refused_unrelated[name]}/{len(paths)}; "
            f"alignment median {1000 * np.median([r[3] for r in results]):.0f} ms"
        )
    for path, before, after in zip(paths, runs["before"][1], runs["after"][1]):
        if before[:2] != after[:2] or (before[0] and abs(before[2] - after[2]) > 0.05):
            moved = ""
            if before[0] and after[0]:
                moved = "; metrics moved by " + ", ".join(
                    f"{name} {after[4][name] - before[4][name]:+.2g}" for name in MOVED_METRICS
                )
            print(f"  differs: {Path(path).name}: {describe(before)} -> {describe(after)}{moved}")
    before_seconds = np.median([r[3] for r in runs["before"][1]])
    print(f"alignment time after / before: {np.median([r[3] for r in runs['after'][1]]) / before_seconds:.2f}")


if __name__ == "__main__":
    main()
