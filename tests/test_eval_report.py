from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
from sqlalchemy import delete, select

from colorizer.images import examine
from db.models import Alignment, Colorization, Metric, Model, Post
from db.store import get_or_create_model, store_image
from eval.evaluate import evaluate_pending
from eval.metrics import HEADLINE_METRIC, METRICS
from eval.report import RANKED, ReportFilter, _rankings, mean_interval, write_report
from tests.factories import add_post, gray_copy, png


def small(name: str) -> np.ndarray:
    photo = getattr(skimage.data, name)()
    return photo[::2, ::2].copy()


SCORES = {("p0", "resenc"): 0.9, ("p1", "resenc"): 0.4, ("p0", "gray"): 0.2, ("p1", "gray"): 0.4, ("p0", "rival"): 0.5}
"""Headline scores the tests fix, so that they do not depend on the score's formula."""


def set_scores(sessions, scores: dict[tuple[str, str], float]) -> None:
    """Store each (post, model)'s headline score, replacing the one evaluate stored, if any."""
    with sessions.begin() as session:
        for (reddit_id, model_name), value in scores.items():
            colorization = session.scalars(
                select(Colorization).join(Post).join(Model).where(Post.reddit_id == reddit_id, Model.name == model_name)
            ).one()
            session.execute(
                delete(Metric).where(Metric.colorization_id == colorization.id, Metric.name == HEADLINE_METRIC)
            )
            alignment_id = session.scalar(select(Alignment.id).where(Alignment.post_id == colorization.post_id))
            session.add(
                Metric(colorization_id=colorization.id, alignment_id=alignment_id, name=HEADLINE_METRIC, value=value)
            )


@pytest.fixture
def report(sessions, tmp_path) -> Path:
    """A report over three posts: two measured (a good and a washed-out model output), one refused;
    a second model, "rival", colorized only the first."""
    with sessions.begin() as session:
        for index, name in enumerate(["astronaut", "coffee"]):
            photo = small(name)
            washed = (0.5 * photo + 0.5 * gray_copy(photo)).astype(np.uint8)
            post_id = add_post(session, f"p{index}", gray_copy(photo), photo[4:-4, 6:], washed if index else photo)
            session.get(Post, post_id).created_utc = datetime(2024, 5, 1 + index, tzinfo=timezone.utc)
            session.get(Post, post_id).title = f"Old photo <{name}>"
            if index == 0:
                rival = get_or_create_model(session, name="rival", version="test")
                image = store_image(session, examine(png(washed)))
                session.add(Colorization(post_id=post_id, model_id=rival.id, image_id=image.id, seconds=1.0))
        add_post(session, "refused", gray_copy(small("rocket")), small("chelsea"), small("rocket"))
    evaluate_pending(sessions)
    set_scores(sessions, SCORES)
    return write_report(sessions, tmp_path / "report")


def test_report_folder_is_complete(report):
    folder = report.parent
    for name in ["index.html", "metrics.csv", "summary.json", "summary.md", "settings.json", "plots/uv_error.png",
                 "plots/saturation_ratio.png", "plots/trend.png"]:
        assert (folder / name).is_file(), name
    table = pd.read_csv(folder / "metrics.csv")
    assert len(table) == 7  # (model + gray) × 3 posts + rival on p0
    assert set(METRICS) <= set(table.columns)
    assert table[~table["aligned"]]["reddit_id"].unique().tolist() == ["refused"]
    summary = json.loads((folder / "summary.json").read_text())["models"]
    assert summary["resenc"]["n"] == 2 and summary["resenc"]["aligned_share"] == pytest.approx(2 / 3)
    assert summary["gray"]["metrics"]["saturation_ratio"]["mean"] < 0.01
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["eval"]["min_inliers"] == 20 and "scikit-image" in settings["libraries"]
    assert "2,000,000 pixels" in settings["preprocessing"]["measuring size"], "readers learn of the 2 MP copies"
    html = report.read_text()
    assert "<astronaut>" not in html, "titles are escaped (the gallery's are data, shown as text by gallery.js)"
    assert "Old photo <astronaut>" in gallery_data(folder)["posts"]["title"]
    for page in (html, (folder / "gallery.js").read_text(), (folder / "gallery-data.js").read_text()):
        assert "http://" not in page.replace('href="http', "") and "//cdn" not in page, "nothing from the network"
    assert "https://" not in html
    assert "could not be aligned" in (folder / "summary.md").read_text()


