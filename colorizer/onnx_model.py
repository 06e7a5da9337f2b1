"""ONNX colorization networks (exports of DDColor, DeOldify, Zhang et al.'s) as colorbot colorizers.

The network sees the photo's luminance in the form its declaration names
(``colorizer.settings.OnnxDeclaration``). Whatever it predicts, ab, UV or RGB, is turned into U
and V at the network's own resolution, and those are brought up to the photo's size and
recombined with the photo's own Y by the residual encoder's code (``colorizer.inference``), so
only the chroma is the network's and the luminance is always the photo's.

A declaration that does not fit the network is refused when the model is opened: the tensor
shapes are checked against it, then one gray probe photo is run and its output must be finite
and within the declared range.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import skimage.color
import skimage.data
import tensorflow as tf

from colorizer.identity import ModelIdentity
from colorizer.color import rgb_to_yuv
from colorizer.inference import finish, full_luminance, shrink_luminance
from colorizer.settings import INPUT_NATIVE_RANGE, RANGE_TOLERANCE, ModelSpec, OnnxDeclaration

log = logging.getLogger(__name__)

SIDECAR_SUFFIXES = (".toml", ".json")
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
PROBE_ASPECT = 0.75  # the probe photo is landscape 4:3, so a square-only network shows itself


class OnnxModelError(ValueError):
    """The ONNX network or its declaration cannot be used; the message says which and why."""


def sidecar_paths(onnx_path: str | Path) -> list[Path]:
    """Where a network's declaration is looked for by default: ``model.onnx.toml``, ``model.onnx.json``."""
    onnx_path = Path(onnx_path)
    return [onnx_path.with_name(onnx_path.name + suffix) for suffix in SIDECAR_SUFFIXES]


