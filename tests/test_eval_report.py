from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data

from db.models import Post
from eval.evaluate import evaluate_pending
from eval.metrics import METRICS
from eval.report import ReportFilter, mean_interval, write_report
from eval_images import gray_copy
from test_eval_evaluate import add_post



def small(name: str) -> np.ndarray:
    photo = getattr(skimage.data, name)()
    return photo[::2, ::2].copy()


@pytest.fixture
def report(sessions, tmp_path) -> Path:
    """A report over three posts: two measured (a good and a washed-out model output), one refused."""
    with sessions.begin() as session:
        for index, name in enumerate(["astronaut", "coffee"]):
            photo = small(name)
            washed = (0.5 * photo + 0.5 * gray_copy(photo)).astype(np.uint8)
            post_id = add_post(session, f"p{index}", gray_copy(photo), photo[4:-4, 6:], washed if index else photo)
            session.get(Post, post_id).created_utc = datetime(2024, 5, 1 + index, tzinfo=timezone.utc)
            session.get(Post, post_id).title = f"Old photo <{name}>"
        add_post(session, "refused", gray_copy(small("rocket")), small("chelsea"), small("rocket"))
    evaluate_pending(sessions)
    return write_report(sessions, tmp_path / "report")


def test_report_folder_is_complete(report):
    folder = report.parent
    for name in ["index.html", "metrics.csv", "summary.json", "summary.md", "settings.json", "plots/uv_error.png",
                 "plots/saturation_ratio.png", "plots/trend.png"]:
        assert (folder / name).is_file(), name
    table = pd.read_csv(folder / "metrics.csv")
    assert len(table) == 6  # (model + gray) × 3 posts
    assert set(METRICS) <= set(table.columns)
    assert table[~table["aligned"]]["reddit_id"].unique().tolist() == ["refused"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["resenc"]["n"] == 2 and summary["resenc"]["aligned_share"] == pytest.approx(2 / 3)
    assert summary["gray"]["metrics"]["saturation_ratio"]["mean"] < 0.01
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["eval"]["min_inliers"] == 20 and "scikit-image" in settings["libraries"]
    assert "2,000,000 pixels" in settings["preprocessing"]["measuring size"], "readers learn of the 2 MP copies"
    html = report.read_text()
    assert "&lt;astronaut&gt;" in html, "titles are escaped"
    assert "http://" not in html.replace('href="http', "") and "https://" not in html, "nothing from the network"
    assert "could not be aligned" in (folder / "summary.md").read_text()


def test_model_filter_keeps_gray_baseline(sessions, report, tmp_path):
    index = write_report(sessions, tmp_path / "filtered", ReportFilter(models=["nonexistent"]))
    assert set(pd.read_csv(index.parent / "metrics.csv")["model"]) == {"gray"}


def test_since_filter(sessions, report, tmp_path):
    index = write_report(sessions, tmp_path / "since", ReportFilter(since=datetime(2024, 5, 2, tzinfo=timezone.utc)))
    assert set(pd.read_csv(index.parent / "metrics.csv")["reddit_id"]) == {"p1"}  # the others date from 1 May


def test_mean_interval_by_hand():
    interval = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    half = 1.959964 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert interval["mean"] == 2.5 and interval["high"] == pytest.approx(2.5 + half)


def test_report_in_a_real_browser(report, browser_page):
    page, problems = browser_page.page, browser_page.problems
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(images) == 3 + 2 * 4  # plots + 2 posts × (original, model, gray, human)
    assert all(width > 0 for _, width in images), images

    def order() -> list[str]:
        return page.eval_on_selector_all("#gallery tbody tr", "rows => rows.map(r => r.id)")

    sort_by_uv = page.locator('button.sort[data-key="resenc|uv_error"]')
    sort_by_uv.click()
    assert order() == ["post-p0", "post-p1"]  # p0's model output is the human's own photo
    sort_by_uv.click()
    assert order() == ["post-p1", "post-p0"]
    page.select_option("#sort-any", "resenc|psnr")
    assert order() == ["post-p1", "post-p0"]  # ascending PSNR: worst first
    browser_page.screenshot("eval-report.png")
    assert problems == []


def test_report_of_an_empty_database(engine, tmp_path):
    from db import session_factory

    index = write_report(session_factory(engine), tmp_path / "empty")
    assert index.is_file()
    assert pd.read_csv(index.parent / "metrics.csv").empty


FULL_DISK_REPORT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from db import make_engine, session_factory
from eval.report import write_report
write_report(session_factory(make_engine(sys.argv[1])), sys.argv[2])
"""


def test_a_report_the_disk_cannot_hold_leaves_the_previous_one_whole(report, db_url):
    import subprocess
    import sys

    folder = report.parent
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    failed = subprocess.run([sys.executable, "-c", FULL_DISK_REPORT, db_url, str(folder)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert failed.returncode != 0 and "File too large" in failed.stderr
    after = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert after == before  # every file as it was: none truncated, no partial file left behind


def test_partial_files_a_killed_report_left_are_removed_by_the_next_report(report, sessions):
    import os
    import time

    folder = report.parent
    abandoned = folder / "images" / ".post-1.png.abc123.partial"
    abandoned.write_bytes(b"half a PNG")
    hour_ago = time.time() - 3600
    os.utime(abandoned, (hour_ago, hour_ago))
    in_progress = folder / ".index.html.def456.partial"  # another process may be writing this one now
    in_progress.write_text("<html>")
    write_report(sessions, folder)
    assert not abandoned.exists()
    assert in_progress.exists()