def gallery_data(folder: Path) -> dict:
    """What gallery-data.js gives the page, decoded as gallery.js decodes it: links and thumbnail paths
    rebuilt from permalinks and keys, every metric from the float32 bytes (None where NaN)."""
    text = (folder / "gallery-data.js").read_text(encoding="ascii")
    found = re.fullmatch(r'window\.colorbotGallery = \{texts: "([A-Za-z0-9+/=]*)",\n  values: "([A-Za-z0-9+/=]*)"\};\n', text)
    assert found, text[:200]
    texts, values = (gzip.decompress(base64.b64decode(packed)) for packed in found.groups())
    data = json.loads(texts.decode("utf-8"))
    posts, count, widths = data["posts"], len(data["posts"]["reddit_id"]), data["widths"]

    def split(column: str, width: int) -> list[str]:
        assert len(column) == width * count
        return [column[i * width:(i + 1) * width] for i in range(count)]
    posts["created"], posts["key"] = split(posts["created"], widths["created"]), split(posts["key"], widths["key"])
    data["machines"] = {model: [None if key == "-" * widths["key"] else key for key in split(keys, widths["key"])]
                        for model, keys in data["machines"].items()}
    posts["link"] = [f"https://www.reddit.com{permalink}" if permalink else None for permalink in posts["permalink"]]
    posts["original"] = [f"images/{key}-original.jpg" for key in posts["key"]]
    posts["human"] = [f"images/{key}-human.jpg" for key in posts["key"]]
    data["machines"] = {model: [f"images/{key}.jpg" if key else None for key in keys]
                        for model, keys in data["machines"].items()}
    numbers = np.frombuffer(values, dtype="<f4").reshape(len(data["valued"]), len(METRICS), count)
    data["values"] = {model: {name: [None if np.isnan(v) else float(v) for v in numbers[m, k]]
                              for k, name in enumerate(METRICS)} for m, model in enumerate(data["valued"])}
    return data


def images_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in (folder / "images").iterdir()}


def test_a_second_report_reads_no_image_and_rewrites_no_thumbnail(sessions, report, monkeypatch):
    import eval.report

    folder = report.parent
    before, summary = images_of(folder), (folder / "summary.json").read_text()
    assert len(before) == 2 * 2 + 5, "original and human of 2 posts, resenc and gray on both, rival on p0"

    def no_decoding(*_args):
        raise AssertionError("an image was read")
    monkeypatch.setattr(eval.report, "decode", no_decoding)
    monkeypatch.setattr(eval.report, "original_and_human", no_decoding)
    write_report(sessions, folder)
    assert images_of(folder) == before and (folder / "summary.json").read_text() == summary


def test_a_changed_colorization_gets_a_new_thumbnail_and_its_old_one_goes(sessions, report):
    folder = report.parent
    before = images_of(folder)
    old = gallery_data(folder)["machines"]["rival"][0]
    with sessions.begin() as session:
        colorization = session.scalars(select(Colorization).join(Model).where(Model.name == "rival")).one()
        colorization.image_id = store_image(session, examine(png(small("coffee")))).id
    write_report(sessions, folder)
    after = images_of(folder)
    new = gallery_data(folder)["machines"]["rival"][0]
    assert new != old and not (folder / old).exists() and (folder / new).is_file()
    assert set(after) == set(before) - {Path(old).name} | {Path(new).name}
    assert all(after[name] == before[name] for name in set(after) & set(before)), "the others are kept as they were"


