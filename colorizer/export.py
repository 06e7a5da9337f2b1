"""Exporting a trained run as a TensorFlow SavedModel that TensorFlow Serving runs unchanged.

The default signature, ``serving_default``, takes a batch of encoded images (JPEG, PNG, GIF or
BMP bytes; TensorFlow Serving's REST API passes them as ``{"b64": …}``) and returns the
full-resolution colorized PNG bytes: decoding, resizing, the network, chroma upsampling,
recombination and encoding all run inside the graph. ``colorize_rgb`` (uint8 pixels in and out)
and ``predict_uv`` (the bare network) serve in-process clients that decode images themselves.

The bare network is also written as ONNX (``network.onnx``, its SHA-256 in ``colorbot-model.json``):
in-process colorization runs it with ONNX Runtime, which on this project's 2-core CPU runs it in half
TensorFlow's time (11 ms against 22 at 224 px; ``benchmarks/colorize.py``), the same U and V to 1e-5.
Where TensorFlow sees a GPU, or for an export made before, the SavedModel's ``predict_uv`` runs instead.

Beside the SavedModel, ``colorbot-model.json`` records name, version, model config, the SHA-256
of the weights and the settings that change the output (chroma scale, upsampling, input size): the
model's identity (colorizer/identity.py), which the database keeps with every colorization. With no
version given, the version ends in a digest of those settings, so two exports of one checkpoint
with different chroma scales are two versions of the model, never one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from colorizer.identity import ModelIdentity
from colorizer.inference import Colorizer, network_input, recombine
from colorizer.model import ModelConfig, uv_model

MODEL_INFO = "colorbot-model.json"
WEIGHTS_FILE = "model.weights.h5"
NETWORK_ONNX = "network.onnx"
ONNX_OPSET = 17


def network_session_options():
    """ONNX Runtime's options for the exported network: its threads spin between the network's
    operators, and stop the moment a run returns.

    Parked between operators, the two threads woke for each of the network's ~150 operators: on this
    project's 2-core KVM machine a 1024x768 photo took 42-73 ms (seven runs of benchmarks/colorize.py),
    and 34-45 ms spinning (four runs, alternated with those). Spinning on after the run, ONNX Runtime's
    default, would take a core from the full-resolution work that follows the network.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = min(4, os.cpu_count() or 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


class ExportedModelError(ValueError):
    """An export folder whose files do not match what its ``colorbot-model.json`` records."""


@dataclass
class ExportedModelInfo:
    name: str
    version: str
    config: dict[str, Any]
    weights_sha256: str
    upsampling: str
    input_size: int
    chroma_scale: float = 1.0  # the network's U and V are multiplied by this (colorizer/calibrate.py)
    network_onnx_sha256: str | None = None  # of NETWORK_ONNX; None in exports made before it was written

    @property
    def backbone(self) -> str:
        return self.config.get("backbone", "")

    def identity(self, name: str | None = None) -> ModelIdentity:
        """This export's identity; ``name`` replaces the exported name (as ``[[colorizer.models]]`` may)."""
        return ModelIdentity(
            name=name or self.name,
            version=self.version,
            backbone=self.backbone or None,
            config={**self.config, "upsampling": self.upsampling},
            weights_sha256=self.weights_sha256,
            chroma_scale=self.chroma_scale,
            upsampling=self.upsampling,
            input_size=self.input_size,
        )


class _ServingModule(tf.Module):
    def __init__(self, model: keras.Model, size: int, upsampling: str, chroma_scale: float):
        super().__init__()
        self.model = model
        self.size = size
        self.upsampling = upsampling
        # A Python number, so every graph holds it as a constant (a captured tensor would become a second
        # input of the ONNX network).
        self.chroma_scale = float(chroma_scale)
        # The network's input size is fixed, so this signature can only be made per model.
        self.predict_uv = tf.function(
            lambda y: {"uv": self._uv(y)},
            input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32, name="y")],
        )

    def _uv(self, y_small):
        return tf.cast(self.model(y_small, training=False), tf.float32) * self.chroma_scale

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="rgb")])
    def colorize_rgb(self, rgb):
        y_full, y_small = network_input(rgb, self.size)
        uv = self._uv(y_small)[0]
        return {"rgb": recombine(y_full, y_small, uv, self.upsampling)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve(self, images):
        def decode(data):
            # expand_animations=False takes a GIF's first frame; channels=3 turns gray and RGBA to RGB.
            return tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)

        # One network call for the whole batch; each image is decoded again afterwards because
        # full-resolution photos of different sizes cannot share one tensor.
        y_small = tf.map_fn(
            lambda data: network_input(decode(data), self.size)[1][0],
            images,
            fn_output_signature=tf.TensorSpec([self.size, self.size, 1], tf.float32),
        )
        uv = self._uv(y_small)

        def finish(args):
            data, uv_one, y_small_one = args
            y_full, _ = network_input(decode(data), self.size)
            return tf.io.encode_png(recombine(y_full, y_small_one[None], uv_one, self.upsampling))

        png = tf.map_fn(finish, (images, uv, y_small), fn_output_signature=tf.TensorSpec([], tf.string))
        # TensorFlow Serving base64-encodes an output only if its name ends in "_bytes".
        return {"png_bytes": png}


