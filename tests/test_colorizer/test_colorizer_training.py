"""Training: exact resumption after a kill, and a learning test that a broken network fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from colorizer.model import ModelConfig
from colorizer.train import TrainConfig, load_run, train
from tests.factories import write_synthetic_folder

REPO = Path(__file__).resolve().parents[2]


def recipe(tmp_path: Path, data: Path, out: Path, steps: int) -> Path:
    file = tmp_path / f"recipe-{out.name}.toml"
    file.write_text(
        f"""
data = "{data}"
out = "{out}"
steps = {steps}
batch_size = 8
optimizer = "momentum"
lr = 0.01
checkpoint_every = 4
sample_every = 8
log_every = 4
progress = false
[model]
backbone = "tiny"
weights = ""
input_size = 64
tiny_widths = [8, 8, 16, 16, 16]
"""
    )
    return file


def train_command(recipe_file: Path) -> list[str]:
    return [sys.executable, "-m", "colorbot", "train", "--recipe", str(recipe_file), "--weights", "none"]


def start(command, tmp_path):
    env = {**os.environ, "TF_DETERMINISTIC_OPS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_training_resumed_after_a_kill_continues_from_the_saved_step(tmp_path):
    data = write_synthetic_folder(tmp_path / "photos", 48, seed=5)
    steps = 32  # enough to be killed after ckpt-8 and resume for several checkpoints more
    killed_run, reference_run = tmp_path / "killed", tmp_path / "reference"

    process = start(train_command(recipe(tmp_path, data, killed_run, steps)), tmp_path)
    deadline = time.monotonic() + 240
    # The index file of ckpt-8 appears before TensorFlow's "checkpoint" state file names it: until
    # then the saved step is still the previous one, so wait for the state file.
    state = killed_run / "checkpoints" / "checkpoint"
    while not (state.exists() and 'model_checkpoint_path: "ckpt-8"' in state.read_text()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    _, _, saved_step = load_run(killed_run)
    assert 8 <= saved_step < steps

    resumed = start(train_command(recipe(tmp_path, data, killed_run, steps)), tmp_path)
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    assert "resumed from" in stderr and f"at step {saved_step}" in stderr
    logged_steps = [json.loads(line)["step"] for line in (killed_run / "history.jsonl").read_text().splitlines()]
    after_resume = logged_steps[logged_steps.index(saved_step + 4 - saved_step % 4) :] if saved_step % 4 else None
    assert logged_steps[-1] == steps
    assert after_resume is None or after_resume == sorted(after_resume)

    reference = start(train_command(recipe(tmp_path, data, reference_run, steps)), tmp_path)
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr[-2000:]

    # Same optimizer state, same data position: the resumed run ends where an unbroken one does.
    _, killed_model, killed_step = load_run(killed_run)
    _, reference_model, reference_step = load_run(reference_run)
    assert killed_step == reference_step == steps
    for ours, theirs in zip(killed_model.weights, reference_model.weights):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-5, err_msg=ours.path)


def test_a_small_network_learns_colour_from_shape_and_texture(tmp_path):
    """Colour in these photos follows texture and shape, never brightness; gray scores ~0.19."""
    train_dir = write_synthetic_folder(tmp_path / "train", 512, seed=1)
    val_dir = write_synthetic_folder(tmp_path / "val", 64, seed=2)
    config = TrainConfig(
        data=str(train_dir),
        val=str(val_dir),
        out=str(tmp_path / "run"),
        model=ModelConfig(backbone="tiny", weights=None, input_size=64),
        steps=200,
        batch_size=16,
        optimizer="adam",
        lr=0.003,
        schedule="cosine",
        min_crop_area=0.8,
        log_every=50,
        sample_every=100,
        checkpoint_every=100,
        progress=False,
    )
    result = train(config)
    print(f"held-out UV error {result['val_uv_error']:.4f}, gray baseline {result['val_gray_uv_error']:.4f}")
    assert result["step"] == 200
    assert result["val_images"] == 64
    assert result["val_uv_error"] < 0.5 * result["val_gray_uv_error"]
