"""Settings for colorizing, as read from colorbot.toml's [colorizer] section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# What black and white are given as unless input_range says otherwise: Lab L, BT.601 Y, RGB.
INPUT_NATIVE_RANGE = {"lab_l": (0.0, 100.0), "y": (0.0, 1.0), "gray_rgb": (0.0, 1.0)}
INPUT_CHANNELS = {"lab_l": 1, "y": 1, "gray_rgb": 3}
# Where each output's values can lie once scaled: Lab a/b, BT.601 U/V (V reaches further: colorizer.color's
# V_MAX, not imported because that module loads TensorFlow), RGB.
OUTPUT_NATIVE_BOUNDS = {"ab": (-128.0, 128.0), "uv": (-0.61497538, 0.61497538), "rgb": (0.0, 1.0)}
OUTPUT_DEFAULT_RANGE = {"ab": (-128.0, 127.0), "uv": (-0.61497538, 0.61497538), "rgb": (0.0, 1.0)}
OUTPUT_CHANNELS = {"ab": 2, "uv": 2, "rgb": 3}
RANGE_TOLERANCE = 0.01  # of the range's width: rounding and float16, not a wrong convention


class OnnxDeclaration(_Section):
    """How an ONNX colorization network wants its gray input and what its output means.

    The network's input is the photo's luminance at the declared size, as Lab L, BT.601 Y or
    gray RGB, mapped linearly so black and white become ``input_range``, then ``(x - mean) / std``
    per channel. Its output (raw values within ``output_range``) times ``output_scale`` plus
    ``output_offset`` is Lab a/b, BT.601 U/V or RGB in 0..1.
    """

    input: Literal["lab_l", "y", "gray_rgb"]
    input_range: tuple[float, float] | None = Field(
        None, description="the values black and white are fed as [default: L 0..100, Y and RGB 0..1]")
    mean: list[float] = Field(default_factory=lambda: [0.0], min_length=1, max_length=3)
    std: list[float] = Field(default_factory=lambda: [1.0], min_length=1, max_length=3)
    layout: Literal["nchw", "nhwc"] | None = Field(None, description="[default: read from the model's input shape]")
    size: int | None = Field(None, ge=8, le=4096, description="a fixed square input of size x size")
    multiple_of: int | None = Field(None, ge=1, le=1024, description="any input whose sides are multiples of this")
    max_side: int | None = Field(None, ge=8, le=4096, description="with multiple_of: the input's longer side [512]")
    output: Literal["ab", "uv", "rgb"]
    output_range: tuple[float, float] | None = Field(None, description="the raw values the network gives")
    output_scale: float = 1.0
    output_offset: float = 0.0
    upsampling: Literal["guided", "bilinear"] = "guided"
    version: str = Field("1", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> OnnxDeclaration:
        if (self.size is None) == (self.multiple_of is None):
            raise ValueError("give exactly one of size (a fixed input) or multiple_of (any multiple of N)")
        if self.max_side is not None and self.multiple_of is None:
            raise ValueError("max_side goes with multiple_of; a fixed size has no other side")
        if self.multiple_of is not None and self.side_limit < self.multiple_of:
            raise ValueError(f"max_side {self.side_limit} is less than multiple_of {self.multiple_of}")
        if self.input_range is not None and self.input_range[0] == self.input_range[1]:
            raise ValueError(f"input_range {list(self.input_range)} gives black and white the same value")
        channels = INPUT_CHANNELS[self.input]
        for key in ("mean", "std"):
            if len(getattr(self, key)) not in (1, channels):
                counts = "1 value" if channels == 1 else f"1 or {channels} values"
                raise ValueError(f"{key} needs {counts} for input = {self.input!r}")
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std must be positive, not {self.std}")
        low, high = self.raw_output_range
        if not low < high:
            raise ValueError(f"output_range {[low, high]} must go from low to high")
        if self.output_scale == 0:
            raise ValueError("output_scale 0 would make every output gray")
        self._check_native_output(low, high)
        return self

    def _check_native_output(self, low: float, high: float) -> None:
        """A range that cannot be the declared kind (RGB 0..255 read as 0..1) is refused here."""
        ends = sorted((low * self.output_scale + self.output_offset, high * self.output_scale + self.output_offset))
        bound_low, bound_high = OUTPUT_NATIVE_BOUNDS[self.output]
        slack = RANGE_TOLERANCE * (bound_high - bound_low)
        if ends[0] < bound_low - slack or ends[1] > bound_high + slack:
            raise ValueError(
                f"output_range {[low, high]} x output_scale {self.output_scale} + output_offset {self.output_offset} "
                f"gives {self.output} {ends[0]:g}..{ends[1]:g}, beyond its {bound_low:g}..{bound_high:g}: "
                "set output_scale and output_offset to bring the network's values there"
            )

    @property
    def channels_in(self) -> int:
        return INPUT_CHANNELS[self.input]

    @property
    def channels_out(self) -> int:
        return OUTPUT_CHANNELS[self.output]

    @property
    def side_limit(self) -> int:
        return self.max_side or 512

    @property
    def feed_range(self) -> tuple[float, float]:
        return self.input_range or INPUT_NATIVE_RANGE[self.input]

    @property
    def raw_output_range(self) -> tuple[float, float]:
        return self.output_range or OUTPUT_DEFAULT_RANGE[self.output]


class ModelSpec(_Section):
    """One model taking part in the benchmark: an exported folder or an ONNX network here, or a served one."""

    name: str = Field(min_length=1, max_length=64)
    path: str | None = Field(None, description="an exported model folder (colorbot export)")
    url: str | None = Field(None, description="a TensorFlow Serving REST endpoint, e.g. http://host:8501")
    onnx: str | None = Field(None, description="an ONNX colorization network (a .onnx file)")
    declaration: OnnxDeclaration | None = Field(None, description="for onnx: its conventions, inline")
    declaration_file: str | None = Field(
        None, description="for onnx: a TOML or JSON file of its conventions [default: <onnx>.toml or <onnx>.json]")
    version: str | None = Field(
        None, description="for url: the version to use; predict calls are pinned to it [default: the newest served]; "
        "for onnx: the version to record [default: the declaration's]")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(source is not None for source in (self.path, self.url, self.onnx)) != 1:
            raise ValueError("give exactly one of path, url or onnx")
        if self.onnx is None and (self.declaration is not None or self.declaration_file is not None):
            raise ValueError("declaration and declaration_file go with onnx")
        if self.declaration is not None and self.declaration_file is not None:
            raise ValueError("give the declaration inline or as declaration_file, not both")
        return self


def model_spec_for(path: str) -> ModelSpec:
    """The entry for a model given on the command line: an ONNX file (declared by its sidecar) or a folder."""
    if Path(path).suffix.lower() == ".onnx":
        return ModelSpec(name=Path(path).stem, onnx=path)
    return ModelSpec(name=Path(path).name, path=path)


class ColorizerSettings(_Section):
    models: list[ModelSpec] = Field(
        default_factory=list,
        description="every model colorizes every post; empty means the default model that ships with colorbot",
    )
    batch_size: int = Field(8, ge=1, le=256)

    @model_validator(mode="after")
    def _unique_names(self) -> ColorizerSettings:
        names = [model.name for model in self.models]
        if len(names) != len(set(names)):
            raise ValueError(f"model names must be unique: {names}")
        return self
