"""The decoder's own widths, Lite0's expanded taps, the classification head and fine-tuning (tiny
configs, random weights); old configs build the old network exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from colorbot.cli import cli
from colorizer import chroma_bins
from colorizer.client import LocalColorizer
from colorizer.export import MODEL_INFO, WEIGHTS_FILE, ExportedModel
from colorizer.model import ModelConfig, build_model, finetune_variables, uv_model
from colorizer.train import TrainConfig, load_run, train
from tests.factories import write_synthetic_folder

REPO = Path(__file__).resolve().parents[2]
TINY = dict(backbone="tiny", weights=None, input_size=64, tiny_widths=[8, 8, 16, 16, 16])


def weight_fingerprint(model: keras.Model) -> tuple[str, int]:
    rows = [[weight.path, list(weight.shape)] for weight in model.weights]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16], len(rows)


@pytest.mark.parametrize("config, fingerprint", [
    # Recorded from the network as it was before decoder widths, expanded taps and heads existed.
    (dict(backbone="tiny", weights=None, input_size=64), ("4d09d4f21ce1ec9a", 66)),
    (dict(backbone="efficientnet_lite0", weights=None, input_size=64, fifth_tap=True), ("75ac700ad13b9053", 300)),
])
def test_a_config_without_the_new_keys_builds_the_same_weights(config, fingerprint):
    assert weight_fingerprint(build_model(ModelConfig.from_dict(config))) == fingerprint


def test_the_shipped_default_models_weights_load_into_the_rebuilt_network():
    folder = REPO / "colorizer" / "default_model"
    info = json.loads((folder / MODEL_INFO).read_text())
    model = build_model(ModelConfig.from_dict({**info["config"], "weights": None}))
    model.load_weights(folder / WEIGHTS_FILE)
    # The shipped decoder is the wide one: 16 channels at full size where the original had 3.
    assert model.get_layer("head2_conv").kernel.shape == (3, 3, info["config"]["head_width"], 2)
    assert info["config"]["head_width"] == 16 and info["config"]["expanded_taps"]


def test_the_shipped_onnx_network_gives_the_shipped_savedmodels_and_the_rebuilt_networks_chroma():
    # The ONNX network is exported again whenever the model code is made cheaper to run (the gray input
    # is broadcast, not copied per channel); the SavedModel beside it is the reference it must still match.
    folder = REPO / "colorizer" / "default_model"
    shipped = ExportedModel(folder)
    assert shipped.runtime == "onnxruntime"
    y = np.random.default_rng(7).random((2, 224, 224, 1), np.float32)
    by_onnx = shipped.colorizer.predict_uv(y)
    np.testing.assert_allclose(by_onnx, shipped.saved.signatures["predict_uv"](y=tf.constant(y))["uv"].numpy(),
                               atol=1e-5)
    model = build_model(ModelConfig.from_dict({**shipped.info.config, "weights": None}))
    model.load_weights(folder / WEIGHTS_FILE)
    np.testing.assert_allclose(by_onnx, model.predict(y, verbose=0) * shipped.info.chroma_scale, atol=1e-5)
    assert np.abs(by_onnx - by_onnx.mean()).max() > 1e-2  # a network that ignored its input would show


def test_decoder_widths_are_set_independently_of_the_taps():
    model = build_model(ModelConfig(**TINY, decoder_widths=[12, 20, 24], head_width=10))
    kernels = {name: tuple(model.get_layer(f"{name}_conv").kernel.shape)
               for name in ("project_deepest", "fuse2", "fuse1", "fuse0", "head1", "head2")}
    assert kernels == {"project_deepest": (1, 1, 16, 24), "fuse2": (3, 3, 24, 20), "fuse1": (3, 3, 20, 12),
                       "fuse0": (3, 3, 12, 10), "head1": (3, 3, 10, 10), "head2": (3, 3, 10, 2)}
    # Taps of another width than the decoder's are projected before the residual addition.
    assert tuple(model.get_layer("tap1_project").kernel.shape) == (1, 1, 8, 20)
    assert model.output_shape == (None, 64, 64, 2)
    with pytest.raises(ValueError, match="decoder_widths needs 3"):
        ModelConfig(**TINY, decoder_widths=[8, 8])


def test_lite0_expanded_taps_are_the_wide_tensors():
    config = ModelConfig(backbone="efficientnet_lite0", weights=None, input_size=32, fifth_tap=True,
                         expanded_taps=True, decoder_widths=[8, 8, 8, 8], head_width=4)
    taps = build_model(config).get_layer("efficientnet_lite0_taps").outputs
    assert [tuple(t.shape[1:]) for t in taps] == [(16, 16, 96), (8, 8, 144), (4, 4, 240), (2, 2, 672), (1, 1, 1280)]
    with pytest.raises(ValueError, match="expanded_taps"):
        ModelConfig(**TINY, expanded_taps=True)


def test_the_bins_cover_the_gamut_and_the_prior_is_normalised():
    centres = chroma_bins.bin_centres(0.05)
    assert 250 < len(centres) < 400  # Zhang: 313 bins in a*b*
    assert chroma_bins.uv_in_gamut(centres).all() and [0.0, 0.0] in centres.tolist()
    counts = np.zeros(len(centres))
    counts[:5], counts[100] = 1.0, 500.0
    smoothed = chroma_bins.smooth_prior(counts, 0.05)
    weights = chroma_bins.rebalancing_weights(smoothed)
    assert smoothed.sum() == pytest.approx(1.0) and (smoothed >= 0).all()
    assert np.sum(smoothed * weights) == pytest.approx(1.0)  # E[w] = 1 under the smoothed prior
    assert weights[100] < 1.0 < weights[300]  # common colours weigh less than unseen ones
    assert weights.max() / weights.min() <= 2 * len(centres)  # bounded by the uniform mix (λ = 0.5)


def test_the_annealed_mean_of_a_one_hot_distribution_is_that_bins_centre_and_t_to_0_the_mode():
    centres = chroma_bins.bin_centres(0.05)
    one_hot = np.full((1, len(centres)), -1e4, np.float32)
    one_hot[0, 42] = 0.0
    for temperature in (1.0, 0.38):
        uv = chroma_bins.annealed_mean(tf.constant(one_hot), tf.constant(centres), temperature)
        np.testing.assert_allclose(uv.numpy()[0], centres[42], atol=1e-6)
    logits = np.zeros((1, len(centres)), np.float32)
    logits[0, [10, 200]] = [3.0, 2.5]
    mode = chroma_bins.annealed_mean(tf.constant(logits), tf.constant(centres), 0.01).numpy()[0]
    mean = chroma_bins.annealed_mean(tf.constant(logits), tf.constant(centres), 1.0).numpy()[0]
    np.testing.assert_allclose(mode, centres[10], atol=1e-4)
    assert np.linalg.norm(mean - centres[10]) > 0.05


def test_soft_targets_and_the_classification_loss():
    uv = tf.constant([[[[0.101, -0.049]]]])
    indices, weights = chroma_bins.soft_encode(uv, 0.05)
    centres = chroma_bins.bin_centres(0.05)
    np.testing.assert_allclose(centres[int(indices[0, 0, 0, 0])], [0.1, -0.05], atol=1e-6)
    assert weights.shape == (1, 1, 1, 5) and float(tf.reduce_sum(weights)) == pytest.approx(1.0)
    assert np.all(np.diff(weights.numpy()[0, 0, 0]) <= 1e-7)  # nearest bin weighs most

    true = tf.fill((1, 8, 8, 2), 0.1)
    nearest = int(chroma_bins.nearest_bins(true[:1, :1, :1], centres, k=1)[0][0, 0, 0, 0])
    right = np.full((1, 2, 2, len(centres)), -5.0, np.float32)
    right[..., nearest] = 5.0
    rebalance = tf.ones(len(centres))
    good = float(chroma_bins.classification_loss(tf.constant(right), true, 0.05, 4, rebalance))
    flat = float(chroma_bins.classification_loss(tf.zeros((1, 2, 2, len(centres))), true, 0.05, 4, rebalance))
    assert np.isfinite(good) and good < flat
    assert flat == pytest.approx(np.log(len(centres)), rel=1e-4)  # uniform prediction: log Q


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vivid")
    data = write_synthetic_folder(tmp / "photos", 24, seed=4, size=64)
    config = TrainConfig(
        data=str(data), val=str(data), out=str(tmp / "run"), steps=3, batch_size=4, optimizer="adam", lr=0.003,
        model=ModelConfig(**TINY, head="classification", decoder_widths=[8, 12, 16], head_width=8),
        checkpoint_every=3, sample_every=3, log_every=1, val_images=8, progress=False)
    result = train(config)
    return tmp, config, result


def test_the_classification_head_trains_with_a_saved_prior(classification_run):
    tmp, config, result = classification_run
    assert result["step"] == 3 and np.isfinite(result["val_uv_error"])
    assert result["pool"]["found"] == 24 and result["pool"]["kept"] == len(json.loads(
        (tmp / "run" / "photo_pool.json").read_text())["paths"])
    prior = json.loads((tmp / "run" / chroma_bins.PRIOR_FILE).read_text())
    assert prior["photos"] == result["pool"]["kept"] and sum(prior["counts"]) == prior["photos"] * 64 * 64
    assert np.dot(prior["smoothed_prior"], prior["weights"]) == pytest.approx(1.0)
    losses = [row["loss"] for row in map(json.loads, (tmp / "run" / "history.jsonl").read_text().splitlines())
              if "loss" in row]
    assert all(np.isfinite(losses))


def test_a_classification_export_serves_uv_through_the_annealed_mean(classification_run):
    tmp, config, _ = classification_run
    export = tmp / "export"
    result = CliRunner().invoke(cli, ["export", str(tmp / "run"), "--out", str(export), "--chroma-scale", "1"])
    assert result.exit_code == 0, result.output
    assert (export / chroma_bins.PRIOR_FILE).is_file()
    _, predictor, _ = load_run(tmp / "run")
    network = predictor.get_layer("annealed_mean").input
    assert network.shape[1:] == (16, 16, len(chroma_bins.bin_centres(0.05)))

    colorizer = LocalColorizer(export)
    y = tf.random.uniform((1, 64, 64, 1), seed=3)
    served = colorizer.model.saved.signatures["predict_uv"](y=y)["uv"].numpy()
    np.testing.assert_allclose(served, predictor(y).numpy(), atol=1e-5)
    photo = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    assert colorizer.colorize([photo])[0].shape == (48, 80, 3)


def test_the_uv_model_of_a_regression_network_is_the_network():
    config = ModelConfig(**TINY)
    network = build_model(config)
    assert uv_model(network, config) is network


def test_fine_tuning_unfreezes_the_last_blocks_at_the_configured_step(tmp_path):
    data = write_synthetic_folder(tmp_path / "photos", 16, seed=6, size=64)
    model_config = ModelConfig(backbone="efficientnet_lite0", weights=None, input_size=32, fifth_tap=True)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), model=model_config, steps=5, batch_size=4,
                         optimizer="adam", lr=0.01, schedule="cosine", finetune_blocks=1, finetune_lr_multiplier=0.5,
                         finetune_start_step=3, checkpoint_every=3, sample_every=0, progress=False)
    keras.utils.set_random_seed(config.seed)
    initial = build_model(model_config)
    train(config)

    def kernels(step: int) -> dict[str, np.ndarray]:
        model = build_model(model_config)
        tf.train.Checkpoint(model=model).restore(str(tmp_path / "run" / "checkpoints" / f"ckpt-{step}")).expect_partial()
        return {name: model.get_layer("efficientnet_lite0_taps").get_layer(name).kernel.numpy()
                for name in ("head_conv", "block15_project_conv")}

    before = {name: initial.get_layer("efficientnet_lite0_taps").get_layer(name).kernel.numpy()
              for name in ("head_conv", "block15_project_conv")}
    at_start, at_end = kernels(3), kernels(5)
    np.testing.assert_array_equal(at_start["head_conv"], before["head_conv"])  # frozen for steps 1-3
    # Trained in steps 4-5 (by little: a random 32 px network passes the head small gradients).
    assert np.abs(at_end["head_conv"] - before["head_conv"]).max() > 0
    np.testing.assert_array_equal(at_end["block15_project_conv"], before["block15_project_conv"])  # not unfrozen
    assert [w.path for w in finetune_variables(initial, model_config, 1)] == ["head_conv/kernel"]
    with pytest.raises(ValueError, match="frozen backbone"):
        finetune_variables(build_model(ModelConfig(**TINY)), ModelConfig(**TINY), 1)


def test_train_without_a_recipe_uses_the_default_recipe(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("colorizer.train.train", lambda config: seen.append(config) or {"step": 0})
    data = write_synthetic_folder(tmp_path / "photos", 2, seed=1)
    manifest = tmp_path / "folders.txt"
    manifest.write_text("# more photos\nphotos\n")
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--manifest", str(manifest),
                                      "--out", str(tmp_path / "run"), "--steps", "7"])
    assert result.exit_code == 0, result.output
    default = TrainConfig.from_toml(REPO / "colorizer" / "recipes" / "default.toml")
    assert seen[0].model == default.model and seen[0].lr == default.lr and seen[0].steps == 7
    assert seen[0].manifest == str(manifest) and seen[0].data == [str(data)]


@pytest.mark.parametrize("recipe", sorted((REPO / "colorizer" / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_a_valid_config(recipe):
    config = TrainConfig.from_toml(recipe)
    assert config.steps > 0 and config.model.input_size == 224


def test_a_run_saved_before_the_new_options_resumes(tmp_path):
    from colorizer.train import _write_or_check_config

    old_keys = {"backbone": "tiny", "weights": None, "input_size": 64, "fifth_tap": False,
                "trainable_backbone": False, "tiny_widths": [8, 8, 16, 16, 16]}
    (tmp_path / "config.json").write_text(json.dumps({"model": old_keys}))
    _write_or_check_config(tmp_path, TrainConfig(model=ModelConfig(**TINY)))
    with pytest.raises(ValueError, match="different model"):
        _write_or_check_config(tmp_path, TrainConfig(model=ModelConfig(**TINY, head_width=4)))


def test_the_blur_terms_equal_blurring_prediction_and_truth_apart():
    """The loss blurs the difference once with a full convolution; the seed blurred both with a depthwise one."""
    from colorizer.loss import BLUR_SIZES, colorization_loss, gaussian_kernel, uv_distance

    rng = np.random.default_rng(0)
    pred, true = (tf.constant(rng.uniform(-0.3, 0.3, (2, 32, 32, 2)), tf.float32) for _ in range(2))

    def depthwise_blur(uv, size):
        pad = size // 2
        padded = tf.pad(uv, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        return tf.nn.depthwise_conv2d(padded, gaussian_kernel(size), [1, 1, 1, 1], "VALID")

    terms = [tf.reduce_mean(uv_distance(pred, true))]
    terms += [tf.reduce_mean(uv_distance(depthwise_blur(pred, s), depthwise_blur(true, s))) for s in BLUR_SIZES]
    assert float(colorization_loss(pred, true)) == pytest.approx(float(tf.add_n(terms) / 3), rel=1e-5)
