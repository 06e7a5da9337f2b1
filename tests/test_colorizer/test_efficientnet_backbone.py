"""The EfficientNet-Lite0 backbone: packaged ImageNet weights, offline, with the right layouts.

The classifier checks fail if a converted weight has the wrong layout (a kernel transposed, a
depthwise kernel mixed across channels, a batch norm's statistics swapped) or the input convention
is wrong: a scrambled network does not call a photo of a cat a cat.
"""

from __future__ import annotations

import keras
import numpy as np
import PIL.Image
import pytest
import skimage.data

from colorizer import efficientnet_lite0 as lite
from colorizer.model import ModelConfig, build_model

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def crop_224(rgb: np.ndarray) -> np.ndarray:
    """Shorter side to 256, centre 224x224 crop: RGB 0-255 float32."""
    image = PIL.Image.fromarray(rgb)
    w, h = image.size
    scale = 256 / min(w, h)
    image = image.resize((round(w * scale), round(h * scale)), PIL.Image.BICUBIC)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32)


def gray(rgb_255: np.ndarray) -> np.ndarray:
    return rgb_255 @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture(scope="module")
def classifier():
    return lite.efficientnet_lite0(weights=lite.WEIGHTS_FILE)


def probabilities(model, rgb_255: np.ndarray) -> np.ndarray:
    logits = model.predict(((rgb_255 - lite.MEAN) / lite.STD)[None], verbose=0)[0]
    p = np.exp(logits - logits.max())
    return p / p.sum()


def test_packaged_weights_are_the_whole_converted_network():
    assert lite.WEIGHTS_FILE.is_file()
    assert 5 * 2**20 < lite.WEIGHTS_FILE.stat().st_size < 12 * 2**20
    model = lite.efficientnet_lite0(weights=lite.WEIGHTS_FILE)
    assert model.count_params() == 4_652_008 + 2 * 21_008  # PyTorch's parameters plus BN's moving mean/variance
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]) == 16


@pytest.mark.parametrize("as_gray", [False, True], ids=["colour", "gray"])
def test_classifier_names_a_cat_and_an_espresso(classifier, as_gray):
    cat, coffee = crop_224(skimage.data.chelsea()), crop_224(skimage.data.coffee())
    if as_gray:  # what the colorizer feeds it
        cat, coffee = (np.repeat(gray(x)[..., None], 3, axis=-1) for x in (cat, coffee))
    p_cat, p_coffee = probabilities(classifier, cat), probabilities(classifier, coffee)
    # Measured: colour 282 tiger cat (0.38), 285, 281 together 0.91; espresso 0.95.
    # Gray: 285 Egyptian cat (0.65), cats together 0.94; espresso 0.78.
    assert p_cat.argmax() in CATS
    assert p_cat[list(CATS)].sum() > 0.8
    assert p_coffee.argmax() == ESPRESSO
    # In colour, 0.9 also catches swapped RGB/BGR (0.87) and torchvision's mean/std (0.78).
    assert p_coffee[ESPRESSO] > (0.6 if as_gray else 0.9)


def test_residual_encoder_builds_offline_with_the_packaged_weights(monkeypatch, classifier):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_network)
    model = build_model(ModelConfig(backbone="efficientnet_lite0", input_size=160, fifth_tap=True))
    backbone = model.get_layer("efficientnet_lite0_taps")
    assert not backbone.trainable
    assert [tuple(o.shape[1:]) for o in backbone.outputs] == [
        (80, 80, 16), (40, 40, 24), (20, 20, 40), (10, 10, 112), (5, 5, 1280)
    ]
    assert model.output_shape == (None, 160, 160, 2)
    for name in ("stem_conv", "block11_dw_conv", "head_bn"):
        for got, want in zip(backbone.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trainable and not any(name.startswith(("block", "stem", "head_")) for name in trainable)


def test_colorizer_feeds_the_backbone_its_own_input_convention(classifier):
    """Y in [0, 1] through build_model's preprocessing gives the classifier's features on (255 Y - 127) / 128."""
    model = build_model(ModelConfig(backbone="efficientnet_lite0", fifth_tap=True))
    preprocess = keras.Model(model.input, model.get_layer("efficientnet_preprocess").output)
    y = gray(crop_224(skimage.data.chelsea()))
    got = model.get_layer("efficientnet_lite0_taps").predict(preprocess.predict(y[None, ..., None] / 255, verbose=0), verbose=0)[-1]
    features = keras.Model(classifier.input, classifier.get_layer("head_relu").output)
    want = features.predict(((np.repeat(y[..., None], 3, axis=-1) - lite.MEAN) / lite.STD)[None], verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-3)