def read_declaration(onnx_path: str | Path, file: str | Path | None = None) -> OnnxDeclaration:
    """The declaration in ``file``, else in the network's sidecar file."""
    if file is None:
        found = [path for path in sidecar_paths(onnx_path) if path.is_file()]
        if not found:
            raise OnnxModelError(
                f"{onnx_path}: no declaration of its conventions: write {sidecar_paths(onnx_path)[0].name} beside it "
                "or declare it in [[colorizer.models]] (see the README)"
            )
        file = found[0]
    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise OnnxModelError(f"{file}: cannot read the declaration: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OnnxModelError(f"{file}: not valid {file.suffix.lstrip('.').upper() or 'TOML'}: {exc}") from None
    try:
        return OnnxDeclaration.model_validate(data)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        key = ".".join(str(part) for part in error["loc"])
        raise OnnxModelError(f"{file}: {key}: {message}" if key else f"{file}: {message}") from None


def open_onnx(spec: ModelSpec) -> OnnxColorizer:
    """The colorizer a ``[[colorizer.models]]`` entry with ``onnx`` names, checked and probed."""
    if not Path(spec.onnx).is_file():
        raise OnnxModelError(f"{spec.onnx}: no such ONNX file")
    declaration = spec.declaration or read_declaration(spec.onnx, spec.declaration_file)
    return OnnxColorizer(spec.onnx, declaration, name=spec.name, version=spec.version)


def execution_providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [provider for provider in ("CUDAExecutionProvider",) if provider in available] + ["CPUExecutionProvider"]


def _known(dim: Any) -> bool:
    return isinstance(dim, int) and dim > 0


def _infer_layout(shape: list[Any], channels: int) -> str:
    """NCHW or NHWC from which axis holds a channel count (1 or 3); the declared count breaks a tie."""
    candidates = [layout for layout, axis in (("nchw", 1), ("nhwc", 3)) if _known(shape[axis]) and shape[axis] in (1, 3)]
    if len(candidates) == 2:
        candidates = [layout for layout, axis in (("nchw", 1), ("nhwc", 3)) if shape[axis] == channels] or candidates
    if not candidates:
        raise OnnxModelError(f"cannot tell from the input shape {shape} whether it is NCHW or NHWC: declare layout")
    return candidates[0]


class OnnxColorizer:
    """An ONNX colorization network run by onnxruntime (CUDA where present, else CPU)."""

    def __init__(self, onnx_path: str | Path, declaration: OnnxDeclaration, *, name: str | None = None,
                 version: str | None = None):
        import onnxruntime

        self.path = Path(onnx_path)
        self.declaration = declaration
        try:
            weights = self.path.read_bytes()
        except OSError as exc:
            raise OnnxModelError(f"{self.path}: cannot read the ONNX network: {exc.strerror or exc}") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's warnings (unused initializers …) are noise here
        try:
            self.session = onnxruntime.InferenceSession(weights, options, providers=execution_providers())
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own unrelated exception types
            raise OnnxModelError(f"{self.path}: not a network onnxruntime can run: {str(exc).splitlines()[0]}") from None
        self.identity = ModelIdentity(
            name=name or self.path.stem,
            version=version or declaration.version,
            backbone="onnx",
            config={"format": "onnx", "file": self.path.name, "declaration": declaration.model_dump(mode="json")},
            weights_sha256=hashlib.sha256(weights).hexdigest(),
            upsampling=declaration.upsampling,
            input_size=declaration.size,
        )
        self._check_signature()
        self._probe()
        log.info("ONNX model %s (%s) on %s", self.identity.name, self.path, self.session.get_providers()[0])

    def _fail(self, message: str) -> OnnxModelError:
        return OnnxModelError(f"{self.path}: {message}")

    def _check_signature(self) -> None:
        """The model's tensors against the declaration: one 4-axis float input, channels, sizes."""
        channel_axis = self._check_input()
        self._check_output_signature(channel_axis)

    def _check_input(self) -> int:
        """Checks the input tensor, settles the layout; returns the channel axis."""
        declared = self.declaration
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise self._fail(f"takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); colorbot feeds one")
        tensor = inputs[0]
        shape = list(tensor.shape)
        if len(shape) != 4:
            raise self._fail(f"input {tensor.name} has shape {shape}; expected 4 axes (batch, channels, height, width)")
        if tensor.type not in INPUT_DTYPES:
            raise self._fail(f"input {tensor.name} is {tensor.type}; expected float, float16 or double")
        self.input_name, self.input_dtype = tensor.name, INPUT_DTYPES[tensor.type]
        self.layout = declared.layout or _infer_layout(shape, declared.channels_in)
        channel_axis, side_axes = (1, (2, 3)) if self.layout == "nchw" else (3, (1, 2))
        channels = shape[channel_axis]
        if _known(channels) and channels != declared.channels_in:
            raise self._fail(
                f"wrong channel count: its input takes {channels} channels ({self.layout}), "
                f"but input = {declared.input!r} feeds {declared.channels_in}"
            )
        if _known(shape[0]) and shape[0] != 1:
            raise self._fail(f"its batch axis is fixed at {shape[0]}; colorbot feeds one photo at a time")
        sides = [shape[axis] for axis in side_axes]
        if declared.size is not None and any(_known(side) and side != declared.size for side in sides):
            raise self._fail(f"its input is {sides[0]}x{sides[1]}, but the declaration says size = {declared.size}")
        if declared.multiple_of is not None and all(_known(side) for side in sides):
            raise self._fail(f"its input is fixed at {sides[0]}x{sides[1]}: declare size, not multiple_of")
        return channel_axis

    def _check_output_signature(self, channel_axis: int) -> None:
        """The first output (any others are ignored) must have 4 axes and the declared kind's channels."""
        declared = self.declaration
        output = self.session.get_outputs()[0]
        self.output_name = output.name
        out_shape = list(output.shape) if output.shape is not None else []
        if out_shape and len(out_shape) != 4:
            raise self._fail(f"output {output.name} has shape {out_shape}; expected 4 axes")
        if out_shape and _known(out_shape[channel_axis]) and out_shape[channel_axis] != declared.channels_out:
            raise self._fail(
                f"wrong channel count: its output has {out_shape[channel_axis]} channels ({self.layout}), "
                f"but output = {declared.output!r} has {declared.channels_out}"
            )

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The input size for a photo: the fixed one, or the photo's shape scaled to max_side in steps of N."""
        declared = self.declaration
        if declared.size is not None:
            return declared.size, declared.size
        step, limit = declared.multiple_of, declared.side_limit
        scale = limit / max(height, width)
        top = limit // step * step
        return tuple(max(step, min(top, round(side * scale / step) * step)) for side in (height, width))

    def _probe_size(self) -> tuple[int, int]:
        """Odd multiples of N where possible: a network that needs 2N fails here, not on the first post."""
        declared = self.declaration
        if declared.size is not None:
            return declared.size, declared.size
        long = declared.side_limit // declared.multiple_of
        long -= 1 if long % 2 == 0 and long > 1 else 0
        short = max(1, round(long * PROBE_ASPECT))
        short -= 1 if short % 2 == 0 else 0
        return short * declared.multiple_of, long * declared.multiple_of

    def _probe(self) -> None:
        gray = skimage.data.camera()[64:448]
        photo = np.repeat(gray[..., None], 3, axis=2)
        shape = self._probe_size()
        try:
            self._colorize_at(photo, shape)
        except OnnxModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever onnxruntime raises, the declaration does not fit
            hint = (f", a multiple of {self.declaration.multiple_of}: does it need another multiple_of?"
                    if self.declaration.multiple_of else "")
            raise self._fail(f"fails on a {shape[0]}x{shape[1]} input{hint} ({str(exc).splitlines()[0]})") from None

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB photos in, colorized ones of the same sizes out; colour photos are grayed first."""
        return [self._colorize_at(image, self.network_size(*image.shape[:2])) for image in images]

    def _colorize_at(self, rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        y_full = full_luminance(np.asarray(rgb, np.uint8))
        y_small = shrink_luminance(y_full, shape)
        raw = self.session.run([self.output_name], {self.input_name: self._feed(y_small)})[0]
        native = self._check_output(raw)
        y_guide = y_small if native.shape[:2] == tuple(shape) else shrink_luminance(y_full, native.shape[:2])
        return finish(y_full, y_guide, self._chroma(native, y_guide), self.declaration.upsampling)

    def _feed(self, y: np.ndarray) -> np.ndarray:
        """Y (h, w) in 0..1 as the network's input tensor, in its conventions."""
        declared = self.declaration
        values = lightness(y) if declared.input == "lab_l" else y
        native_low, native_high = INPUT_NATIVE_RANGE[declared.input]
        low, high = declared.feed_range
        values = low + (values - native_low) * ((high - low) / (native_high - native_low))
        planes = np.repeat(values[..., None], declared.channels_in, axis=2)
        planes = (planes - np.asarray(declared.mean)) / np.asarray(declared.std)
        batch = planes[None] if self.layout == "nhwc" else planes.transpose(2, 0, 1)[None]
        return batch.astype(self.input_dtype)

    def _check_output(self, raw: np.ndarray) -> np.ndarray:
        """The raw output, checked, as (h, w, channels) in native units (ab, UV, or RGB 0..1)."""
        declared = self.declaration
        if raw.ndim != 4 or raw.shape[0] != 1:
            raise self._fail(f"gave an output of shape {list(raw.shape)}; expected one image of 4 axes")
        planes = raw[0] if self.layout == "nhwc" else raw[0].transpose(1, 2, 0)
        if planes.shape[2] != declared.channels_out:
            raise self._fail(f"wrong channel count: gave {planes.shape[2]} output channels, "
                             f"output = {declared.output!r} has {declared.channels_out}")
        planes = planes.astype(np.float64)
        if not np.isfinite(planes).all():
            raise self._fail("gave NaN or infinite values")
        low, high = declared.raw_output_range
        slack = RANGE_TOLERANCE * (high - low)
        if planes.min() < low - slack or planes.max() > high + slack:
            raise self._fail(
                f"gave values {planes.min():.4g}..{planes.max():.4g}, outside the declared output_range "
                f"[{low:g}, {high:g}]: declare the range it gives (and output_scale, output_offset)"
            )
        return np.clip(planes, low, high) * declared.output_scale + declared.output_offset

    def _chroma(self, native: np.ndarray, y: np.ndarray) -> np.ndarray:
        """U and V (h, w, 2) of the network's output, with ``y`` (h, w) the luminance it was given."""
        kind = self.declaration.output
        if kind == "uv":
            return native
        if kind == "rgb":
            rgb = np.clip(native, 0.0, 1.0)
        else:
            lab = np.concatenate([lightness(y)[..., None], native], axis=2)
            with warnings.catch_warnings():
                # Out-of-gamut ab are expected; recombination desaturates them, never touching Y.
                warnings.simplefilter("ignore", UserWarning)
                rgb = skimage.color.lab2rgb(lab)
        return rgb_to_yuv(tf.constant(rgb, tf.float32)).numpy()[..., 1:]


def lightness(y: np.ndarray) -> np.ndarray:
    """Lab L (0..100) of the gray whose R, G and B all equal ``y`` (0..1)."""
    return skimage.color.rgb2lab(np.repeat(y[..., None], 3, axis=-1))[..., 0]
