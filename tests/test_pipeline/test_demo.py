"""`colorbot demo`: the README's main job, offline, end to end, looked at in a real browser."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from colorbot.demo import DEMO_PHOTOS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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


@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason="Debian's chromium is not installed")
def test_demo_report_shows_the_gallery_in_a_browser(demo_folder):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((demo_folder / "report" / "index.html").as_uri())
        page.wait_for_load_state("load")
        rows = page.eval_on_selector_all("#gallery tbody tr", "rows => rows.length")
        widths = page.eval_on_selector_all("#gallery img", "imgs => imgs.map(i => i.naturalWidth)")
        page.locator("#gallery").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert rows == len(DEMO_PHOTOS)
    assert len(widths) >= 3 * len(DEMO_PHOTOS) and all(width > 0 for width in widths)
