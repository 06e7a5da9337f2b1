"""ONNX colorization networks: each published convention, recombination, and declarations refused at start."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import skimage.color
import skimage.data
from click.testing import CliRunner

from colorbot.cli import cli
from colorbot.config import ConfigError, load_config
from colorizer.client import open_colorizers
from colorizer.inference import Colorizer
from colorizer.onnx_model import OnnxColorizer, OnnxModelError, read_declaration
from colorizer.settings import ModelSpec, OnnxDeclaration
from tests.onnx_networks import (
    DDCOLOR_DECLARATION,
    Y_UV_DECLARATION,
    ZHANG_DECLARATION,
    constant_output,
    ddcolor_style,
    not_a_number,
    unknown_layout,
    write_network,
    y_to_uv_nhwc,
    zhang_style,
)

CONVENTIONS = {
    "zhang-lab": (zhang_style, ZHANG_DECLARATION),
    "ddcolor-rgb": (ddcolor_style, DDCOLOR_DECLARATION),
    "tf-y-uv": (y_to_uv_nhwc, Y_UV_DECLARATION),
}


def luma(rgb: np.ndarray) -> np.ndarray:
    return skimage.color.rgb2yuv(rgb)[..., 0]


def open_network(folder, model, **declaration) -> OnnxColorizer:
    path = write_network(folder, "net", model, None)
    return OnnxColorizer(path, OnnxDeclaration(**declaration))


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {name: write_network(folder, name, build(), declaration) for name, (build, declaration) in CONVENTIONS.items()}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_every_convention_colorizes_at_full_resolution_keeping_the_luminance(networks, convention):
    model = OnnxColorizer(networks[convention], read_declaration(networks[convention]))
    photo = skimage.data.astronaut()[:301, :437]  # odd sizes, not square
    result = model.colorize([photo])[0]
    assert result.shape == photo.shape and result.dtype == np.uint8
    assert np.abs(luma(result) - luma(photo)).max() <= 1 / 255
    assert np.hypot(*skimage.color.rgb2lab(result)[..., 1:].transpose(2, 0, 1)).mean() > 3  # the network's colour


def test_chroma_is_recombined_exactly_as_the_residual_encoders(networks):
    model = OnnxColorizer(networks["tf-y-uv"], OnnxDeclaration(input="y", size=64, output="uv"))
    session = model.session
    residual_encoder_path = Colorizer(lambda y: session.run(None, {"y": y})[0], 64)
    for photo in (skimage.data.chelsea(), skimage.data.coffee()[:200]):
        np.testing.assert_array_equal(model.colorize([photo])[0], residual_encoder_path.colorize_one(photo))


def test_colour_photos_are_grayed_first(networks):
    model = OnnxColorizer(networks["tf-y-uv"], read_declaration(networks["tf-y-uv"]))
    photo = skimage.data.coffee()
    gray = np.repeat(np.round(luma(photo) * 255).astype(np.uint8)[..., None], 3, axis=2)
    from_colour, from_gray = model.colorize([photo, gray])
    # The gray copy's Y is rounded to 8 bits; that alone moves a few saturated pixels by a few levels.
    difference = np.abs(from_colour.astype(int) - from_gray.astype(int))
    assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 2


@pytest.mark.parametrize(
    "output, values, declaration, expected_lab",
    [
        ("ab", [30.0, -20.0], {}, (30.0, -20.0)),
        ("ab", [0.25, -0.5], {"output_range": [-1, 1], "output_scale": 110}, (27.5, -55.0)),
        ("rgb", [153.0, 102.0, 76.5], {"output_range": [0, 255], "output_scale": 1 / 255}, None),
    ],
    ids=["ab-units", "ab-normalized", "rgb-0-255"],
)
def test_the_declared_output_units_are_honoured(tmp_path, output, values, declaration, expected_lab):
    model = open_network(tmp_path, constant_output(1, values), input="y", size=64, output=output, **declaration)
    if expected_lab is None:  # the colour itself, on a gray photo of its own luminance
        colour = np.array(values) / 255
        expected_lab = tuple(skimage.color.rgb2lab(colour[None, None])[0, 0, 1:])
        y = float(skimage.color.rgb2yuv(colour[None, None])[0, 0, 0])
    else:
        y = 0.5
    photo = np.full((48, 80, 3), round(y * 255), np.uint8)
    lab = skimage.color.rgb2lab(model.colorize([photo])[0])
    np.testing.assert_allclose(lab[..., 1:].mean(axis=(0, 1)), expected_lab, atol=2.0)


def test_any_multiple_of_n_follows_the_photos_shape(networks):
    model = OnnxColorizer(networks["tf-y-uv"], read_declaration(networks["tf-y-uv"]))
    assert model.network_size(301, 437) == (64, 96)
    assert model.network_size(1000, 10) == (96, 8)  # never below one step
    photo = skimage.data.rocket()
    assert model.colorize([photo])[0].shape == photo.shape


def test_identity_names_the_file_its_hash_and_its_declaration(networks):
    path = networks["ddcolor-rgb"]
    (model,) = open_colorizers([ModelSpec(name="ddcolor-tiny", onnx=str(path))])
    identity = model.identity
    assert (identity.name, identity.version, identity.backbone) == ("ddcolor-tiny", "1", "onnx")
    assert identity.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert identity.config["declaration"]["mean"] == DDCOLOR_DECLARATION["mean"]
    (again,) = open_colorizers([ModelSpec(name="ddcolor-tiny", onnx=str(path), version="2024-05")])
    assert again.identity.version == "2024-05"


def test_a_declaration_can_be_inline_or_in_a_file_of_its_own(networks, tmp_path):
    path = networks["zhang-lab"]
    elsewhere = tmp_path / "zhang.json"
    elsewhere.write_text(json.dumps({**ZHANG_DECLARATION, "version": "eccv16"}))
    config = tmp_path / "colorbot.toml"
    config.write_text(
        f'[[colorizer.models]]\nname = "inline"\nonnx = "{path}"\n'
        '[colorizer.models.declaration]\ninput = "lab_l"\ninput_range = [-50, 50]\nsize = 64\noutput = "ab"\n'
        f'[[colorizer.models]]\nname = "from-file"\nonnx = "{path}"\ndeclaration_file = "{elsewhere}"\n'
    )
    inline, from_file = open_colorizers(load_config(config, environ={}).colorizer.models)
    assert inline.declaration.output_range is None and from_file.identity.version == "eccv16"


# -- refused at start ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "build, declaration, message",
    [
        (ddcolor_style, {"input": "lab_l", "size": 64, "output": "rgb"}, "wrong channel count: its input takes 3"),
        (zhang_style, {"input": "lab_l", "size": 64, "output": "rgb"}, "wrong channel count: its output has 2"),
        (lambda: ddcolor_style(scale=255), {"input": "gray_rgb", "size": 64, "output": "rgb"},
         r"outside the declared output_range \[0, 1\]"),
        (zhang_style, {"input": "lab_l", "size": 128, "output": "ab"}, "its input is 64x64, but the declaration says size = 128"),
        (zhang_style, {"input": "lab_l", "multiple_of": 16, "output": "ab"}, "fixed at 64x64: declare size, not multiple_of"),
        (lambda: ddcolor_style(size=None, needs_multiple=16), {"input": "gray_rgb", "multiple_of": 8, "output": "rgb"},
         "fails on a 376x504 input, a multiple of 8: does it need another multiple_of"),
        (not_a_number, {"input": "gray_rgb", "size": 64, "output": "rgb"}, "NaN or infinite"),
        (unknown_layout, {"input": "y", "size": 64, "output": "rgb"}, "NCHW or NHWC: declare layout"),
    ],
    ids=["input-channels", "output-channels", "output-range", "size", "fixed-not-multiple", "size-not-multiple", "nan",
         "layout"],
)
def test_a_declaration_that_does_not_fit_is_refused_at_start(tmp_path, build, declaration, message):
    with pytest.raises(OnnxModelError, match=message):
        open_network(tmp_path, build(), **declaration)


def test_the_right_multiple_is_accepted(tmp_path):
    model = open_network(tmp_path, ddcolor_style(size=None, needs_multiple=16),
                         input="gray_rgb", multiple_of=16, max_side=128, output="rgb")
    assert model.network_size(480, 640) == (96, 128)


def test_a_missing_or_broken_file_is_refused(tmp_path):
    path = write_network(tmp_path, "bare", zhang_style(), None)
    with pytest.raises(OnnxModelError, match="no declaration of its conventions: write bare.onnx.toml"):
        read_declaration(path)
    (tmp_path / "bare.onnx.toml").write_text('input = "lab"\nsize = 64\noutput = "ab"\n')
    with pytest.raises(OnnxModelError, match=r"bare.onnx.toml: input: Input should be 'lab_l', 'y' or 'gray_rgb'"):
        read_declaration(path)
    (tmp_path / "bare.onnx.toml").write_text('input = "y"\noutput = "ab"\n')
    with pytest.raises(OnnxModelError, match=r"bare.onnx.toml: give exactly one of size"):
        read_declaration(path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf")
    with pytest.raises(OnnxModelError, match="not a network onnxruntime can run"):
        OnnxColorizer(garbage, OnnxDeclaration(**ZHANG_DECLARATION))


@pytest.mark.parametrize(
    "declaration, fragments",
    [
        ('input = "y"\noutput = "uv"\n', ["colorizer.models.0.declaration", "exactly one of size"]),
        ('input = "y"\nsize = 64\nmultiple_of = 8\noutput = "uv"\n', ["exactly one of size"]),
        ('input = "gray_rgb"\nsize = 64\noutput = "rgb"\noutput_range = [0, 255]\n', ["gives rgb 0..255", "output_scale"]),
        ('input = "gray_rgb"\nsize = 64\noutput = "rgb"\nstd = [0.2, 0.2]\n', ["std needs 1 or 3 values"]),
        ('input = "y"\nsize = 64\noutput = "hsv"\n', ["colorizer.models.0.declaration.output", "'ab', 'uv' or 'rgb'"]),
    ],
    ids=["no-size", "two-sizes", "rgb-0-255", "std-length", "unknown-output"],
)
def test_a_wrong_declaration_in_the_config_names_its_key(tmp_path, declaration, fragments):
    config = tmp_path / "colorbot.toml"
    config.write_text(f'[[colorizer.models]]\nname = "x"\nonnx = "x.onnx"\n[colorizer.models.declaration]\n{declaration}')
    with pytest.raises(ConfigError) as raised:
        load_config(config, environ={})
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    for fragment in fragments:
        assert fragment in message


def test_colorbot_run_refuses_a_bad_declaration_before_any_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_network(tmp_path, "zhang", zhang_style(), {**ZHANG_DECLARATION, "size": 128})
    env = {"COLORBOT_DATABASE__URL": f"sqlite:///{tmp_path / 'colorbot.db'}",
           "COLORBOT_REDDIT__CLIENT_ID": "x", "COLORBOT_REDDIT__CLIENT_SECRET": "y",
           "COLORBOT_COLORIZER__MODELS": f'[{{name = "zhang", onnx = "{path}"}}]'}
    result = CliRunner().invoke(cli, ["run", "--once"], env=env, prog_name="colorbot")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("colorbot: error: colorize: cannot load model:") and "size = 128" in lines[-1]
    assert "scrape:" not in result.output


def test_colorbot_demo_refuses_a_bad_declaration_before_building_posts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_network(tmp_path, "ddcolor", ddcolor_style(), {"input": "y", "size": 64, "output": "rgb"})
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--model", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"colorbot: error: demo: {path}: wrong channel count: its input takes 3 channels (nchw), but input = 'y' feeds 1"
    ]
    assert not (tmp_path / "demo").exists()
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--model", str(tmp_path / "none.onnx")])
    assert result.exit_code == 2 and "none.onnx: no such ONNX file" in result.output


def test_colorbot_colorize_takes_an_onnx_file(networks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo = tmp_path / "astronaut.png"
    PIL.Image.fromarray(skimage.data.astronaut()[::4, ::4]).save(photo)
    result = CliRunner().invoke(cli, ["colorize", str(photo), "--out", str(tmp_path / "out"),
                                      "--model", str(networks["ddcolor-rgb"])])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "astronaut.png").is_file()


def test_the_readmes_declarations_are_valid(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### ONNX networks", 1)[1].split("\n## ", 1)[0]
    sidecar, config = re.findall(r"```toml\n(.*?)```", section, re.S)
    OnnxDeclaration.model_validate(tomllib.loads(sidecar))
    (tmp_path / "colorbot.toml").write_text(config)
    models = load_config(tmp_path / "colorbot.toml", environ={}).colorizer.models
    assert [model.onnx is not None for model in models] == [True, True, True]
    assert models[2].declaration.multiple_of == 16
