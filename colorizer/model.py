"""The residual encoder: a frozen classifier's feature maps folded back into U and V.

After Ryan Dahl's "Automatic Colorization" (2016). A grayscale image goes through a classifier
(VGG16 by default). The feature maps before each of its first four max-pools are tapped and,
from the deepest up, batch-normed, projected to the width of the next tap, upsampled and added to
it; at full size the 3-channel grayscale input is added and two 3x3 convolutions turn the sum
into U and V through a sigmoid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import keras
from keras import layers

from colorizer import efficientnet_lite0
from colorizer.color import UV_MAX

# Moving statistics follow training faster than Keras' default 0.99, so short CPU runs validate fairly.
BN_MOMENTUM = 0.9

# Each backbone's taps, shallowest first: the tensors before its successive downsamplings.
BACKBONE_TAPS = {
    "vgg16": ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"],
    "resnet50": [
        "conv1_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ],
    "efficientnet_lite0": efficientnet_lite0.TAPS,
    "tiny": ["tiny1_conv2", "tiny2_conv2", "tiny3_conv2", "tiny4_conv2", "tiny5_conv2"],
}


@dataclass
class ModelConfig:
    """Everything that determines the network's shape; saved beside every checkpoint and export."""

    backbone: str = "vgg16"  # "vgg16", "resnet50", "efficientnet_lite0", or "tiny" (a small VGG-shaped encoder trained from scratch)
    weights: str | None = "imagenet"  # "imagenet" (for efficientnet_lite0 the packaged file, no download), a local weights file, or None (random)
    input_size: int = 224
    fifth_tap: bool = False
    trainable_backbone: bool = False
    tiny_widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 128])

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONE_TAPS:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONE_TAPS)}")
        if self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, not {self.input_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


def build_model(config: ModelConfig) -> keras.Model:
    """The colorizer: Y in [0, 1] of shape (size, size, 1) to (U, V) of shape (size, size, 2)."""
    size = config.input_size
    y = keras.Input((size, size, 1), name="y")
    gray = layers.Concatenate(name="gray_rgb")([y, y, y])
    backbone = _backbone(config)
    taps = backbone(_preprocess(config.backbone, gray))
    taps = list(taps[: 5 if config.fifth_tap else 4])

    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_tap_deepest")(taps[-1])
    x = _conv(x, taps[-2].shape[-1], 1, "project_deepest")
    for depth in range(len(taps) - 2, -1, -1):
        tap = taps[depth]
        x = layers.UpSampling2D(tap.shape[1] // x.shape[1], interpolation="bilinear", name=f"up{depth}")(x)
        x = layers.Add(name=f"add_tap{depth}")([x, layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_tap{depth}")(tap)])
        width = taps[depth - 1].shape[-1] if depth > 0 else 3
        x = _conv(x, width, 3, f"fuse{depth}")
    if x.shape[1] != size:
        x = layers.UpSampling2D(size // x.shape[1], interpolation="bilinear", name="up_input")(x)
    x = layers.Add(name="add_gray")([x, gray])
    x = _conv(x, 3, 3, "head1")
    x = _conv(x, 2, 3, "head2", activation="sigmoid")
    # Sigmoid output 0.5 is gray; 0 and 1 reach the edges of the U and V ranges.
    uv = layers.Rescaling(
        scale=[2 * UV_MAX[0], 2 * UV_MAX[1]], offset=[-UV_MAX[0], -UV_MAX[1]], dtype="float32", name="uv"
    )(x)
    return keras.Model(y, uv, name=f"residual_encoder_{config.backbone}")


def _conv(x, filters: int, kernel: int, name: str, activation: str = "relu"):
    """Convolution without bias; the batch norm after it carries the offset."""
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_{activation}")(x)


def _preprocess(backbone: str, gray_rgb):
    """The backbone's own input convention, applied to a [0, 1] image repeated to 3 channels."""
    if backbone == "tiny":
        return gray_rgb
    if backbone == "efficientnet_lite0":  # (255 x - 127) / 128, the source model's convention
        lite = efficientnet_lite0
        return layers.Rescaling(255.0 / lite.STD, offset=-lite.MEAN / lite.STD, name="efficientnet_preprocess")(gray_rgb)
    # VGG16 and ResNet50 were trained on caffe-style input: BGR, 0-255, ImageNet mean subtracted.
    # The three channels are equal here, so the channel order does not matter.
    return layers.Rescaling(255.0, offset=[-103.939, -116.779, -123.68], name="caffe_preprocess")(gray_rgb)


def _backbone(config: ModelConfig) -> keras.Model:
    """The encoder as a model returning its five taps, frozen unless configured otherwise."""
    shape = (config.input_size, config.input_size, 3)
    if config.backbone == "tiny":
        classifier = _tiny_encoder(shape, config.tiny_widths)
    elif config.backbone == "efficientnet_lite0":
        weights = efficientnet_lite0.WEIGHTS_FILE if config.weights == "imagenet" else config.weights
        if weights and not Path(weights).is_file():
            raise FileNotFoundError(f"backbone weights file not found: {weights}")
        classifier = efficientnet_lite0.efficientnet_lite0(shape, include_top=False, weights=weights)
    else:
        application = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}[
            config.backbone
        ]
        remote = config.weights == "imagenet"
        classifier = application(include_top=False, weights="imagenet" if remote else None, input_shape=shape)
        if config.weights and not remote:
            if not Path(config.weights).is_file():
                raise FileNotFoundError(f"backbone weights file not found: {config.weights}")
            classifier.load_weights(config.weights)
    outputs = [classifier.get_layer(name).output for name in BACKBONE_TAPS[config.backbone]]
    backbone = keras.Model(classifier.input, outputs, name=f"{config.backbone}_taps")
    backbone.trainable = config.trainable_backbone or config.backbone == "tiny"
    return backbone


def _tiny_encoder(shape, widths: list[int]) -> keras.Model:
    """A VGG-shaped encoder (two convolutions per block) small enough to train on a CPU."""
    inputs = keras.Input(shape)
    x = inputs
    for block, width in enumerate(widths, start=1):
        for conv in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"tiny{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(name=f"tiny{block}_pool")(x)
    return keras.Model(inputs, x, name="tiny_encoder")
