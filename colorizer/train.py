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

from colorizer import chroma_bins
from colorizer.color import yuv_to_rgb_in_gamut
from colorizer.data import DecodeCounts, find_images, training_dataset, validation_dataset
from colorizer.loss import colorization_loss, uv_error
from colorizer.model import ModelConfig, build_model, finetune_variables, output_to_uv, uv_model
from colorizer.pool import pooled_photos, read_manifest

log = logging.getLogger(__name__)

# What `colorbot train` runs without --recipe: the recipe of the shipped default model.
DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "default.toml"


@dataclass
class TrainConfig:
    data: str | list[str] = ""  # one folder, or several whose photos are pooled
    manifest: str | None = None  # a file listing more folders to pool, one per line (colorizer/pool.py)
    # Scan the pooled folders once for grayscale photos and duplicates (bytes or look) and train on
    # the rest; off: every file, with grayscale photos skipped as they are decoded (the seed's way).
    pool_scan: bool = True
    legacy_decode: bool = False  # the seed's data path (decode at 2x the crop size); for comparisons
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
    # Fine-tuning on gray: from finetune_start_step on, the backbone's last finetune_blocks blocks
    # (their convolutions) train too, at finetune_lr_multiplier times the learning rate.
    finetune_blocks: int = 0
    finetune_lr_multiplier: float = 0.1
    finetune_start_step: int = 0
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


def make_optimizer(config: TrainConfig, lr=None) -> keras.optimizers.Optimizer:
    lr = learning_rate(config) if lr is None else lr
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

    paths, pool_counts = training_paths(config, out)
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
        predictor = uv_model(model, config.model)
        optimizer = make_optimizer(config)
        if gpus:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        position = tf.Variable(0, dtype=tf.int64, trainable=False)
        finetuned = finetune_variables(model, config.model, config.finetune_blocks)
        finetune_optimizer = make_finetune_optimizer(config, step) if finetuned else None
        if finetune_optimizer:
            finetune_optimizer.build(finetuned)
    parts = {"finetune_optimizer": finetune_optimizer} if finetune_optimizer else {}
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch, position=position,
                                     **parts)
    manager = tf.train.CheckpointManager(checkpoint, out / "checkpoints", max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resumed from %s at step %d", manager.latest_checkpoint, int(step))
    loss_of = make_loss(config, out, paths)

    replicas = strategy.num_replicas_in_sync

    def make_train_step(finetune: bool):
        decoder_variables = model.trainable_variables
        variables = decoder_variables + (finetuned if finetune else [])

        @tf.function
        def train_step(y, uv):
            # A frozen Keras layer's tf.Variables stay trainable underneath, so the tape sees them.
            with tf.GradientTape() as tape:
                output = model(y, training=True)
                loss = loss_of(output, uv)
                scaled = optimizer.scale_loss(loss / replicas) if gpus else loss / replicas
            grads = tape.gradient(scaled, variables)
            encoder_grads = grads[len(decoder_variables):]
            if finetune and gpus:
                # Unscaled by hand, with the scale of this step (applying the decoder's gradients may
                # change it); a step that overflowed moves nothing here either.
                factor = optimizer.scale_loss(tf.constant(1.0))
                finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in encoder_grads])
                encoder_grads = [tf.where(finite, g / factor, tf.zeros_like(g)) for g in encoder_grads]
            optimizer.apply_gradients(zip(grads[: len(decoder_variables)], decoder_variables))
            if finetune:
                finetune_optimizer.apply_gradients(zip(encoder_grads, finetuned))
            pred = output_to_uv(output, config.model)
            return loss, uv_error(pred, uv), pred

        return train_step

    steps_by_phase = {}

    def distributed_step(y, uv):
        finetune = bool(finetuned) and int(step) >= config.finetune_start_step
        if finetune not in steps_by_phase:
            if finetune:
                log.info("step %d: fine-tuning the backbone's last %d blocks (%d weights) at %g x the rate",
                         int(step), config.finetune_blocks, len(finetuned), config.finetune_lr_multiplier)
            steps_by_phase[finetune] = make_train_step(finetune)
        loss, error, pred = strategy.run(steps_by_phase[finetune], args=(y, uv))
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
            check_gray=not config.pool_scan, legacy_decode=config.legacy_decode,
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
                result = evaluate(predictor, val_paths, config)
                _log(writer, history, int(step), result)
            if int(step) == 0:
                raise RuntimeError(f"no usable training photos below {config.data}: {counts.as_dict()}")
    bar.close()
    manager.save(checkpoint_number=int(step))
    if val_paths:
        result = evaluate(predictor, val_paths, config)
        _log(writer, history, int(step), result)
    history.close()
    return {"step": int(step), "files": counts.as_dict(), **({"pool": pool_counts} if pool_counts else {}), **result}


