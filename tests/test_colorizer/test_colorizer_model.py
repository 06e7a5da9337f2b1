"""The network's shape, ranges and options, with random weights (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from colorizer.color import U_MAX, V_MAX, yuv_to_rgb_in_gamut
from colorizer.loss import colorization_loss, gaussian_kernel, uv_distance, uv_error
from colorizer.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def vgg():
    return build_model(ModelConfig(weights=None))


def test_vgg16_taps_and_decoder_follow_the_design(vgg):
    assert vgg.input_shape == (None, 224, 224, 1)
    assert vgg.output_shape == (None, 224, 224, 2)
    backbone = vgg.get_layer("vgg16_taps")
    assert [tuple(o.shape[1:]) for o in backbone.outputs[:4]] == [
        (224, 224, 64),
        (112, 112, 128),
        (56, 56, 256),
        (28, 28, 512),
    ]
    assert not backbone.trainable
    # 1x1 projection of the deepest tap to 256, then 3x3 convs to 128, 64, 3, 3 and 2.
    widths = [(vgg.get_layer(f"{n}_conv").kernel.shape) for n in
              ("project_deepest", "fuse2", "fuse1", "fuse0", "head1", "head2")]
    assert [tuple(w) for w in widths] == [
        (1, 1, 512, 256), (3, 3, 256, 128), (3, 3, 128, 64), (3, 3, 64, 3), (3, 3, 3, 3), (3, 3, 3, 2)
    ]
    assert all(not vgg.get_layer(f"{n}_conv").use_bias for n in ("project_deepest", "fuse0", "head2"))
    trainable = {w.path.split("/")[0] for w in vgg.trainable_weights}
    assert not any(name.startswith("block") for name in trainable)


def test_output_stays_inside_the_uv_ranges(vgg):
    y = tf.random.uniform((2, 224, 224, 1), seed=1)
    uv = vgg(y, training=False).numpy()
    assert uv.shape == (2, 224, 224, 2)
    assert np.all(np.abs(uv[..., 0]) <= U_MAX + 1e-6)
    assert np.all(np.abs(uv[..., 1]) <= V_MAX + 1e-6)


@pytest.mark.parametrize(
    "config, deepest",
    [
        (ModelConfig(weights=None, fifth_tap=True), (14, 14, 512)),
        (ModelConfig(backbone="resnet50", weights=None), (14, 14, 1024)),
        (ModelConfig(backbone="tiny", weights=None, input_size=64), (8, 8, 128)),
    ],
)
def test_options_build_and_keep_the_output_shape(config, deepest):
    model = build_model(config)
    assert model.output_shape == (None, config.input_size, config.input_size, 2)
    taps = model.get_layer(f"{config.backbone}_taps").outputs
    used = taps[: 5 if config.fifth_tap else 4]
    assert tuple(used[-1].shape[1:]) == deepest


def test_unfreezing_the_backbone_makes_it_trainable():
    model = build_model(ModelConfig(weights=None, trainable_backbone=True))
    assert model.get_layer("vgg16_taps").trainable


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        ModelConfig(backbone="alexnet")
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelConfig(input_size=100)
    with pytest.raises(FileNotFoundError, match="weights file"):
        build_model(ModelConfig(weights="/no/such/file.h5"))


def test_loss_hand_computed():
    true = tf.zeros((1, 8, 8, 2))
    pred = tf.concat([tf.fill((1, 8, 8, 1), 0.3), tf.fill((1, 8, 8, 1), 0.4)], axis=-1)
    # A constant offset survives blurring unchanged: every term is the same distance.
    assert float(colorization_loss(pred, true, "l2")) == pytest.approx(0.5, abs=1e-4)
    assert float(colorization_loss(pred, true, "l1")) == pytest.approx(0.7, abs=1e-4)
    assert float(uv_error(pred, true)) == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError):
        uv_distance(pred, true, "l3")


def test_blurred_terms_forgive_misplaced_detail():
    true = np.zeros((1, 16, 16, 2), np.float32)
    true[0, 8, 8] = 1.0
    shifted = np.roll(true, 1, axis=2)
    sharp = float(tf.reduce_mean(uv_distance(tf.constant(shifted), tf.constant(true))))
    combined = float(colorization_loss(tf.constant(shifted), tf.constant(true)))
    assert combined < sharp


def test_gaussian_kernels_are_normalised():
    for size in (3, 5):
        kernel = gaussian_kernel(size)
        assert kernel.shape == (size, size, 2, 1)
        assert kernel[..., 0, 0].sum() == pytest.approx(1.0)
        assert kernel[size // 2, size // 2, 0, 0] == kernel.max()


def test_recombination_keeps_luminance_even_out_of_gamut():
    y = tf.constant([[[0.95]], [[0.05]], [[0.5]]])
    uv = tf.constant([[[0.4, 0.6]], [[-0.4, -0.6]], [[0.1, -0.1]]])
    rgb = yuv_to_rgb_in_gamut(y, uv)
    assert np.all((rgb.numpy() >= 0) & (rgb.numpy() <= 1))
    np.testing.assert_allclose(tf.image.rgb_to_yuv(rgb)[..., 0].numpy(), y[..., 0].numpy(), atol=1e-6)
    # In gamut, nothing is changed.
    np.testing.assert_allclose(tf.image.rgb_to_yuv(rgb)[2, 0, 1:].numpy(), [0.1, -0.1], atol=1e-6)
