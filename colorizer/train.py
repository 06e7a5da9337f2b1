"""Training the residual encoder, readable top to bottom.

One config object holds every choice. A run lives in one folder: ``config.json``, checkpoints
(model, optimizer, step, and where in the epoch's order the data stands), TensorBoard logs and
``history.jsonl``. Starting a run on a folder that has checkpoints resumes it exactly: same
step, same optimizer state, and the next batch is the one the killed run would have used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from colorizer.color import yuv_to_rgb_in_gamut
from colorizer.data import DecodeCounts, find_images, training_dataset, validation_dataset
from colorizer.loss import colorization_loss, uv_error
from colorizer.model import ModelConfig, build_model

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str | list[str] = ""  # one folder, or several whose photos are pooled
    val: str | None = None
    out: str = "runs/colorizer"
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 10_000
    batch_size: int = 16
    optimizer: str = "sgd"  # sgd | momentum | adam
    lr: float = 0.1
    schedule: str = "constant"  # constant | cosine | step
    warmup_steps: int = 0
    min_crop_area: float = 0.25  # random-resized crops cover this share of the photo or more
    loss_norm: str = "l2"  # l2: Euclidean UV distance, as the post; l1: absolute, as the author's code
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    val_images: int = 500
    # This share of the training photos (chosen by a hash of the file name, so the same photos every run)
    # is never trained on; `colorbot export` fits the chroma scale on them.
    calibration_share: float = 0.0
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        model = ModelConfig.from_dict(data.pop("model", {}))
        return cls(model=model, **data)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def split_calibration(paths: list[str], share: float) -> tuple[list[str], list[str]]:
    """(training, calibration) paths: a file is for calibration when a hash of its name says so.

    Hashing the name rather than shuffling keeps the split the same whatever else is in the folders.
    """
    if not 0 <= share < 1:
        raise ValueError(f"calibration_share must be in [0, 1), not {share}")
    limit = round(share * 10_000)
    chosen = {path for path in paths
              if int(hashlib.sha256(Path(path).name.encode()).hexdigest()[:8], 16) % 10_000 < limit}
    return [p for p in paths if p not in chosen], [p for p in paths if p in chosen]


def learning_rate(config: TrainConfig):
    """A constant rate, or a schedule over ``config.steps`` (with optional linear warm-up for cosine)."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        if config.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                config.lr / 100,
                decay_steps=max(1, config.steps - config.warmup_steps),
                alpha=0.01,
                warmup_target=config.lr,
                warmup_steps=config.warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=config.steps, alpha=0.01)
    if config.schedule == "step":
        bounds = [int(config.steps * f) for f in (0.5, 0.75)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, [config.lr, config.lr / 10, config.lr / 100])
    raise ValueError(f"unknown schedule {config.schedule!r}; use constant, cosine or step")


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    lr = learning_rate(config)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use sgd, momentum or adam")