def test_leaderboard_in_summary_json_and_md(report):
    folder = report.parent
    board = json.loads((folder / "summary.json").read_text())["leaderboard"]
    assert board["metric"] == HEADLINE_METRIC and board["note"] is None
    assert [row["model"] for row in board["rows"]] == ["resenc", "rival", "gray"]  # means 0.65, 0.5, 0.3
    resenc, rival, gray = board["rows"]
    assert (resenc["mean"], resenc["low"], resenc["high"], resenc["n"]) == (pytest.approx(0.65), 0.4, 0.9, 2)
    assert resenc["aligned_share"] == pytest.approx(2 / 3) and rival["aligned_share"] == 1.0
    assert resenc["wins"] == {"gray": {"rate": 0.75, "posts": 2}, "rival": {"rate": 1.0, "posts": 1}}  # p1 a tie
    assert rival["low"] is None and rival["n"] == 1, "one post has no interval"
    assert gray["wins"]["resenc"]["rate"] == 0.25
    markdown = (folder / "summary.md").read_text()
    assert markdown.index("## Leaderboard") < markdown.index("## All metrics")
    assert "| 1 | resenc | 0.65 (0.4–0.9) | 75 % | — | 100 % | 2 | 67 % |" in markdown


def test_leaderboard_without_scores_ranks_by_uv_error_and_says_so(sessions, report, tmp_path):
    with sessions.begin() as session:
        session.execute(delete(Metric).where(Metric.name == HEADLINE_METRIC))
    index = write_report(sessions, tmp_path / "unscored")
    board = json.loads((index.parent / "summary.json").read_text())["leaderboard"]
    means = [row["mean"] for row in board["rows"]]
    assert board["metric"] == "uv_error" and means == sorted(means) and board["rows"][-1]["model"] == "gray"
    assert "ranks by UV error" in index.read_text() and "ranks by UV error" in (index.parent / "summary.md").read_text()


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


LEADERBOARD_ROWS = """rows => rows.map(r => ({
    model: r.dataset.model, mean: r.dataset.mean, low: r.dataset.low, high: r.dataset.high, n: Number(r.dataset.n),
    wins: Array.from(r.querySelectorAll('td.win')).map(c => [c.dataset.rate, c.textContent.trim()])}))"""


