"""colorbot bench: colour photos turned gray, colorized, measured against the truth, resumable."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import eval.bench as bench
from eval.bench import RESULTS_FILE, BenchBusyError, ResultStore, run_bench, to_gray
from colorizer.images import decode as decode_rgb

from tests.factories import synthetic_photo, write_synthetic_folder


@dataclass(frozen=True)
class Identity:
    name: str
    version: str = "1"
    weights_sha256: str | None = None


class Oracle:
    """Knows every photo: answers the true colours of a gray input (the best any model could do)."""

    def __init__(self, truths: list[np.ndarray], name: str = "oracle"):
        self.identity = Identity(name)
        self.truths = {to_gray(truth).tobytes(): truth for truth in truths}
        self.calls = 0

    def colorize(self, images):
        self.calls += len(images)
        return [self.truths[image.tobytes()] for image in images]


class Tint:
    """Adds a fixed warm cast; fails on inputs listed in ``fail_on`` (by their gray bytes)."""

    def __init__(self, name: str = "tint", fail_on: set[bytes] | None = None):
        self.identity = Identity(name)
        self.fail_on = fail_on or set()
        self.calls = 0

    def colorize(self, images):
        self.calls += len(images)
        if any(image.tobytes() in self.fail_on for image in images):
            raise RuntimeError("model server fell over")
        return [np.clip(image.astype(np.int16) + [25, 0, -25], 0, 255).astype(np.uint8) for image in images]


def write_photos(folder: Path, count: int, size: int = 48, seed: int = 0) -> list[Path]:
    write_synthetic_folder(folder, count, seed, size, name="photo-{:02d}.png")
    return [folder / f"photo-{number:02d}.png" for number in range(count)]


def truths_of(paths: list[Path]) -> list[np.ndarray]:
    return [decode_rgb(path.read_bytes()) for path in paths]


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]


def test_gray_input_is_bt601_luma_on_three_channels():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    gray = to_gray(pixels)
    assert gray.shape == (1, 4, 3) and gray.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 2]).all()
    assert gray[0, :, 0].tolist() == [76, 150, 29, round(0.299 * 10 + 0.587 * 20 + 0.114 * 30)]


def test_every_metric_against_the_truth_for_the_oracle_and_gray(tmp_path):
    paths = write_photos(tmp_path / "photos", 5)
    oracle = Oracle(truths_of(paths))
    summary = run_bench(paths, [oracle], tmp_path / "out", decode=decode_rgb)
    assert (summary.measured, summary.failed, summary.skipped) == (5, 0, 0)

    report = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert report["photos"] == 5
    perfect, gray = report["models"]["oracle"]["metrics"], report["models"]["gray"]["metrics"]
    assert perfect["psnr"]["mean"] == 100.0 and perfect["uv_error"]["mean"] == 0.0
    assert perfect["ssim"]["mean"] == pytest.approx(1.0) and perfect["auc"]["mean"] == pytest.approx(1.0)
    assert perfect["colorfulness_delta"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert gray["colorfulness_machine"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert gray["colorfulness_delta"]["mean"] == pytest.approx(-gray["colorfulness_human"]["mean"], rel=1e-6)
    assert gray["colorfulness_gap"]["mean"] == pytest.approx(gray["colorfulness_human"]["mean"], rel=1e-6)
    assert gray["psnr"]["mean"] < 40 and gray["chroma_machine"]["mean"] < 1
    paired = report["models"]["oracle"]["vs_gray"]["uv_error"]
    assert paired["mean"] < 0 and paired["better_share"] == 1.0 and paired["n"] == 5
    assert paired["mean"] == pytest.approx(-gray["uv_error"]["mean"])
    assert set(report["published_figures"]) == set(bench.PUBLISHED_FIGURES)

    with open(tmp_path / "out" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 10 and {row["model"] for row in rows} == {"oracle", "gray"}
    assert {row["photo"] for row in rows} == {str(path.resolve()) for path in paths}
    page = (tmp_path / "out" / "index.html").read_text()
    for fragment in ("Figures as papers print them", "Paired against gray", "signed ΔCF", "oracle"):
        assert fragment in page
    assert "\\|colourfulness machine − truth\\|" in (tmp_path / "out" / "summary.md").read_text()


def test_thumbnails_only_for_the_gallery_photos(tmp_path):
    paths = write_photos(tmp_path / "photos", 4)
    run_bench(paths, [Tint()], tmp_path / "out", decode=decode_rgb, gallery=2)
    images = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert len(images) == 2 * 4  # input, tint, gray, truth for each of two photos
    page = (tmp_path / "out" / "index.html").read_text()
    for name in images:
        assert f"images/{name}" in page


def test_a_rerun_measures_nothing_twice_and_only_what_is_new(tmp_path):
    paths = write_photos(tmp_path / "photos", 4)
    first = Tint()
    run_bench(paths[:3], [first], tmp_path / "out", decode=decode_rgb)
    assert first.calls == 3

    again = Tint()
    summary = run_bench(paths, [again, Tint("second")], tmp_path / "out", decode=decode_rgb)
    assert again.calls == 1  # only the new photo
    assert (summary.resumed, summary.measured) == (0, 4)  # "second" is new on every photo
    stored = results(tmp_path / "out")
    pairs = [(r["photo"], r["model"]) for r in stored]
    assert len(pairs) == len(set(pairs)) == 4 * 3

    third = Tint()
    summary = run_bench(paths, [third, Tint("second")], tmp_path / "out", decode=decode_rgb)
    assert third.calls == 0 and summary.resumed == 4 and len(results(tmp_path / "out")) == 12


def test_a_photo_whose_content_changed_is_measured_again_and_counted_once(tmp_path):
    paths = write_photos(tmp_path / "photos", 2)
    run_bench(paths, [Tint()], tmp_path / "out", decode=decode_rgb)
    PIL.Image.fromarray(synthetic_photo(np.random.default_rng(99), 48)).save(paths[0])
    model = Tint()
    run_bench(paths, [model], tmp_path / "out", decode=decode_rgb)
    assert model.calls == 1
    report = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert report["photos"] == 2 and report["models"]["tint"]["n"] == 2


def test_bad_and_gray_photos_are_passed_over_and_the_rest_measured(tmp_path, caplog):
    paths = write_photos(tmp_path / "photos", 2)
    broken = tmp_path / "photos" / "broken.jpg"
    broken.write_bytes(b"not an image")
    gray = tmp_path / "photos" / "gray.png"
    PIL.Image.fromarray(to_gray(synthetic_photo(np.random.default_rng(5), 48))).save(gray)
    missing = tmp_path / "photos" / "missing.png"
    decoded = []

    def decode(data):
        decoded.append(len(data))
        return decode_rgb(data)

    with caplog.at_level(logging.INFO, logger="eval.bench"):
        summary = run_bench([paths[0], broken, gray, missing, paths[1]], [Tint()], tmp_path / "out", decode=decode)
    assert (summary.measured, summary.skipped, summary.failed) == (2, 1, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert any(str(broken) in w for w in warnings) and any(str(missing) in w and "cannot read" in w for w in warnings)
    assert all("\n" not in w for w in warnings)

    decoded.clear()
    summary = run_bench([paths[0], gray, paths[1]], [Tint()], tmp_path / "out", decode=decode)
    assert decoded == [] and summary.skipped == 1 and summary.resumed == 2  # the gray photo is known


def test_a_model_failing_on_a_photo_is_tried_again_next_run(tmp_path, caplog):
    paths = write_photos(tmp_path / "photos", 3)
    bad_input = to_gray(truths_of(paths)[1]).tobytes()
    with caplog.at_level(logging.WARNING, logger="eval.bench"):
        summary = run_bench(paths, [Tint(fail_on={bad_input})], tmp_path / "out", decode=decode_rgb)
    assert summary.failed == 1 and summary.measured == 3  # gray still measured on the failed photo
    assert "model tint failed: RuntimeError: model server fell over" in caplog.text
    assert len(results(tmp_path / "out")) == 5

    retry = Tint()
    summary = run_bench(paths, [retry], tmp_path / "out", decode=decode_rgb)
    assert retry.calls == 1 and summary.failed == 0 and len(results(tmp_path / "out")) == 6


def test_a_torn_last_line_is_cut_off_and_the_rest_kept(tmp_path, caplog):
    paths = write_photos(tmp_path / "photos", 2)
    run_bench(paths, [Tint()], tmp_path / "out", decode=decode_rgb)
    store_path = tmp_path / "out" / RESULTS_FILE
    whole = store_path.read_bytes()
    store_path.write_bytes(whole + b'{"kind": "result", "photo": "/x", "sha2')
    with caplog.at_level(logging.WARNING, logger="eval.bench"):
        summary = run_bench(paths, [Tint()], tmp_path / "out", decode=decode_rgb)
    assert "unfinished last line" in caplog.text
    assert summary.resumed == 2 and store_path.read_bytes() == whole


def test_a_second_writer_of_the_same_folder_is_refused(tmp_path):
    paths = write_photos(tmp_path / "photos", 1)
    (tmp_path / "out").mkdir()
    with ResultStore(tmp_path / "out" / RESULTS_FILE):
        with pytest.raises(BenchBusyError, match="another colorbot bench"):
            run_bench(paths, [Tint()], tmp_path / "out", decode=decode_rgb)


def test_models_sharing_a_name_are_refused(tmp_path):
    with pytest.raises(ValueError, match="share a name"):
        run_bench([], [Tint("gray")], tmp_path / "out", decode=decode_rgb)


def test_whatever_measure_returns_is_reported_with_the_headline_first(tmp_path, monkeypatch):
    real_measure = bench.measure

    def measure_with_score(machine, reference):
        values = real_measure(machine, reference)
        return {**values, "score": 1.0 - values["uv_error"]}

    monkeypatch.setattr(bench, "measure", measure_with_score)
    paths = write_photos(tmp_path / "photos", 3)
    run_bench(paths, [Oracle(truths_of(paths))], tmp_path / "out", decode=decode_rgb)
    report = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(report["metrics"])[0] == "score"
    assert report["models"]["oracle"]["metrics"]["score"]["mean"] == 1.0
    assert "Headline" in (tmp_path / "out" / "index.html").read_text()


# --- the command, in its own processes ---------------------------------------------------------


def colorbot_command(*args) -> list[str]:
    return [sys.executable, "-m", "colorbot", "bench", *args]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COLORBOT_")}


def test_command_reports_a_bad_photo_in_one_line_and_exits_1(tmp_path, tiny_models):
    paths = write_photos(tmp_path / "photos", 2)
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG but not really")
    result = subprocess.run(
        colorbot_command(str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--model", str(tiny_models[0])),
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "2 measured" in result.stdout and "1 failed" in result.stdout
    bench_lines = [line for line in result.stderr.splitlines() if "eval.bench" in line]
    assert len(bench_lines) == 1 and "broken.png" in bench_lines[0]
    assert "photo/s" not in result.stderr  # no progress bar: stderr is not a terminal
    assert {r["model"] for r in results(tmp_path / "out")} == {"tiny-a", "gray"} and len(paths) == 2


def test_command_resumes_after_sigkill_without_redoing_finished_photos(tmp_path, tiny_models):
    """Kill -9 the command once some results are stored; the rerun measures only the rest."""
    count = 12
    write_photos(tmp_path / "photos", count, size=320, seed=3)  # big enough that a photo takes a while
    out = tmp_path / "out"
    command = colorbot_command(str(tmp_path / "photos"), "--out", str(out), "--model", str(tiny_models[0]),
                               "--no-progress")
    process = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            store = out / RESULTS_FILE
            if store.exists() and store.read_bytes().count(b"\n") >= 4:  # two photos, both entrants
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    lines = (out / RESULTS_FILE).read_text().splitlines(keepends=True)
    first_run = [json.loads(line) for line in lines if line.endswith("\n")]  # the last may be torn
    finished_photos = {r["photo"] for r in first_run if sum(o["photo"] == r["photo"] for o in first_run) == 2}
    assert 2 <= len(finished_photos) < count

    rerun = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    stored = results(out)
    pairs = [(r["photo"], r["model"]) for r in stored]
    assert len(pairs) == len(set(pairs)) == 2 * count  # every photo, both entrants, exactly once
    assert stored[: len(first_run)] == first_run  # nothing stored before the kill was touched or redone
    second_run = stored[len(first_run):]
    assert len({r["run"] for r in first_run}) == 1 and len({r["run"] for r in second_run}) == 1
    assert not finished_photos & {r["photo"] for r in second_run}
    assert f"{len(finished_photos)} resumed" in rerun.stdout
    report = json.loads((out / "summary.json").read_text())
    assert report["photos"] == count and report["models"]["tiny-a"]["n"] == count
