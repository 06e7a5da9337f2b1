"""A short training run of each candidate recipe on a GPU: images per second and validation UV error.

    python benchmarks/gpu_train_smoke.py --photos FOLDER [--photos ...] --val FOLDER \
        [--recipe colorizer/recipes/lite0-wide.toml --recipe ...] [--steps 300] [--batch-size 64] [--out DIR]

Meant for a lent GPU machine, within 10 minutes: the recipes run unchanged (the trainer turns on mixed
precision with loss scaling when it sees a GPU) except for a larger batch and fewer steps, on whatever
photos are given. Without a GPU it refuses unless ``--allow-cpu`` (then use tiny step counts). Prints
one JSON object per recipe and writes them all to OUT/gpu_train_smoke.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from colorizer.train import TrainConfig, train  # noqa: E402

CANDIDATES = [REPO / "colorizer" / "recipes" / name for name in ("lite0-wide.toml", "lite0-vivid.toml")]


def smoke(recipe: Path, args, out: Path) -> dict:
    config = TrainConfig.from_toml(recipe)
    # The schedule is squeezed into the short run, fine-tuning included, so every phase runs once.
    scale = args.steps / config.steps
    config = dataclasses.replace(
        config, data=args.photos, manifest=None, val=args.val, out=str(out), steps=args.steps,
        batch_size=args.batch_size, warmup_steps=round(config.warmup_steps * scale),
        finetune_start_step=round(config.finetune_start_step * scale), log_every=max(1, args.steps // 10),
        sample_every=0, checkpoint_every=args.steps, val_images=args.val_images, calibration_share=0.0,
        progress=False)
    started = time.perf_counter()
    result = train(config)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    rates = [row["images_per_s"] for row in history if "images_per_s" in row]
    return {
        "recipe": recipe.name, "head": config.model.head, "steps": config.steps, "batch_size": config.batch_size,
        "precision_policy": keras.mixed_precision.global_policy().name,
        "wall_s": round(time.perf_counter() - started, 1), "images_per_s_last": rates[-1] if rates else None,
        "val_uv_error": result.get("val_uv_error"), "val_gray_uv_error": result.get("val_gray_uv_error"),
        "val_images": result.get("val_images"), "files": result.get("files"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="append", required=True, help="Folder of training photos (repeatable).")
    parser.add_argument("--val", required=True, help="Folder of validation photos.")
    parser.add_argument("--recipe", action="append", type=Path, default=None,
                        help="Recipe to run (repeatable) [lite0-wide and lite0-vivid].")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--val-images", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("gpu-smoke"))
    parser.add_argument("--allow-cpu", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        raise SystemExit("no GPU visible to TensorFlow (install tensorflow[and-cuda]), or pass --allow-cpu")
    reports = []
    for recipe in args.recipe or CANDIDATES:
        reports.append(smoke(recipe, args, args.out / recipe.stem))
        print(json.dumps(reports[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_train_smoke.json").write_text(json.dumps({"gpus": [g.name for g in gpus], "runs": reports}, indent=2))


if __name__ == "__main__":
    main()
