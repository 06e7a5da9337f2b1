"""`colorbot demo`: the README's main job, offline, end to end, looked at in a real browser."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import json

import pytest

from colorbot.demo import DEMO_PHOTOS
from tests.onnx_networks import (DDCOLOR_DECLARATION, Y_UV_DECLARATION, ZHANG_DECLARATION, ddcolor_style, write_network,
                           y_to_uv_nhwc, zhang_style)

# One ONNX network per convention, declared by its sidecar file, beside the exported model.
ONNX_MODELS = {
    "zhang-lab": (zhang_style, ZHANG_DECLARATION),
    "ddcolor-rgb": (ddcolor_style, DDCOLOR_DECLARATION),
    "tf-y-uv": (y_to_uv_nhwc, Y_UV_DECLARATION),
}


@pytest.fixture(scope="module")
def demo_folder(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLORBOT_", "praw_"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    onnx_options = []
    for name, (build, declaration) in ONNX_MODELS.items():
        onnx_options += ["--model", str(write_network(folder / "onnx", name, build(), declaration))]
    result = subprocess.run(
        [sys.executable, "-m", "colorbot", "demo", "--out", str(folder / "out"), "--model", str(tiny_models[0]),
         *onnx_options],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"report: {folder / 'out' / 'report' / 'index.html'}" in result.stdout
    return folder / "out"


def test_demo_runs_every_step_into_a_fresh_database(demo_folder):
    with sqlite3.connect(demo_folder / "colorbot-demo.db") as conn:
        states = dict(conn.execute("select state, count(*) from posts group by state").fetchall())
        layouts = {row[0] for row in conn.execute("select distinct layout from posts")}
        models = {row[0] for row in conn.execute("select name from models")}
    assert states == {"evaluated": len(DEMO_PHOTOS)}
    assert layouts == {"gallery", "composite", "comment-link"}
    assert models == {"gray", "tiny-a", *ONNX_MODELS}
    index = (demo_folder / "report" / "index.html").read_text()
    assert "Demo data" in index and "Demo data" in (demo_folder / "report" / "summary.md").read_text()


def test_demo_report_ranks_the_onnx_models_beside_the_others(demo_folder):
    summary = json.loads((demo_folder / "report" / "summary.json").read_text())
    with sqlite3.connect(demo_folder / "colorbot-demo.db") as conn:
        stored = dict(conn.execute(
            "select m.name, count(*) from colorizations c join models m on m.id = c.model_id group by m.name"))
    ranked = {row["model"]: row for row in summary["leaderboard"]["rows"]}
    assert summary["leaderboard"]["metric"] == "score"
    for name in ONNX_MODELS:
        assert stored[name] == len(DEMO_PHOTOS)
        assert summary["models"][name]["n"] > 0 and summary["models"][name]["metrics"]["uv_error"]["mean"] > 0
        assert ranked[name]["n"] > 0 and -1 <= ranked[name]["mean"] <= 1 and 0 <= ranked[name]["wins"]["gray"]["rate"] <= 1
    index = (demo_folder / "report" / "index.html").read_text()
    assert all(name in index for name in ONNX_MODELS)


def test_demo_report_shows_the_gallery_in_a_browser(demo_folder, browser_page):
    page, errors = browser_page.page, browser_page.problems
    page.goto((demo_folder / "report" / "index.html").as_uri())
    page.wait_for_load_state("load")
    # The gallery's rows are drawn by its script and its thumbnails load lazily: scroll each into view
    # and wait until every one has decoded (a broken link never does, and the wait times out).
    page.eval_on_selector_all("#gallery img", "imgs => imgs.forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function("Array.from(document.querySelectorAll('#gallery img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
    rows = page.eval_on_selector_all("#gallery tbody tr", "rows => rows.length")
    widths = page.eval_on_selector_all("#gallery img", "imgs => imgs.map(i => i.naturalWidth)")
    browser_page.screenshot("demo-report.png")
    assert errors == []
    assert rows == len(DEMO_PHOTOS)
    assert len(widths) >= 3 * len(DEMO_PHOTOS) and all(width > 0 for width in widths)
