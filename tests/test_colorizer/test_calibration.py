"""The chroma scale: the calibration split, the fit, and the exported model applying it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
from click.testing import CliRunner

from colorbot.cli import cli
from colorizer.calibrate import fit_chroma_scale
from colorizer.color import rgb_to_yuv
from colorizer.export import MODEL_INFO, ExportedModel
from colorizer.model import ModelConfig
from colorizer.train import TrainConfig, split_calibration, train
from tests.factories import write_synthetic_folder

ORANGE = (200, 120, 60)


def solid_photos(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"orange-{i}.png"
        PIL.Image.new("RGB", (80 + i, 60), ORANGE).save(path)
        paths.append(str(path))
    return paths


class ConstantChroma:
    """Stands in for a network: predicts the same U and V everywhere, whatever it sees."""

    def __init__(self, uv):
        self.uv = tf.constant(uv, tf.float32)

    def __call__(self, y, training=False):
        return tf.broadcast_to(self.uv, tf.concat([tf.shape(y)[:3], [2]], 0))


def orange_uv() -> np.ndarray:
    return rgb_to_yuv(tf.constant(ORANGE, tf.float32) / 255.0).numpy()[1:]


def test_the_calibration_split_depends_only_on_each_file_name():
    paths = [f"/photos/{i:05d}.jpg" for i in range(2000)]
    training, calibration = split_calibration(paths, 0.1)
    assert set(training).isdisjoint(calibration) and len(training) + len(calibration) == len(paths)
    assert 150 < len(calibration) < 250
    # Adding other photos, or moving the folder, does not move a photo between the two sets.
    _, with_more = split_calibration(paths + [f"/more/{i}.png" for i in range(500)], 0.1)
    assert set(calibration) <= set(with_more)
    _, moved = split_calibration([p.replace("/photos/", "/elsewhere/") for p in paths], 0.1)
    assert [Path(p).name for p in moved] == [Path(p).name for p in calibration]
    assert split_calibration(paths, 0.0) == (paths, [])
    with pytest.raises(ValueError, match="calibration_share"):
        split_calibration(paths, 1.0)


def test_an_overconfident_model_is_scaled_down_to_the_truth(tmp_path):
    paths = solid_photos(tmp_path / "calibration", 5)
    fit = fit_chroma_scale(ConstantChroma(2 * orange_uv()), paths, 32, min_chroma_ratio=0.5)
    assert fit.photos == 5
    assert fit.scale == 0.5
    assert fit.uv_error[0.5] == pytest.approx(0.0, abs=2e-3)
    assert fit.uv_error[0.0] == pytest.approx(float(np.linalg.norm(orange_uv())), rel=0.02)
    assert fit.chroma_ratio[0.5] == pytest.approx(1.0, rel=0.02)


def test_the_scale_never_takes_chroma_below_the_floor(tmp_path):
    paths = solid_photos(tmp_path / "calibration", 3)
    # Always the opposite hue: gray would be best, but the floor keeps half the truth's chroma.
    fit = fit_chroma_scale(ConstantChroma(-orange_uv()), paths, 32, min_chroma_ratio=0.5)
    assert fit.scale == 0.5
    assert fit.uv_error[0.0] < fit.uv_error[0.5]
    # A model that predicts gray cannot reach any floor: it is left unscaled.
    assert fit_chroma_scale(ConstantChroma([0.0, 0.0]), paths, 32).scale == 1.0


def test_export_fits_the_scale_on_the_photos_training_never_saw(tmp_path):
    data = write_synthetic_folder(tmp_path / "photos", 40, seed=3)
    run = tmp_path / "run"
    config = TrainConfig(data=str(data), out=str(run), model=ModelConfig(backbone="tiny", weights=None, input_size=32),
                         steps=2, batch_size=4, optimizer="adam", lr=0.001, checkpoint_every=2, sample_every=0,
                         calibration_share=0.25, progress=False)
    train(config)
    calibration = (run / "calibration.txt").read_text().splitlines()
    _, expected_calibration = split_calibration(sorted(str(p) for p in data.iterdir()), 0.25)
    assert calibration == expected_calibration and calibration

    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    assert f"fitted on {len(calibration)} calibration photos" in result.output
    info = json.loads((tmp_path / "auto" / MODEL_INFO).read_text())
    assert 0.0 <= info["chroma_scale"] <= 1.5

    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "gray"), "--chroma-scale", "0"])
    assert result.exit_code == 0, result.output
    versions = [json.loads((tmp_path / out / MODEL_INFO).read_text())["version"] for out in ("auto", "gray")]
    assert versions[0] != versions[1] and all(v.startswith("step-2-") for v in versions), versions  # two models
    photo = np.asarray(PIL.Image.open(next(data.iterdir())).convert("RGB"))
    gray = ExportedModel(tmp_path / "gray")
    served = gray.serve([Path(calibration[0]).read_bytes()])[0]
    for output in (gray.colorize([photo])[0], np.asarray(PIL.Image.open(io.BytesIO(served)))):
        spread = output.astype(int).max(axis=-1) - output.astype(int).min(axis=-1)
        assert spread.max() <= 1  # U = V = 0: every pixel gray

    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "x"), "--chroma-scale", "lots"])
    assert result.exit_code == 2 and "--chroma-scale must be" in result.output