def test_report_in_a_real_browser(report, browser_page):
    page, problems = browser_page.page, browser_page.problems
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    page.locator("#gallery").scroll_into_view_if_needed()  # its thumbnails load when near the viewport
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    # plots + gallery (2 posts × original, resenc, gray, human, and rival on p0) + ten best and worst
    # (resenc: 2 + 2 posts, rival: 1 + 1, each original | model | human)
    assert len(images) == 3 + (2 * 4 + 1) + 3 * (4 + 2)
    assert all(width > 0 for _, width in images), images

    assert page.locator("h2").first.text_content() == "Leaderboard", "the report opens with the leaderboard"
    rows = page.eval_on_selector_all("#leaderboard tbody tr", LEADERBOARD_ROWS)
    assert [row["model"] for row in rows] == ["resenc", "rival", "gray"]
    for row in rows:
        if row["n"] >= 2:
            assert float(row["low"]) <= float(row["mean"]) <= float(row["high"]), row
        else:
            assert row["low"] == row["high"] == "", "no interval from one post"
        assert len(row["wins"]) == 2, "against each other model"
        for rate, shown in row["wins"]:
            assert 0 <= float(rate) <= 1 and shown == f"{100 * float(rate):.0f} %", row
    assert page.locator("details.metrics #summary").is_hidden(), "the full metric table starts folded"
    thumbnails = page.eval_on_selector_all("#rankings img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(thumbnails) == 3 * (4 + 2) and all(width > 0 for width in thumbnails)
    best = page.locator('.ranked-set[data-model="resenc"][data-kind="best"] figcaption')
    assert best.all_text_contents() == ["p0 · 0.9", "p1 · 0.4"]
    browser_page.screenshot("report-leaderboard.png", full_page=False)
    page.locator("details.metrics > summary").click()
    assert page.locator("details.metrics #summary").is_visible()
    caption = page.locator("#post-p0 td").first.locator("figcaption")
    assert "Old photo <astronaut>" in caption.text_content()
    assert caption.evaluate("c => Array.from(c.children).map(e => e.tagName)") == ["BR"], \
        "the title is text (p0's empty permalink is no link): only the line break is an element"

    def order() -> list[str]:
        return page.eval_on_selector_all("#gallery tbody tr", "rows => rows.map(r => r.id)")

    sort_by_uv = page.locator('button.sort[data-key="resenc|uv_error"]')
    sort_by_uv.click()
    assert order() == ["post-p0", "post-p1"]  # p0's model output is the human's own photo
    sort_by_uv.click()
    assert order() == ["post-p1", "post-p0"]
    page.select_option("#sort-any", "resenc|psnr")
    assert order() == ["post-p1", "post-p0"]  # ascending PSNR: worst first
    page.select_option("#filter-model", "rival")
    assert order() == ["post-p0"], "rival colorized only p0"
    assert page.locator("#gallery-count").text_content().startswith("1 of 2 posts")
    page.select_option("#filter-model", "")
    page.locator('.ranked-set[data-model="rival"] figcaption a').first.click()
    assert page.locator("#post-p0.target").is_visible(), "a ranked post's link opens it in the gallery"
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


BIDI_TITLE = "Grandpa \u202egpj.exe\u202c at the harbour \u2066(1952)\u2069"


@pytest.mark.parametrize(
    "permalink, href",
    [
        ("javascript:alert(1)", None),
        ("https://evil.example/r/colorization/", None),
        ("//evil.example/r/x/", None),
        ("r/colorization/comments/p0/x/", None),  # relative: would open as file:///…/r/… from disk
        ("/r/colorization/comments/p0/old_photo/", "https://www.reddit.com/r/colorization/comments/p0/old_photo/"),
        ("/user/someone/comments/p0/x/", "https://www.reddit.com/user/someone/comments/p0/x/"),
    ],
    ids=["javascript", "other-host", "scheme-relative", "relative", "subreddit", "profile"],
)
def test_the_report_links_only_to_reddit_permalinks_and_neutralises_bidi_controls(sessions, tmp_path, permalink, href):
    with sessions.begin() as session:
        photo = small("astronaut")
        post_id = add_post(session, "p0", gray_copy(photo), photo[4:-4, 6:], photo)
        session.get(Post, post_id).permalink = permalink
        session.get(Post, post_id).title = BIDI_TITLE
    evaluate_pending(sessions)
    folder = write_report(sessions, tmp_path / "report").parent
    posts = gallery_data(folder)["posts"]
    assert posts["reddit_id"] == ["p0"] and posts["link"] == [href]
    assert posts["title"] == ["Grandpa gpj.exe at the harbour (1952)"]
    for name in ("index.html", "gallery-data.js", "summary.md"):
        text = (folder / name).read_text(encoding="utf-8")
        assert href is not None or permalink not in text
        assert not any(control in text for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


SORT_AND_FILTER_POSTS = 3000


def test_gallery_of_thousands_of_posts_sorts_and_filters_in_a_real_browser(db_url, tmp_path, browser_page):
    from tests.factories import SyntheticPosts

    synthetic = SyntheticPosts(db_url, pool=20)
    synthetic.add(SORT_AND_FILTER_POSTS)
    index = write_report(synthetic.sessions, tmp_path / "report")
    data = gallery_data(index.parent)
    ids, uv_error = data["posts"]["reddit_id"], data["values"]["resenc"]["uv_error"]
    # Equal numbers (6 digits) keep the date order, either way; missing ones come last.
    by_uv = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (uv_error[i] is None, uv_error[i] or 0))]
    by_uv_down = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (uv_error[i] is None, -(uv_error[i] or 0)))]
    with_rival = [ids[i] for i, thumbnail in enumerate(data["machines"]["rival"]) if thumbnail]
    assert 0.85 * SORT_AND_FILTER_POSTS < len(ids) < SORT_AND_FILTER_POSTS, "about 10 % are refused"

    page = browser_page.page
    page.goto(index.as_uri())
    page.wait_for_selector("#gallery[data-ready]")

    def shown() -> list[str]:
        return page.eval_on_selector_all("#gallery tbody tr", "rows => rows.map(r => r.id.slice(5))")

    assert shown() == ids[:50], "one page, oldest first"
    page.select_option("#sort-any", "resenc|uv_error")
    assert shown() == by_uv[:50]
    page.locator('button.sort[data-key="resenc|uv_error"]').click()  # already the key: reverses
    assert shown() == by_uv_down[:50]
    page.select_option("#page-size", "200")
    page.locator("#page-next").click()
    assert shown() == by_uv_down[200:400]

    page.select_option("#filter-model", "rival")
    assert page.locator("#gallery").get_attribute("data-shown") == str(len(with_rival))
    rival_by_uv = [post for post in by_uv_down if post in set(with_rival)]
    assert shown() == rival_by_uv[:200], "a filter starts again at the first page"
    created = data["posts"]["created"]
    page.fill("#filter-from", created[1000])
    page.locator("#filter-from").dispatch_event("change")
    expected = [post for post in rival_by_uv if created[ids.index(post)] >= created[1000]]
    assert page.locator("#gallery").get_attribute("data-shown") == str(len(expected))
    assert shown() == expected[:200]
    links = page.eval_on_selector_all("#gallery a", "links => links.map(a => a.href)")
    assert len(links) == 200 and all(link.startswith("https://www.reddit.com/r/colorization/") for link in links)
    assert browser_page.problems == []


