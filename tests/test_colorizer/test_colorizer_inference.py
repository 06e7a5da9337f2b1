"""Full-resolution inference and the exported SavedModel, with random weights."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import PIL.Image
import pytest
import skimage.color
import skimage.data
import tensorflow as tf

from colorizer.export import MODEL_INFO, NETWORK_ONNX, ExportedModel, ExportedModelError, export_model
from colorizer.inference import Colorizer, UnreadableImageError, guided_upsample, load_rgb, network_input, recombine
from colorizer.model import ModelConfig, build_model
from tests.factories import encoded

CONFIG = ModelConfig(backbone="tiny", weights=None, input_size=64)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(3) if hasattr(tf, "keras") else None
    return build_model(CONFIG)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    export_model(model, CONFIG, folder, name="tiny-test", version="1")
    return folder


def luma(rgb: np.ndarray) -> np.ndarray:
    return skimage.color.rgb2yuv(rgb)[..., 0]





@pytest.mark.parametrize("upsampling", ["guided", "bilinear"])
def test_full_resolution_output_keeps_the_input_luminance(model, upsampling):
    photo = skimage.data.astronaut()[:301, :437]  # odd sizes, not square
    result = Colorizer(model, CONFIG.input_size, upsampling).colorize_one(photo)
    assert result.shape == photo.shape and result.dtype == np.uint8
    assert np.abs(luma(result) - luma(photo)).max() <= 1 / 255


@pytest.mark.parametrize("upsampling", ["guided", "bilinear"])
def test_in_process_path_matches_the_graphs_arithmetic(model, upsampling):
    # In-process colorization runs NumPy/OpenCV; the SavedModel's serving signature runs recombine's ops.
    photo = skimage.data.coffee()[:333, :517]
    y_full, y_small = network_input(tf.constant(photo), CONFIG.input_size)
    graph = recombine(y_full, y_small, tf.cast(model(y_small), tf.float32)[0], upsampling).numpy()
    in_process = Colorizer(model, CONFIG.input_size, upsampling).colorize_one(photo)
    difference = np.abs(in_process.astype(int) - graph.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_colour_input_is_grayed_first(model):
    photo = skimage.data.coffee()
    gray = np.repeat(np.round(luma(photo) * 255).astype(np.uint8)[..., None], 3, axis=2)
    colorizer = Colorizer(model, CONFIG.input_size)
    from_colour, from_gray = colorizer.colorize([photo, gray])
    assert np.abs(from_colour.astype(int) - from_gray.astype(int)).max() <= 2


def test_guided_upsampling_follows_luminance_edges():
    # Truth: chroma that switches exactly where luminance does, at full resolution.
    y_full = np.zeros((1, 256, 256, 1), np.float32)
    y_full[:, :, 101:] = 1.0
    uv_full = np.where(y_full > 0.5, 0.2, -0.2).astype(np.float32).repeat(2, axis=-1)
    y_small = tf.image.resize(y_full, (32, 32), method="area")
    uv_small = tf.image.resize(uv_full, (32, 32), method="area")
    guided = guided_upsample(y_small, uv_small, tf.constant(y_full)).numpy()
    bilinear = tf.image.resize(uv_small, (256, 256)).numpy()
    guided_error = np.abs(guided - uv_full).mean()
    assert guided_error < 0.5 * np.abs(bilinear - uv_full).mean()


def test_exported_model_gives_the_same_pixels_as_in_process(model, exported):
    photo = skimage.data.chelsea()
    in_process = Colorizer(model, CONFIG.input_size).colorize_one(photo)
    loaded = ExportedModel(exported)
    via_signature = loaded.colorize([photo])[0]
    served_png = loaded.serve([encoded(PIL.Image.fromarray(photo), "PNG")])[0]
    served = np.asarray(PIL.Image.open(io.BytesIO(served_png)))
    for result in (via_signature, served):
        assert result.shape == photo.shape
        assert np.abs(result.astype(int) - in_process.astype(int)).max() <= 1
    assert loaded.info.name == "tiny-test" and len(loaded.info.weights_sha256) == 64
    assert (exported / MODEL_INFO).is_file() and (exported / "saved_model.pb").is_file()


def test_the_exported_network_runs_in_onnx_runtime_with_the_savedmodels_chroma(exported):
    loaded = ExportedModel(exported)
    assert loaded.runtime == "onnxruntime"
    y = np.random.default_rng(5).random((3, CONFIG.input_size, CONFIG.input_size, 1), np.float32)
    by_onnx = loaded.colorizer.predict_uv(y)
    by_savedmodel = loaded.saved.signatures["predict_uv"](y=tf.constant(y))["uv"].numpy()
    assert by_onnx.shape == (3, CONFIG.input_size, CONFIG.input_size, 2)
    np.testing.assert_allclose(by_onnx, by_savedmodel, atol=1e-5)


def test_the_onnx_network_carries_the_chroma_scale(model, exported, tmp_path):
    export_model(model, CONFIG, tmp_path / "scaled", name="tiny-test", version="scaled", chroma_scale=0.85)
    scaled, unscaled = ExportedModel(tmp_path / "scaled"), ExportedModel(exported)
    assert scaled.runtime == "onnxruntime"
    y = np.random.default_rng(6).random((2, CONFIG.input_size, CONFIG.input_size, 1), np.float32)
    by_savedmodel = scaled.saved.signatures["predict_uv"](y=tf.constant(y))["uv"].numpy()
    np.testing.assert_allclose(scaled.colorizer.predict_uv(y), by_savedmodel, atol=1e-5)
    np.testing.assert_allclose(scaled.colorizer.predict_uv(y), 0.85 * unscaled.colorizer.predict_uv(y), atol=1e-5)
    assert np.abs(unscaled.colorizer.predict_uv(y)).max() > 1e-3  # so a dropped scale would show


def test_a_network_file_that_is_not_the_exported_one_is_refused(exported, tmp_path):
    copy = shutil.copytree(exported, tmp_path / "copy")
    network = bytearray((copy / NETWORK_ONNX).read_bytes())
    network[-1] ^= 0xFF
    (copy / NETWORK_ONNX).write_bytes(bytes(network))
    with pytest.raises(ExportedModelError, match="SHA-256 differs"):
        ExportedModel(copy)
    (copy / NETWORK_ONNX).unlink()
    with pytest.raises(ExportedModelError, match="cannot read the exported network"):
        ExportedModel(copy)


def test_an_export_from_before_the_onnx_network_runs_in_tensorflow(exported, tmp_path):
    copy = shutil.copytree(exported, tmp_path / "older")
    (copy / NETWORK_ONNX).unlink()
    info = json.loads((copy / MODEL_INFO).read_text())
    del info["network_onnx_sha256"]
    (copy / MODEL_INFO).write_text(json.dumps(info))
    older, current = ExportedModel(copy), ExportedModel(exported)
    assert older.runtime == "tensorflow"
    photo = skimage.data.coffee()[:200, :300]
    difference = np.abs(older.colorize([photo])[0].astype(int) - current.colorize([photo])[0].astype(int))
    assert difference.max() <= 1
    assert older.info.identity() == current.info.identity()


def test_serving_signature_takes_a_batch_of_mixed_sizes_and_formats(exported):
    loaded = ExportedModel(exported)
    rocket = PIL.Image.fromarray(skimage.data.rocket())
    gray = PIL.Image.fromarray(skimage.data.camera())
    outputs = loaded.serve([encoded(rocket, "JPEG", quality=90), encoded(gray, "PNG")])
    sizes = [PIL.Image.open(io.BytesIO(png)).size for png in outputs]
    assert sizes == [rocket.size, gray.size]


def rgb_photo() -> PIL.Image.Image:
    return PIL.Image.fromarray(skimage.data.astronaut()[:120, :160])


@pytest.mark.parametrize(
    "make",
    [
        lambda: rgb_photo().convert("L"),
        lambda: rgb_photo().convert("LA"),
        lambda: rgb_photo().convert("P", palette=PIL.Image.Palette.ADAPTIVE),
        lambda: rgb_photo().convert("CMYK"),
        lambda: rgb_photo().convert("RGBA"),
        lambda: PIL.Image.fromarray((np.asarray(rgb_photo().convert("L"), np.uint16) * 257)),
    ],
    ids=["L", "LA", "P", "CMYK", "RGBA", "16-bit"],
)
def test_every_mode_loads_as_rgb(make):
    image = make()
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    rgb = load_rgb(encoded(image, fmt))
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    reference = np.asarray(rgb_photo().convert("L"), float)
    assert np.abs(luma(rgb) * 255 - reference).mean() < 12


def test_exif_rotation_is_applied():
    image = rgb_photo()
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    rgb = load_rgb(encoded(image, "JPEG", exif=exif))
    assert rgb.shape == (160, 120, 3)


@pytest.mark.parametrize("data", [b"", b"not an image", encoded(rgb_photo(), "PNG")[:200]],
                         ids=["empty", "text", "truncated"])
def test_unreadable_bytes_raise_a_clear_error(data):
    with pytest.raises(UnreadableImageError, match="cannot read image|image"):
        load_rgb(data)