def evaluate(model: keras.Model, paths: list[str], config: TrainConfig) -> dict[str, float]:
    """Validation UV error of a U and V predictor (``uv_model``), next to the gray baseline's (U = V = 0)."""
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


def training_paths(config: TrainConfig, out: Path) -> tuple[list[str], dict[str, int]]:
    """The photos below ``data`` and the manifest's folders: pooled, deduplicated and without
    grayscale ones when ``pool_scan`` is on (cached in the run folder), else every file, sorted;
    and the pool scan's counts (none without it)."""
    folders = [config.data] if isinstance(config.data, str) else list(config.data)
    folders = [folder for folder in folders if folder]
    if config.manifest:
        folders += read_manifest(config.manifest)
    if not folders:
        raise ValueError("no training photos: give data folders or a manifest")
    pool_counts = {}
    if config.pool_scan:
        pool = pooled_photos(folders, out)
        paths, pool_counts = pool.paths, pool.totals()
    else:
        paths = sorted(path for folder in folders for path in find_images(folder))
    if not paths:
        raise FileNotFoundError(f"no usable JPEG, PNG or WebP files found below {', '.join(folders)}")
    return paths, pool_counts


def make_loss(config: TrainConfig, out: Path, paths: list[str]):
    """The loss of the configured head, as a function of (network output, true UV). The
    classification head's rebalancing weights come from the training photos' chroma prior,
    computed once and kept in the run folder (``chroma_prior.json``)."""
    model = config.model
    if model.head == "regression":
        return lambda output, uv: colorization_loss(output, uv, config.loss_norm)
    prior = chroma_bins.read_prior(out, model.bin_size)
    if prior is None:
        counts, photos = chroma_bins.count_photo_chroma(paths, model.bin_size)
        prior = chroma_bins.write_prior(out, counts, model.bin_size, photos)
        log.info("chroma prior from %d photos: %d bins, weights %.2f to %.2f", photos, len(counts),
                 min(prior["weights"]), max(prior["weights"]))
    rebalance = tf.constant(prior["weights"], tf.float32)
    return lambda output, uv: chroma_bins.classification_loss(output, uv, model.bin_size, model.class_stride, rebalance)


def make_finetune_optimizer(config: TrainConfig, step: tf.Variable) -> keras.optimizers.Optimizer:
    """The optimizer of the unfrozen backbone blocks: the main one's kind, at a fraction of its rate
    at the same global step (the schedule keeps running while the encoder is frozen)."""
    rate, multiplier = learning_rate(config), config.finetune_lr_multiplier
    if not 0 < multiplier <= 1 or config.finetune_start_step < 0:
        raise ValueError("finetune_lr_multiplier must be in (0, 1] and finetune_start_step at least 0")
    scaled = (lambda: multiplier * rate(step)) if callable(rate) else multiplier * rate
    return make_optimizer(config, scaled)


def load_run(run_dir: str | Path) -> tuple[TrainConfig, keras.Model, int]:
    """The config, the U and V predictor (``uv_model``) with the latest checkpoint restored, and its step."""
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
    return config, uv_model(model, config.model), int(step)


def _write_or_check_config(out: Path, config: TrainConfig) -> None:
    file = out / "config.json"
    wanted = config.to_dict()
    if file.exists():
        saved = json.loads(file.read_text())
        # A run saved before a ModelConfig option existed has it at its default, which builds the same network.
        if ModelConfig.from_dict(saved.get("model", {})).to_dict() != wanted["model"]:
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
