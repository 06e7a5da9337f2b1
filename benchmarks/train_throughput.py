"""Where a training step's time goes, and images per second of whole steps, on the seed's data path and on today's.

    python benchmarks/train_throughput.py --photos FOLDER [--photos FOLDER2] [--recipe RECIPE] [--steps 30]

Stages, each timed alone after a warm-up (batch of the recipe's size, the recipe's model):

* decode + crop: the training input pipeline by itself (tf.data, as parallel as the machine allows),
  on the seed's path (``legacy_decode``: every photo decoded at twice the crop size, the grayscale test
  through eager TensorFlow) and on today's (decoded at the size the smallest crop needs, the grayscale
  test in numpy, or none when the pool scan has done it);
* encoder forward: the frozen backbone alone;
* decoder forward + backward: a training step with only the unblurred loss term, less the encoder;
* blur losses: a step with the full loss, less the one above.

Then ``colorizer.train.train`` itself runs ``--steps`` steps on each data path (pool scan off on the
seed's, on for today's): the images per second that a real run logs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tensorflow as tf  # noqa: E402

from colorizer.data import DecodeCounts, find_images, training_dataset  # noqa: E402
from colorizer.loss import colorization_loss, uv_distance  # noqa: E402
from colorizer.model import build_model  # noqa: E402
from colorizer.train import DEFAULT_RECIPE, TrainConfig, make_loss, make_optimizer, train  # noqa: E402


def time_pipeline(paths: list[str], config: TrainConfig, legacy: bool, images: int) -> float:
    """Images per second of the input pipeline alone."""
    dataset = training_dataset(paths, size=config.model.input_size, batch_size=config.batch_size, seed=0, epoch=0,
                               start=0, counts=DecodeCounts(), min_crop_area=config.min_crop_area,
                               check_gray=legacy, legacy_decode=legacy)
    iterator = iter(dataset.repeat())
    next(iterator)
    started, seen = time.perf_counter(), 0
    while seen < images:
        seen += int(next(iterator)[0].shape[0])
    return seen / (time.perf_counter() - started)


def time_call(function, *args, repeats: int = 5) -> float:
    """Seconds per call after one warm-up."""
    function(*args)
    started = time.perf_counter()
    for _ in range(repeats):
        result = function(*args)
    tf.nest.map_structure(lambda t: t.numpy(), result)
    return (time.perf_counter() - started) / repeats


def stage_times(config: TrainConfig, out: Path, paths: list[str]) -> dict[str, float]:
    """Milliseconds per batch of the network's stages."""
    size, batch = config.model.input_size, config.batch_size
    model = build_model(config.model)
    backbone = model.get_layer(f"{config.model.backbone}_taps")
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)
    y = tf.random.uniform((batch, size, size, 1))
    uv = tf.random.uniform((batch, size, size, 2), -0.2, 0.2)
    gray = tf.concat([y, y, y], axis=-1)
    full_loss = make_loss(config, out, paths)
    if config.model.head == "regression":
        sharp_loss = lambda output, true: tf.reduce_mean(uv_distance(output, true, config.loss_norm))  # noqa: E731
    else:  # the classification loss has no blur terms: both steps time the same loss
        sharp_loss = full_loss

    def step_with(loss_of):
        @tf.function
        def step(y, uv):
            with tf.GradientTape() as tape:
                loss = loss_of(model(y, training=True), uv)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return step

    encoder = tf.function(lambda x: backbone(x, training=False))
    encoder_s = time_call(encoder, gray)
    sharp_s = time_call(step_with(sharp_loss), y, uv)
    full_s = time_call(step_with(full_loss), y, uv)
    blur = tf.function(lambda p, t: colorization_loss(p, t))
    return {
        "encoder_forward_ms": 1000 * encoder_s,
        "decoder_forward_backward_ms": 1000 * (sharp_s - encoder_s),
        "blur_losses_ms": 1000 * (full_s - sharp_s),
        "blur_loss_alone_ms": 1000 * time_call(blur, uv, uv),
        "network_step_ms": 1000 * full_s,
        "network_images_per_s": batch / full_s,
    }


def run_training(config: TrainConfig, folders: list[str], steps: int, legacy: bool, out: Path) -> dict:
    run = dataclasses.replace(config, data=folders, manifest=None, val=None, out=str(out), steps=steps,
                              log_every=max(1, steps // 3), sample_every=0, checkpoint_every=10 * steps,
                              calibration_share=0.0, pool_scan=not legacy, legacy_decode=legacy, progress=False,
                              finetune_blocks=0)
    started = time.perf_counter()
    train(run)
    elapsed = time.perf_counter() - started
    logged = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    rates = [row["images_per_s"] for row in logged if "images_per_s" in row]
    return {"images_per_s": rates[-1], "wall_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="append", required=True, help="Folder of colour photos (repeatable).")
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    parser.add_argument("--steps", type=int, default=30, help="Training steps per data path.")
    parser.add_argument("--pipeline-images", type=int, default=320, help="Photos the input pipeline is timed on.")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {"batch_size": args.batch_size} if args.batch_size else {}
    config = TrainConfig.from_toml(args.recipe, **overrides)
    paths = sorted(path for folder in args.photos for path in find_images(folder))
    report = {"recipe": args.recipe, "photos": len(paths), "batch_size": config.batch_size,
              "gpus": len(tf.config.list_physical_devices("GPU"))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        report["pipeline_images_per_s"] = {
            "seed": time_pipeline(paths, config, True, args.pipeline_images),
            "now": time_pipeline(paths, config, False, args.pipeline_images),
        }
        report["stages"] = stage_times(config, tmp, paths)
        report["training"] = {
            "seed": run_training(config, args.photos, args.steps, True, tmp / "seed"),
            "now": run_training(config, args.photos, args.steps, False, tmp / "now"),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
