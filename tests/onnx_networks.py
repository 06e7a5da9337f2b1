"""Tiny ONNX colorization networks with random weights, one per published convention.

Each is a few convolutions ending in the activation its convention implies, so its output
lies in the declared range whatever the weights: Zhang et al.'s (Lab L in, ab out), DDColor's
and DeOldify's (gray RGB with ImageNet mean/std in, RGB 0..1 out), and a TensorFlow-style
NHWC Y in, UV out. ``write_network`` saves one with its sidecar declaration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
U_MAX, V_MAX = 0.43601035, 0.61497538


class GraphBuilder:
    """Nodes and random initializers, named in order."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, values) -> str:
        name = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        return name

    def op(self, kind: str, *inputs: str, **attributes) -> str:
        output = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def conv(self, x: str, channels_in: int, channels_out: int) -> str:
        weights = self.constant(self.rng.normal(0, 0.5, (channels_out, channels_in, 3, 3)))
        bias = self.constant(self.rng.normal(0, 0.1, channels_out))
        return self.op("Conv", x, weights, bias, kernel_shape=[3, 3], pads=[1, 1, 1, 1])

    def model(self, x_info: onnx.ValueInfoProto, out: str, out_shape: list) -> onnx.ModelProto:
        output = helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)
        self.nodes.append(helper.make_node("Identity", [out], ["out"]))
        graph = helper.make_graph(self.nodes, "colorizer", [x_info], [output], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
        onnx.checker.check_model(model)
        return model


def zhang_style(size: int = 64, seed: int = 0, quarter_output: bool = True) -> onnx.ModelProto:
    """L - 50 in (1, 1, size, size), ab in -110..110 out, at a quarter of the input's size like the Caffe model's."""
    graph = GraphBuilder(seed)
    x_info = helper.make_tensor_value_info("l", TensorProto.FLOAT, [1, 1, size, size])
    x = graph.op("AveragePool", "l", kernel_shape=[4, 4], strides=[4, 4]) if quarter_output else "l"
    hidden = graph.op("Relu", graph.conv(x, 1, 4))
    ab = graph.op("Mul", graph.op("Tanh", graph.conv(hidden, 4, 2)), graph.constant(110.0))
    side = size // 4 if quarter_output else size
    return graph.model(x_info, ab, [1, 2, side, side])


def ddcolor_style(size: int | None = 64, seed: int = 1, scale: float = 1.0, needs_multiple: int = 0) -> onnx.ModelProto:
    """Gray RGB (normalized) in, RGB in 0..``scale`` out, NCHW; ``size`` None takes any height and width.

    ``needs_multiple`` > 0 adds a pooled branch that only lines up when both sides are multiples of it.
    """
    graph = GraphBuilder(seed)
    side = size if size is not None else None
    shape = [1, 3, side or "height", side or "width"]
    x_info = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)
    x = "image"
    if needs_multiple:
        k = needs_multiple
        pooled = graph.op("AveragePool", x, kernel_shape=[k, k], strides=[k, k])
        wide = graph.op("Resize", pooled, "", graph.constant([1, 1, k, k]), mode="nearest")
        x = graph.op("Add", x, wide)
    hidden = graph.op("Relu", graph.conv(x, 3, 6))
    rgb = graph.op("Sigmoid", graph.conv(hidden, 6, 3))
    if scale != 1.0:
        rgb = graph.op("Mul", rgb, graph.constant(scale))
    return graph.model(x_info, rgb, shape)


def y_to_uv_nhwc(seed: int = 2) -> onnx.ModelProto:
    """Y in (batch, height, width, 1), U and V within their BT.601 ranges out, NHWC as TensorFlow exports are."""
    graph = GraphBuilder(seed)
    x_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "height", "width", 1])
    x = graph.op("Transpose", "y", perm=[0, 3, 1, 2])
    hidden = graph.op("Relu", graph.conv(x, 1, 4))
    uv = graph.op("Mul", graph.op("Tanh", graph.conv(hidden, 4, 2)), graph.constant(np.reshape([U_MAX, V_MAX], (1, 2, 1, 1))))
    out = graph.op("Transpose", uv, perm=[0, 2, 3, 1])
    return graph.model(x_info, out, ["batch", "height", "width", 2])


def constant_output(channels_in: int, values: list[float], size: int = 64) -> onnx.ModelProto:
    """NCHW, whatever the input: every pixel gets ``values`` (a check of what the output's units mean)."""
    graph = GraphBuilder(0)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels_in, size, size])
    zeros = graph.constant(np.zeros((len(values), channels_in, 1, 1)))
    out = graph.op("Conv", "x", zeros, graph.constant(values), kernel_shape=[1, 1])
    return graph.model(x_info, out, [1, len(values), size, size])


def not_a_number(size: int = 64) -> onnx.ModelProto:
    """Gray RGB in, RGB out, all NaN: sqrt(-1 - |x|)."""
    graph = GraphBuilder(0)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])
    out = graph.op("Sqrt", graph.op("Sub", graph.constant(-1.0), graph.op("Abs", "x")))
    return graph.model(x_info, out, [1, 3, size, size])


def unknown_layout() -> onnx.ModelProto:
    """Every axis of the input symbolic: nothing says where the channels are."""
    graph = GraphBuilder(0)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])
    return graph.model(x_info, graph.op("Sigmoid", "x"), ["n", "c", "h", "w"])


ZHANG_DECLARATION = {"input": "lab_l", "input_range": [-50, 50], "size": 64, "output": "ab", "output_range": [-110, 110]}
DDCOLOR_DECLARATION = {"input": "gray_rgb", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "size": 64, "output": "rgb"}
Y_UV_DECLARATION = {"input": "y", "multiple_of": 8, "max_side": 96, "output": "uv"}


def write_network(folder: Path, name: str, model: onnx.ModelProto, declaration: dict | None) -> Path:
    """``folder/name.onnx`` and, unless ``declaration`` is None, its sidecar ``name.onnx.toml``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    if declaration is not None:
        # JSON's numbers, strings and lists of them are TOML values too.
        lines = [f"{key} = {json.dumps(value)}" for key, value in declaration.items()]
        (folder / f"{name}.onnx.toml").write_text("\n".join(lines) + "\n")
    return path