def export_model(
    model: keras.Model,
    config: ModelConfig,
    out: str | Path,
    *,
    name: str,
    version: str | None = None,
    version_prefix: str = "export",
    upsampling: str = "guided",
    chroma_scale: float = 1.0,
) -> ExportedModelInfo:
    """Write ``model`` to ``out`` as a SavedModel plus its weights file and ``colorbot-model.json``.

    ``chroma_scale`` multiplies the network's U and V in every signature (see colorizer/calibrate.py).
    Without ``version`` the version is ``<version_prefix>-<first 8 hex digits of the settings digest>``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if model.output_shape[-1] != 2:  # a classification network's logits: serve its annealed mean
        model = uv_model(model, config)
    weights = out / WEIGHTS_FILE
    model.save_weights(weights)
    module = _ServingModule(model, config.input_size, upsampling, chroma_scale)
    tf.saved_model.save(
        module,
        str(out),
        signatures={
            "serving_default": module.serve,
            "colorize_rgb": module.colorize_rgb,
            "predict_uv": module.predict_uv,
        },
    )
    info = ExportedModelInfo(
        name=name,
        version=version or "",
        config=config.to_dict(),
        weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
        upsampling=upsampling,
        input_size=config.input_size,
        chroma_scale=float(chroma_scale),
    )
    info.network_onnx_sha256 = _export_onnx(module, config.input_size, out / NETWORK_ONNX)
    if not version:
        info.version = f"{version_prefix}-{info.identity().settings_digest()[:8]}"
    (out / MODEL_INFO).write_text(json.dumps(info.__dict__, indent=2))
    return info


def _export_onnx(module: _ServingModule, size: int, path: Path) -> str:
    """``predict_uv`` (chroma scale included) as ONNX at ``path``; returns the file's SHA-256."""
    import tf2onnx

    tf2onnx.logging.set_level(logging.ERROR)  # it logs every optimizer pass at INFO
    tf2onnx.convert.from_function(
        tf.function(module._uv), input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32, name="y")],
        opset=ONNX_OPSET, output_path=str(path),
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ExportedModel:
    """An exported model loaded in this process: the colorizer the pipeline uses by default."""

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir)
        info_file = self.model_dir / MODEL_INFO
        if not info_file.is_file():
            raise FileNotFoundError(f"{self.model_dir} is not an exported colorbot model: no {MODEL_INFO}")
        self.info = ExportedModelInfo(**json.loads(info_file.read_text()))
        self._saved = None
        predict = self._onnx_predictor() if self.info.network_onnx_sha256 and not tf.config.list_physical_devices("GPU") \
            else None
        self.runtime = "onnxruntime" if predict else "tensorflow"
        if predict is None:
            signature = self.saved.signatures["predict_uv"]
            predict = lambda y: signature(y=tf.constant(y))["uv"].numpy()  # noqa: E731
        self.colorizer = Colorizer(predict, self.info.input_size, self.info.upsampling)

    @property
    def saved(self):
        """The SavedModel, loaded when first needed (serving, or where ONNX Runtime is not used)."""
        if self._saved is None:
            self._saved = tf.saved_model.load(str(self.model_dir))
        return self._saved

    def _onnx_predictor(self):
        import onnxruntime

        path = self.model_dir / NETWORK_ONNX
        try:
            network = path.read_bytes()
        except OSError as exc:
            raise ExportedModelError(f"{path}: cannot read the exported network: {exc.strerror or exc}") from None
        if hashlib.sha256(network).hexdigest() != self.info.network_onnx_sha256:
            raise ExportedModelError(f"{path} is not the network {MODEL_INFO} records (its SHA-256 differs): "
                                     "export the model again")
        session = onnxruntime.InferenceSession(network, network_session_options(), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda y: session.run(None, {name: np.asarray(y, np.float32)})[0]

    def colorize(self, images: list) -> list:
        return self.colorizer.colorize(images)

    def serve(self, encoded: list[bytes]) -> list[bytes]:
        """The serving signature itself: encoded images in, PNG bytes out."""
        result = self.saved.signatures["serving_default"](images=tf.constant(encoded))
        return [bytes(png) for png in result["png_bytes"].numpy()]
