"""colorbot compare: every metric and the headline score of candidates against a reference."""

from __future__ import annotations

import json

import cv2
import numpy as np
import PIL.Image
import skimage.data
from click.testing import CliRunner

from colorbot.cli import cli
from eval.metrics import METRICS
from tests.factories import gray_copy


def _save(path, rgb: np.ndarray) -> str:
    PIL.Image.fromarray(rgb).save(path)
    return str(path)


def test_json_lines_carry_every_metric_and_a_bad_candidate_does_not_stop_the_others(tmp_path):
    photo = skimage.data.astronaut()[::2, ::2].copy()
    reference = _save(tmp_path / "truth.png", photo)
    same = _save(tmp_path / "same.png", photo)
    gray = _save(tmp_path / "gray.png", gray_copy(photo))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = CliRunner().invoke(cli, ["compare", reference, same, str(broken), gray, "--aligned", "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["candidate"] for line in lines] == [same, gray]
    assert all(set(line) == {"candidate", *METRICS} for line in lines)
    assert lines[0]["score"] == 1.0 and lines[0]["score"] > lines[1]["score"]
    assert result.stderr.count("\n") == 1 and str(broken) in result.stderr


def test_a_candidate_in_another_frame_is_aligned_first_unless_told_it_is_aligned(tmp_path):
    photo = skimage.data.chelsea()  # 451 × 300
    reference = _save(tmp_path / "truth.png", photo)
    cropped = photo[20:280, 30:420]
    candidate = _save(tmp_path / "crop.png", cv2.resize(cropped, (312, 208), interpolation=cv2.INTER_AREA))
    aligned = CliRunner().invoke(cli, ["compare", reference, candidate, "--json"])
    assert aligned.exit_code == 0, aligned.stderr
    measured = json.loads(aligned.stdout)
    assert measured["score"] > 0.95 and measured["uv_error"] < 0.02
    refused = CliRunner().invoke(cli, ["compare", reference, candidate, "--aligned"])
    assert refused.exit_code == 1 and "does not match the reference" in refused.stderr


def test_human_readable_output_leads_with_the_score(tmp_path):
    photo = skimage.data.astronaut()[::2, ::2].copy()
    reference = _save(tmp_path / "truth.png", photo)
    result = CliRunner().invoke(cli, ["compare", reference, reference, "--aligned"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].endswith("score 1.0000")
