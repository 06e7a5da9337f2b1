"""The residual encoder: a frozen classifier's feature maps folded back into U and V.

After Ryan Dahl's "Automatic Colorization" (2016). A grayscale image goes through a classifier
(VGG16 by default). The feature maps before each of its first four max-pools are tapped and,
from the deepest up, batch-normed, projected to the width of the next tap, upsampled and added to
it; at full size the 3-channel grayscale input is added and two 3x3 convolutions turn the sum
into U and V through a sigmoid.

Options, all off by default so that a config without them builds the original network exactly:
decoder widths of their own (each tap is then projected to the decoder's width before it is
added), Lite0's expanded tensors as taps, and a classification head (Zhang, Isola and Efros 2016)
that predicts a distribution over quantized chroma bins instead of U and V (colorizer/chroma_bins.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from keras import layers

from colorizer import efficientnet_lite0
from colorizer.chroma_bins import AnnealedMean, annealed_mean, bin_centres
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
# Lite0's expanded tensors (96, 144, 240, 672 channels) at the same resolutions as its narrow taps.
EXPANDED_TAPS = {"efficientnet_lite0": efficientnet_lite0.EXPANDED_TAPS}
HEADS = ("regression", "classification")


@dataclass
class ModelConfig:
    """Everything that determines the network's shape; saved beside every checkpoint and export."""

    backbone: str = "vgg16"  # "vgg16", "resnet50", "efficientnet_lite0", or "tiny" (a small VGG-shaped encoder trained from scratch)
    weights: str | None = "imagenet"  # "imagenet" (for efficientnet_lite0 the packaged file, no download), a local weights file, or None (random)
    input_size: int = 224
    fifth_tap: bool = False
    trainable_backbone: bool = False
    tiny_widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 128])
    # The decoder's width at each used tap's resolution but the deepest, shallowest first (3 or 4
    # values); empty: each tap's own width, as the original. Taps of another width are projected by 1x1.
    decoder_widths: list[int] = field(default_factory=list)
    head_width: int = 3  # the decoder's width at full size, where the gray input is added
    expanded_taps: bool = False  # efficientnet_lite0 only: tap the expanded tensors (EXPANDED_TAPS)
    head: str = "regression"  # regression: U and V; classification: a distribution over chroma bins
    bin_size: float = 0.05  # classification: side of a chroma bin in U and V units
    class_stride: int = 4  # classification: bins are predicted at 1/class_stride of the input, as Zhang's
    temperature: float = 0.38  # classification: the annealed mean's temperature

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONE_TAPS:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONE_TAPS)}")
        if self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, not {self.input_size}")
        folds = (5 if self.fifth_tap else 4) - 1
        if self.decoder_widths and len(self.decoder_widths) != folds:
            raise ValueError(f"decoder_widths needs {folds} widths (one per tap but the deepest), "
                             f"not {len(self.decoder_widths)}")
        if min([*self.decoder_widths, self.head_width]) < 1:
            raise ValueError("decoder_widths and head_width must be positive")
        if self.expanded_taps and self.backbone not in EXPANDED_TAPS:
            raise ValueError(f"expanded_taps needs one of {sorted(EXPANDED_TAPS)}, not {self.backbone!r}")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {HEADS}")
        if self.head == "classification":
            if self.class_stride not in (1, 2, 4, 8) or not 0.005 <= self.bin_size <= 0.2 or self.temperature <= 0:
                raise ValueError("classification needs class_stride 1, 2, 4 or 8, bin_size in [0.005, 0.2] "
                                 "and a positive temperature")

    @property
    def tap_layers(self) -> list[str]:
        if self.expanded_taps:
            return EXPANDED_TAPS[self.backbone]
        return BACKBONE_TAPS[self.backbone]

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
    """The network that is trained: Y in [0, 1] of shape (size, size, 1) to (U, V) of shape
    (size, size, 2), or with the classification head to logits over the chroma bins at
    1/class_stride of the size. ``uv_model`` turns either into a U and V predictor."""
    size = config.input_size
    y = keras.Input((size, size, 1), name="y")
    gray = layers.Concatenate(name="gray_rgb")([y, y, y])
    backbone = _backbone(config)
    taps = backbone(_preprocess(config.backbone, gray))
    taps = list(taps[: 5 if config.fifth_tap else 4])
    # Without decoder_widths, the width at each tap is the tap's own (the original design).
    widths = config.decoder_widths or [tap.shape[-1] for tap in taps[:-1]]

    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_tap_deepest")(taps[-1])
    x = _conv(x, widths[-1], 1, "project_deepest")
    for depth in range(len(taps) - 2, -1, -1):
        tap = taps[depth]
        x = layers.UpSampling2D(tap.shape[1] // x.shape[1], interpolation="bilinear", name=f"up{depth}")(x)
        tap = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_tap{depth}")(tap)
        if tap.shape[-1] != widths[depth]:
            tap = layers.Conv2D(widths[depth], 1, use_bias=False, name=f"tap{depth}_project")(tap)
        x = layers.Add(name=f"add_tap{depth}")([x, tap])
        x = _conv(x, widths[depth - 1] if depth > 0 else config.head_width, 3, f"fuse{depth}")
    if x.shape[1] != size:
        x = layers.UpSampling2D(size // x.shape[1], interpolation="bilinear", name="up_input")(x)
    # The gray value is added to every channel, as the original adds it to each of its three: broadcast,
    # since a copy per channel costs ONNX Runtime a 16-channel concatenation and two transposes at full size.
    x = layers.Add(name="add_gray")([x, y])
    x = _conv(x, config.head_width, 3, "head1")
    if config.head == "classification":
        return _classification_head(x, y, config)
    x = _conv(x, 2, 3, "head2", activation="sigmoid")
    # Sigmoid output 0.5 is gray; 0 and 1 reach the edges of the U and V ranges.
    uv = layers.Rescaling(
        scale=[2 * UV_MAX[0], 2 * UV_MAX[1]], offset=[-UV_MAX[0], -UV_MAX[1]], dtype="float32", name="uv"
    )(x)
    return keras.Model(y, uv, name=f"residual_encoder_{config.backbone}")


def _classification_head(x, y, config: ModelConfig) -> keras.Model:
    """Logits over the chroma bins at 1/class_stride of the input: a full-size distribution over
    hundreds of bins would cost more memory than the rest of the network."""
    if config.class_stride > 1:
        x = layers.AveragePooling2D(config.class_stride, name="class_pool")(x)
    logits = layers.Conv2D(len(bin_centres(config.bin_size)), 1, dtype="float32", name="bin_logits")(x)
    return keras.Model(y, logits, name=f"residual_encoder_{config.backbone}_bins")


def uv_model(network: keras.Model, config: ModelConfig) -> keras.Model:
    """A model from Y to full-size (U, V): the network itself for the regression head; for the
    classification head, the network followed by the annealed mean of its distribution, brought
    up bilinearly to the input size. Export and inference use this, so they need no other change."""
    if config.head == "regression":
        return network
    uv = AnnealedMean(config.bin_size, config.temperature, name="annealed_mean")(network.output)
    if config.class_stride > 1:
        uv = layers.UpSampling2D(config.class_stride, interpolation="bilinear", dtype="float32", name="up_uv")(uv)
    return keras.Model(network.input, uv, name=f"{network.name}_uv")


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
    outputs = [classifier.get_layer(name).output for name in config.tap_layers]
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


def output_to_uv(output, config: ModelConfig):
    """The network's output (``build_model``) as full-size (U, V), in the graph: what ``uv_model``
    computes, for the trainer, which has the output already."""
    if config.head == "regression":
        return output
    uv = annealed_mean(output, tf.constant(bin_centres(config.bin_size)), config.temperature)
    if config.class_stride > 1:
        uv = tf.image.resize(uv, (config.input_size, config.input_size), method="bilinear")
    return uv


# The first part of a backbone layer's name says which block it belongs to.
_BLOCK_NAME = re.compile(r"^(stem|head|block\d+|conv\d_block\d+|conv1|tiny\d+)_")


def backbone_blocks(network: keras.Model, config: ModelConfig) -> list[list[keras.layers.Layer]]:
    """The backbone's layers that hold weights, grouped by block, input side first."""
    blocks: dict[str, list] = {}
    for layer in network.get_layer(f"{config.backbone}_taps").layers:
        match = _BLOCK_NAME.match(layer.name)
        if match and layer.weights:
            blocks.setdefault(match.group(1), []).append(layer)
    return list(blocks.values())


def finetune_variables(network: keras.Model, config: ModelConfig, blocks: int) -> list:
    """The convolution weights of the backbone's last ``blocks`` blocks. Batch norms stay frozen,
    statistics included: fine-tuning batches are small and their statistics noisy."""
    if blocks and (config.backbone == "tiny" or config.trainable_backbone):
        raise ValueError("finetune_blocks applies to a frozen backbone; this one trains whole")
    chosen = backbone_blocks(network, config)[-blocks:] if blocks else []
    return [weight for block in chosen for layer in block
            if not isinstance(layer, layers.BatchNormalization) for weight in layer.weights]
