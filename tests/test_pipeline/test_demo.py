"""`colorbot demo`: the README's main job, offline, end to end, looked at in a real browser."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from colorbot.demo import DEMO_PHOTOS



@pytest.fixture(scope="module")
def demo_folder(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLORBOT_", "praw_"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-m", "colorbot", "demo", "--out", str(folder / "out"), "--model", str(tiny_models[0])],
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
    assert models == {"gray", "tiny-a"}
    index = (demo_folder / "report" / "index.html").read_text()
    assert "Demo data" in index and "Demo data" in (demo_folder / "report" / "summary.md").read_text()


def test_demo_report_shows_the_gallery_in_a_browser(demo_folder, browser_page):
    page, errors = browser_page.page, browser_page.problems
    page.goto((demo_folder / "report" / "index.html").as_uri())
    page.wait_for_load_state("load")
    rows = page.eval_on_selector_all("#gallery tbody tr", "rows => rows.length")
    widths = page.eval_on_selector_all("#gallery img", "imgs => imgs.map(i => i.naturalWidth)")
    browser_page.screenshot("demo-report.png")
    assert errors == []
    assert rows == len(DEMO_PHOTOS)
    assert len(widths) >= 3 * len(DEMO_PHOTOS) and all(width > 0 for width in widths)