def sample_strip(y: tf.Tensor, pred: tf.Tensor, true: tf.Tensor, count: int = 4) -> tf.Tensor:
    """Rows of input | output | truth images for TensorBoard."""
    gray = tf.repeat(y[:count], 3, axis=-1)
    return tf.concat(
        [gray, yuv_to_rgb_in_gamut(y[:count], pred[:count]), yuv_to_rgb_in_gamut(y[:count], true[:count])], axis=2
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (or resume) the run in ``config.out``; returns the final step and validation figures."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_or_check_config(out, config)
    keras.utils.set_random_seed(config.seed)

    folders = [config.data] if isinstance(config.data, str) else list(config.data)
    paths = sorted(path for folder in folders for path in find_images(folder))
    if not paths:
        raise FileNotFoundError(f"no JPEG, PNG or WebP files found below {config.data}")
    paths, calibration_paths = split_calibration(paths, config.calibration_share)
    (out / "calibration.txt").write_text("".join(f"{path}\n" for path in calibration_paths), encoding="utf-8")
    val_paths = find_images(config.val)[: config.val_images] if config.val else []
    log.info("training on %d files, validating on %d, %d kept for calibration",
             len(paths), len(val_paths), len(calibration_paths))

    # Several GPUs: one replica each. Any GPU: float16 compute with loss scaling.
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    with strategy.scope():
        model = build_model(config.model)
        optimizer = make_optimizer(config)
        if gpus:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        position = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch, position=position)
    manager = tf.train.CheckpointManager(checkpoint, out / "checkpoints", max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resumed from %s at step %d", manager.latest_checkpoint, int(step))

    replicas = strategy.num_replicas_in_sync

    @tf.function
    def train_step(y, uv):
        with tf.GradientTape() as tape:
            pred = model(y, training=True)
            loss = colorization_loss(pred, uv, config.loss_norm)
            scaled = optimizer.scale_loss(loss / replicas) if gpus else loss / replicas
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, uv_error(pred, uv), pred

    def distributed_step(y, uv):
        loss, error, pred = strategy.run(train_step, args=(y, uv))
        mean = tf.distribute.ReduceOp.MEAN
        return strategy.reduce(mean, loss, None), strategy.reduce(mean, error, None), pred

    writer = tf.summary.create_file_writer(str(out / "tensorboard"))
    counts = DecodeCounts()
    history = open(out / "history.jsonl", "a", encoding="utf-8")
    bar = tqdm(total=config.steps, initial=int(step), disable=not config.progress, unit="step", dynamic_ncols=True)
    started, images_seen, result = time.monotonic(), 0, {}
    while int(step) < config.steps:
        dataset = training_dataset(
            paths, size=config.model.input_size, batch_size=config.batch_size, seed=config.seed,
            epoch=int(epoch), start=int(position), counts=counts, min_crop_area=config.min_crop_area,
        )
        epoch_finished = True
        for y, uv, positions in strategy.experimental_distribute_dataset(dataset) if replicas > 1 else dataset:
            loss, error, pred = distributed_step(y, uv)
            step.assign_add(1)
            position.assign(int(tf.reduce_max(strategy.gather(positions, 0) if replicas > 1 else positions)) + 1)
            images_seen += config.batch_size
            bar.update(1)
            s = int(step)
            if s % config.log_every == 0 or s == config.steps:
                rate = images_seen / (time.monotonic() - started)
                bar.set_postfix(loss=f"{float(loss):.4f}", uv_error=f"{float(error):.4f}", img_s=f"{rate:.1f}")
                _log(writer, history, s, {"loss": float(loss), "uv_error": float(error), "images_per_s": rate,
                                          "lr": float(_current_lr(optimizer))})
            if config.sample_every and s % config.sample_every == 0 and replicas == 1:
                with writer.as_default():
                    tf.summary.image("input|output|truth", sample_strip(y, pred, uv), step=s, max_outputs=4)
            if s % config.checkpoint_every == 0:
                manager.save(checkpoint_number=s)
            if s >= config.steps:
                epoch_finished = False
                break
        if epoch_finished:
            epoch.assign_add(1)
            position.assign(0)
            log.info("epoch %d done at step %d; files %s", int(epoch), int(step), counts.as_dict())
            if val_paths:
                result = evaluate(model, val_paths, config)
                _log(writer, history, int(step), result)
            if int(step) == 0:
                raise RuntimeError(f"no usable training photos below {config.data}: {counts.as_dict()}")
    bar.close()
    manager.save(checkpoint_number=int(step))
    if val_paths:
        result = evaluate(model, val_paths, config)
        _log(writer, history, int(step), result)
    history.close()
    return {"step": int(step), "files": counts.as_dict(), **result}


def evaluate(model: keras.Model, paths: list[str], config: TrainConfig) -> dict[str, float]:
    """Validation UV error, next to the gray baseline's (predicting U = V = 0)."""
    counts = DecodeCounts()
    errors, gray_errors, weights = [], [], []
    for y, uv in validation_dataset(paths, size=config.model.input_size, batch_size=config.batch_size, counts=counts):
        pred = model(y, training=False)
        errors.append(float(uv_error(pred, uv)))
        gray_errors.append(float(uv_error(tf.zeros_like(uv), uv)))
        weights.append(int(y.shape[0]))
    if not weights:
        return {}
    return {
        "val_uv_error": float(np.average(errors, weights=weights)),
        "val_gray_uv_error": float(np.average(gray_errors, weights=weights)),
        "val_images": int(sum(weights)),
    }


def load_run(run_dir: str | Path) -> tuple[TrainConfig, keras.Model, int]:
    """The config, the model with its latest checkpoint restored, and that checkpoint's step."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run: no config.json")
    config = TrainConfig.from_dict(json.loads(config_file.read_text()))
    # The checkpoint holds every weight, the backbone's too: nothing needs downloading.
    model = build_model(dataclasses.replace(config.model, weights=None))
    latest = tf.train.latest_checkpoint(run_dir / "checkpoints")
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet")
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, step=step).restore(latest).expect_partial()
    return config, model, int(step)


def _write_or_check_config(out: Path, config: TrainConfig) -> None:
    file = out / "config.json"
    wanted = config.to_dict()
    if file.exists():
        saved = json.loads(file.read_text())
        if saved.get("model") != wanted["model"]:
            raise ValueError(f"{out} holds a run of a different model; choose another --out")
    file.write_text(json.dumps(wanted, indent=2))


def _current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def _log(writer, history, step: int, values: dict[str, float]) -> None:
    with writer.as_default():
        for name, value in values.items():
            if isinstance(value, float) and math.isfinite(value):
                tf.summary.scalar(name, value, step=step)
    history.write(json.dumps({"step": step, **values}) + "\n")
    history.flush()