def _ranking_table(values: dict[str, float], *, model: str = "resenc", aligned: bool = True) -> pd.DataFrame:
    return pd.DataFrame({"reddit_id": list(values), "score": list(values.values()), "model": model,
                         "model_name": model, "aligned": aligned})


def test_the_ranked_posts_are_the_ten_best_and_the_ten_worst_best_and_worst_first():
    assert RANKED == 10
    values = {f"q{n:02d}": n / 100 for n in [7, 3, 11, 0, 9, 1, 5, 10, 2, 8, 4, 6]}  # 0.00 .. 0.11, shuffled
    table = pd.concat([
        _ranking_table(values),
        _ranking_table({"unaligned": 9.0}, aligned=False),  # not measured: never ranked, however high
        _ranking_table({"unscored": float("nan")}),
        _ranking_table({"q99": 9.0}, model="gray"),  # the gray baseline is a reference, not a contestant
    ], ignore_index=True)
    high = _rankings(table, "score", higher_is_better=True)
    assert list(high) == ["resenc"]
    assert [row["reddit_id"] for row in high["resenc"]["best"]] == [f"q{n:02d}" for n in range(11, 1, -1)]
    assert [row["reddit_id"] for row in high["resenc"]["worst"]] == [f"q{n:02d}" for n in range(0, 10)]
    assert high["resenc"]["best"][0]["value"] == 0.11
    low = _rankings(table, "score", higher_is_better=False)  # an error: the lowest is the best
    assert [row["reddit_id"] for row in low["resenc"]["best"]] == [f"q{n:02d}" for n in range(0, 10)]
    assert [row["reddit_id"] for row in low["resenc"]["worst"]] == [f"q{n:02d}" for n in range(11, 1, -1)]


def test_a_report_after_new_posts_writes_only_their_thumbnails_and_equals_a_fresh_one(db_url, tmp_path, monkeypatch):
    import eval.report
    from tests.factories import SyntheticPosts

    synthetic = SyntheticPosts(db_url)
    synthetic.add(12)
    folder = write_report(synthetic.sessions, tmp_path / "report").parent
    before = images_of(folder)
    old_ids = set(gallery_data(folder)["posts"]["reddit_id"])
    synthetic.add(4)
    written = []
    real_thumbnail = eval.report.thumbnail
    monkeypatch.setattr(eval.report, "thumbnail", lambda rgb, image_dir, name: written.append(name) or
                        real_thumbnail(rgb, image_dir, name))
    write_report(synthetic.sessions, folder)
    data = gallery_data(folder)
    new_at = [i for i, post in enumerate(data["posts"]["reddit_id"]) if post not in old_ids]
    assert new_at, "some of the 4 new posts aligned"
    new_thumbnails = {Path(data["posts"][role][i]).name for i in new_at for role in ("original", "human")} | {
        Path(names[i]).name for names in data["machines"].values() for i in new_at if names[i]}
    assert sorted(written) == sorted(new_thumbnails), "only the new posts' thumbnails are made"
    after = images_of(folder)
    assert all(after[name] == before[name] for name in before), "the others are kept as they were"

    monkeypatch.setattr(eval.report, "thumbnail", real_thumbnail)
    fresh = write_report(synthetic.sessions, tmp_path / "fresh").parent
    for name in ("metrics.csv", "summary.json", "gallery-data.js"):
        assert (folder / name).read_bytes() == (fresh / name).read_bytes(), name
    assert set(after) == set(images_of(fresh))
