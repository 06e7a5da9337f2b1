"""ImageNet top-1/top-5 of the packaged EfficientNet-Lite0 weights, on photos named by their class.

Each file name starts with the class's WordNet id (``n01440764_tench.JPEG``), as in
EliSchwartz/imagenet-sample-images; ``imagenet_wnids.txt`` beside this script maps ids to the
classifier's indices. Photos: shorter side resized to 256 (bicubic), centre 224x224 crop.
Optionally also as luminance only (the residual encoder sees gray photos).

    python benchmarks/efficientnet_accuracy.py FOLDER [--gray] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from convert_efficientnet_lite0 import center_crop_224  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gray", action="store_true", help="also classify the photos' luminance, repeated to RGB")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    from colorizer.efficientnet_lite0 import MEAN, STD, WEIGHTS_FILE, efficientnet_lite0

    wnids = [w for line in (Path(__file__).parent / "imagenet_wnids.txt").read_text().splitlines() if not line.startswith("#") for w in line.split()]
    index = {w: i for i, w in enumerate(wnids)}
    assert len(index) == 1000
    files = sorted(p for p in args.folder.iterdir() if p.name.split("_")[0] in index)
    files = files[: args.limit or None]
    labels = np.array([index[p.name.split("_")[0]] for p in files])
    images = np.stack([center_crop_224(p) for p in files])

    model = efficientnet_lite0(weights=WEIGHTS_FILE)
    variants = {"colour": images}
    if args.gray:
        y = images @ np.array([0.299, 0.587, 0.114], np.float32)
        variants["gray"] = np.repeat(y[..., None], 3, axis=-1)
    print(f"{len(files)} photos from {args.folder}, {WEIGHTS_FILE.name}")
    for name, x in variants.items():
        start = time.perf_counter()
        logits = model.predict((x - MEAN) / STD, batch_size=32, verbose=0)
        top5 = np.argsort(-logits, axis=1)[:, :5]
        top1_acc = (top5[:, 0] == labels).mean()
        top5_acc = (top5 == labels[:, None]).any(axis=1).mean()
        print(f"{name:6s}: top-1 {top1_acc:.1%}  top-5 {top5_acc:.1%}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
