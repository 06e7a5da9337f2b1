"""colorbot import: history from Pushshift / Arctic Shift dump files, stored as the scraper stores posts."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import zstandard
from sqlalchemy import func, select

from bot.dumps import DumpError, DumpImporter, DumpReader
from bot.settings import RedditSettings
from db.models import Post, PostComment, PostImage


from .conftest import Harness
from tests.factories import (color_scene, encoded, filler_objects, gray_copy, new_comment, new_gallery, new_post, old_comment,
                             old_post, t3, write_dump)

REPO = Path(__file__).resolve().parents[2]


def posts(sessions) -> dict[str, Post]:
    with sessions() as session:
        found = {post.reddit_id: post for post in session.scalars(select(Post))}
        session.expunge_all()
    return found


def comments(sessions) -> dict[str, str]:
    with sessions() as session:
        return dict(session.execute(select(PostComment.reddit_id, PostComment.body)).all())


def importer(sessions, **kwargs) -> DumpImporter:
    return DumpImporter(sessions, RedditSettings(), **kwargs)


def run_import(*args, db: Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(colorbot_import(*args), cwd=cwd, env=clean_env(db), capture_output=True, text=True,
                          timeout=timeout)


def colorbot_import(*args) -> list[str]:
    return [sys.executable, "-m", "colorbot", "import", *map(str, args), "--no-progress"]


def clean_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORBOT_")}
    env["COLORBOT_DATABASE__URL"] = f"sqlite:///{db}"
    env["PYTHONPATH"] = str(REPO)
    return env


def sqlite_count(db: Path, table: str = "posts") -> int:
    connection = sqlite3.connect(db, timeout=30)
    try:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - a test's own name
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        connection.close()


# -- what is stored --------------------------------------------------------------------------------

OLD = [
    old_post("1hd0ex", "http://i.imgur.com/AbCdE12.jpg"),
    old_post("1hd0ey", "http://imgur.com/a/XyZab", title="An album"),  # albums hold no single image
    old_post("1hd0ez", "http://i.imgur.com/Removed1.jpg", selftext="[removed]"),
    old_post("1hd0f0", "http://i.imgur.com/Deleted.jpg", author="[deleted]", selftext="[deleted]"),
    old_post("1hd0f1", "", is_self=True, selftext="How do I start colorizing?"),
    old_post("1hd0f2", "http://i.imgur.com/Other12.jpg", subreddit="pics", title="colorization of my dog"),
]
NEW = [
    new_post("zq9a01", "https://i.redd.it/a1b2c3d4e5f6.png", created_utc=1_700_000_000, author="op"),
    new_gallery("zq9a02", [("abc123", "image/jpeg"), ("def456", "image/png")], created_utc=1_700_000_100),
    new_gallery("zq9a03", [], created_utc=1_700_000_200, extra={"media_metadata": None, "gallery_data": None}),
    new_post("zq9a04", "https://i.redd.it/removed0.jpg", removed_by_category="moderator", selftext="[removed]"),
    t3("zq9a05", is_video=True, domain="v.redd.it", is_self=False),
    t3("zq9a06", crosspost_parent="t3_zz9", crosspost_parent_list=[t3("zz9", subreddit="pics")]),
    new_post("zq9a07", "https://i.redd.it/nsfw00.jpg", over_18=True),
    {"id": None, "subreddit": "colorization", "created_utc": 1.7e9},  # no id: logged, not stored
]


def test_old_and_new_objects_are_stored_with_the_scrapers_decisions(tmp_path, sessions):
    dump = write_dump(tmp_path / "colorization_submissions.zst",
                      [*OLD, *filler_objects(300, seed=1), *NEW, *filler_objects(300, seed=2, first_id=36**6)])
    report = importer(sessions).run(dump)
    stored = posts(sessions)
    assert set(stored) == {p["id"] for p in OLD + NEW if p["id"] and p["subreddit"] == "colorization"}
    assert report.lines == len(OLD) + len(NEW) + 600 and report.malformed == 1
    assert (report.posts_stored, report.posts_skipped) == (12, 9)
    decisions = {rid: (p.layout, p.state, p.skip_reason) for rid, p in stored.items()}
    assert decisions == {
        "1hd0ex": ("single", "new", None),
        "1hd0ey": ("unknown", "skipped", "link is not an image: 'http://imgur.com/a/XyZab'"),
        "1hd0ez": ("unknown", "skipped", "removed by the moderators"),
        "1hd0f0": ("unknown", "skipped", "deleted by its author"),
        "1hd0f1": ("unknown", "skipped", "text post without an image"),
        "zq9a01": ("single", "new", None),
        "zq9a02": ("gallery", "new", None),
        "zq9a03": ("gallery", "skipped", "gallery without a usable image (no items)"),
        "zq9a04": ("unknown", "skipped", "removed (moderator)"),
        "zq9a05": ("unknown", "skipped", "video post"),
        "zq9a06": ("unknown", "skipped", "crosspost of t3_zz9 from r/pics"),
        "zq9a07": ("unknown", "skipped", "NSFW post (reddit.allow_nsfw is off)"),
    }
    old = stored["1hd0ex"]
    assert old.created_utc.replace(tzinfo=timezone.utc) == datetime(2013, 7, 1, 9, 13, 20, tzinfo=timezone.utc)
    assert (old.score, old.author, old.url, old.permalink) == (
        12, "colorist", "http://i.imgur.com/AbCdE12.jpg", "/r/colorization/comments/1hd0ex/abraham_lincoln,_1865/")
    assert stored["1hd0f0"].author is None and stored["1hd0ez"].removed and stored["zq9a07"].nsfw
    assert {p.source for p in stored.values()} == {"dump"}
    with sessions() as session:
        assert session.scalar(select(func.count(PostImage.id))) == 0  # downloading is the scrape step's


def test_subreddits_and_dates_select_what_is_stored(tmp_path, sessions):
    dump = write_dump(tmp_path / "RS_2013-07.zst", [
        old_post("a1", "http://i.imgur.com/A1a1a1a.jpg", created_utc=1_372_636_799),  # 2013-06-30 23:59:59
        old_post("a2", "http://i.imgur.com/A2a2a2a.jpg", created_utc=1_372_636_800),  # 2013-07-01 00:00:00
        old_post("a3", "http://i.imgur.com/A3a3a3a.jpg", created_utc=1_375_315_199),  # 2013-07-31 23:59:59
        old_post("a4", "http://i.imgur.com/A4a4a4a.jpg", created_utc=1_375_315_200),  # 2013-08-01
        old_post("b1", "http://i.imgur.com/B1b1b1b.jpg", subreddit="ColorizedHistory"),
        old_post("c1", "http://i.imgur.com/C1c1c1c.jpg", subreddit="pics"),
    ])
    report = importer(sessions, since=datetime(2013, 7, 1), until=datetime(2013, 8, 1)).run(dump)
    assert set(posts(sessions)) == {"a2", "a3"} and report.out_of_range == 2
    importer(sessions, subreddits=["colorizedhistory"]).run(dump)  # any case: Reddit's names are not case-sensitive
    assert set(posts(sessions)) == {"a2", "a3", "b1"}


def test_a_rerun_or_an_overlapping_file_stores_nothing_twice(tmp_path, sessions):
    objects = list(filler_objects(3_000, seed=3, share=0.2))
    ours = [o["id"] for o in objects if o["subreddit"] == "colorization"]
    first = write_dump(tmp_path / "RS_a.zst", objects[:2_000])
    overlapping = write_dump(tmp_path / "RS_b.zst", objects[1_000:], frames=3)  # several frames back to back
    in_first = [o for o in objects[:2_000] if o["subreddit"] == "colorization"]
    assert importer(sessions, batch_size=50).run(first).posts_stored == len(in_first)
    again = importer(sessions, batch_size=50).run(first)
    assert again.posts_stored == 0 and again.posts_known == again.posts_matched
    report = importer(sessions, batch_size=50).run(overlapping)
    assert report.posts_known == len([o for o in objects[1_000:2_000] if o["subreddit"] == "colorization"])
    assert sorted(posts(sessions)) == sorted(ours) and len(ours) > 500


def test_a_post_the_scraper_stored_is_left_as_it_is(tmp_path, sessions):
    with sessions.begin() as session:
        session.add(Post(reddit_id="zq9a01", subreddit="colorization", title="live", score=99,
                         created_utc=datetime(2023, 11, 14, tzinfo=timezone.utc), state="fetched"))
    report = importer(sessions).run(write_dump(tmp_path / "d.zst", NEW[:1]))
    post = posts(sessions)["zq9a01"]
    assert report.posts_known == 1 and (post.title, post.score, post.state, post.source) == (
        "live", 99, "fetched", "reddit")


# -- the format ------------------------------------------------------------------------------------


def test_files_with_a_2_gib_window_are_read(tmp_path):
    dump = write_dump(tmp_path / "long.zst", NEW[:2])
    assert zstandard.get_frame_parameters(dump.read_bytes()).window_size == 2**31  # as zstd --long=31 writes
    with pytest.raises(zstandard.ZstdError, match="too much memory"):  # the default limit refuses it
        zstandard.ZstdDecompressor().decompressobj().decompress(dump.read_bytes())
    assert [number for number, _ in DumpReader(dump, [b'"colorization"'])] == [1, 2]


def test_only_lines_mentioning_a_subreddit_are_parsed_and_numbers_count_every_line(tmp_path):
    lines = [b'{"subreddit":"pics"}\n', b'{"subreddit": "Colorization", "id": "x"}\n', b"not json at all\n",
             b'{"subreddit":"colorizationrequests"}\n', b'{"subreddit":"colorization"}']  # no final newline
    reader = DumpReader(write_dump(tmp_path / "l.zst", lines), [b'"colorization"'])
    assert [(number, line) for number, line in reader] == [(2, lines[1][:-1]), (5, lines[4])]
    assert reader.lines == 5


def test_a_truncated_file_is_one_error_with_the_line_reached_and_keeps_what_came_before(tmp_path, sessions):
    objects = list(filler_objects(8_000, seed=4, share=0.1))
    whole = write_dump(tmp_path / "whole.zst", objects)
    cut = tmp_path / "RS_cut.zst"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    db = tmp_path / "c.db"
    result = run_import(cut, db=db, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "RS_cut.zst" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "truncated" in errors[0] and "ends inside a frame" in errors[0]
    reached = int(errors[0].split("after line ")[1].split()[0].rstrip(";,)"))
    assert 1_000 < reached < 8_000
    # every post in a line before the error is stored, the half-read batch included
    expected = {o["id"] for o in objects[:reached] if o["subreddit"] == "colorization"}
    connection = sqlite3.connect(db)
    stored = {row[0] for row in connection.execute("SELECT reddit_id FROM posts")}
    status = connection.execute("SELECT status FROM job_runs WHERE job = 'import'").fetchall()
    connection.close()
    assert stored == expected and len(expected) % 500 != 0
    assert status == [("failed",)]
    assert run_import(whole, db=db, cwd=tmp_path).returncode == 0  # the whole file carries on from there
    assert sqlite_count(db) == sum(o["subreddit"] == "colorization" for o in objects)


def test_corrupt_data_is_one_error_naming_the_file(tmp_path):
    dump = write_dump(tmp_path / "RS_bad.zst", filler_objects(5_000, seed=5, share=0.05))
    data = bytearray(dump.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    dump.write_bytes(bytes(data))
    result = run_import(dump, db=tmp_path / "c.db", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "RS_bad.zst" in line and "corrupt" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "after line" in errors[0] and "posts stored" in errors[0]
    assert sqlite_count(tmp_path / "c.db") > 0


def test_not_zstd_at_all_is_one_error(tmp_path, sessions):
    text = tmp_path / "RS_plain.json"
    text.write_text('{"subreddit": "colorization"}\n')
    with pytest.raises(DumpError, match="corrupt or not zstd after line 0"):
        importer(sessions).run(text)


def test_a_bad_json_line_is_skipped_with_a_warning_and_the_exit_code_says_so(tmp_path):
    dump = write_dump(tmp_path / "RS_line.zst", [
        NEW[0], b'{"subreddit": "colorization", "id": "zzz1", "title": "cut off\n', NEW[1],
        b'["colorization"]\n', b'{"subreddit":"pics", broken but not ours\n',
    ])
    result = run_import(dump, db=tmp_path / "c.db", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and "RS_line.zst line 2: not JSON" in warnings[0]
    assert "RS_line.zst line 4: a JSON list, not an object" in warnings[1]
    assert "2 stored" in result.stdout and "2 bad lines skipped" in result.stdout
    assert sqlite_count(tmp_path / "c.db") == 2


# -- kills -----------------------------------------------------------------------------------------


def test_sigkill_mid_file_loses_nothing_committed_and_the_rerun_completes(tmp_path):
    objects = list(filler_objects(12_000, seed=6, share=0.9))
    dump = write_dump(tmp_path / "RS_big.zst", objects)
    ours = {o["id"] for o in objects if o["subreddit"] == "colorization"}
    db = tmp_path / "c.db"
    process = subprocess.Popen(colorbot_import(dump), cwd=tmp_path, env=clean_env(db),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None and sqlite_count(db) < 1_000:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    kept = sqlite_count(db)
    assert 1_000 <= kept < len(ours) and kept % 500 == 0  # whole batches, committed

    connection = sqlite3.connect(db)
    with connection:  # as if the heartbeat's timeout had passed since the kill
        connection.execute("UPDATE job_runs SET heartbeat_at = '2000-01-01 00:00:00.000000'")
    connection.close()
    rerun = run_import(dump, db=db, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(ours) - kept} stored" in rerun.stdout and f"{kept} already stored" in rerun.stdout
    connection = sqlite3.connect(db)
    stored = [row[0] for row in connection.execute("SELECT reddit_id FROM posts")]
    runs = connection.execute("SELECT status FROM job_runs ORDER BY id").fetchall()
    connection.close()
    assert len(stored) == len(set(stored)) and set(stored) == ours
    assert runs == [("killed",), ("ok",)]  # the killed run is found out by the next one


def test_sigterm_stores_the_batch_in_hand_and_says_how_to_carry_on(tmp_path):
    objects = list(filler_objects(12_000, seed=7, share=0.9))
    dump = write_dump(tmp_path / "RS_term.zst", objects)
    db = tmp_path / "c.db"
    process = subprocess.Popen(colorbot_import(dump), cwd=tmp_path, env=clean_env(db),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and sqlite_count(db) < 1_000:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "stopped by a signal after" in err and "carries on" in err
    reached = int(err.split("RS_term.zst line ")[1].split(";")[0])
    expected = {o["id"] for o in objects[:reached] if o["subreddit"] == "colorization"}
    connection = sqlite3.connect(db)
    assert {row[0] for row in connection.execute("SELECT reddit_id FROM posts")} == expected
    connection.close()


# -- comments --------------------------------------------------------------------------------------


def test_only_the_posters_comments_with_links_under_waiting_posts_are_kept(tmp_path, sessions):
    submissions = write_dump(tmp_path / "RS.zst", [
        old_post("p1", "http://i.imgur.com/Colour1.jpg", author="op"),
        old_post("p2", "http://imgur.com/a/AlbumXY", author="op", title="x"),  # skipped: no comment needed
        new_post("p3", "https://i.redd.it/colour3.jpg", author="Op3"),
    ])
    comment_dump = write_dump(tmp_path / "RC.zst", [
        old_comment("k1", "p1", "Original: http://i.imgur.com/BwOrig1.jpg", author="op"),
        old_comment("k2", "p1", "here's mine http://i.imgur.com/Other99.jpg", author="someone"),
        old_comment("k3", "p1", "thanks everyone!", author="op"),
        old_comment("k4", "p2", "Original: http://i.imgur.com/BwOrig2.jpg", author="op"),
        old_comment("k5", "p9", "Original: http://i.imgur.com/BwOrig9.jpg", author="op"),  # not a stored post
        old_comment("k6", "p1", "Original: http://i.imgur.com/Pics.jpg", author="op", subreddit="pics"),
        new_comment("k7", "p3", "b&amp;w: https://i.redd.it/bw3.jpg", author="Op3"),
        new_comment("k8", "p3", "b&w: https://i.redd.it/bw3.jpg", author="op3"),  # not the poster: names differ
    ])
    report = importer(sessions).run(submissions, [comment_dump, comment_dump])  # twice: stored once
    assert comments(sessions) == {"k1": "Original: http://i.imgur.com/BwOrig1.jpg",
                                  "k7": "b&amp;w: https://i.redd.it/bw3.jpg"}
    assert (report.comments_stored, report.comments_known, report.comment_lines) == (2, 2, 16)


def test_an_imported_post_is_refreshed_and_fetched_by_the_scrape_step(tmp_path, server, sessions):
    """The scrape step asks Reddit for the post now (score, removal) and finds the original in the
    poster's comment from the dump, deleted from Reddit since."""
    original, colorized = encoded(gray_copy(color_scene(21))), encoded(color_scene(21))
    server.add_image("h1.png", colorized)
    server.add_image("h1-bw.png", original)
    base = server.base_url
    live = new_post("h1", "{base}/i/h1.png", base="{base}", author="op", num_comments=1, score=250)
    server.add_post(live, [])  # the comment is gone from Reddit
    server.add_post(new_post("h2", "{base}/i/h1.png", base="{base}", removed_by_category="moderator"))
    server.add_post(t3("n1", created_utc=1_800_000_000))  # the newest: a walk of one post stops there
    dumped = [new_post("h1", f"{base}/i/h1.png", base=base, author="op", score=3),
              new_post("h2", f"{base}/i/h1.png", base=base)]
    importer(sessions).run(
        write_dump(tmp_path / "RS.zst", dumped),
        [write_dump(tmp_path / "RC.zst", [new_comment("c1", "h1", f"Original: {base}/i/h1-bw.png", author="op")])],
    )
    assert {rid: (p.state, p.score) for rid, p in posts(sessions).items()} == {"h1": ("new", 3), "h2": ("new", 1)}

    report = Harness(server, sessions).scrape(limit=1)  # h1 and h2 come through /api/info, as waiting posts
    assert report.seen == 1 and report.retried == 1 and server.count("/api/info") >= 1
    stored = posts(sessions)
    assert (stored["h1"].state, stored["h1"].layout, stored["h1"].score) == ("fetched", "comment-link", 250)
    assert (stored["h2"].state, stored["h2"].skip_reason) == ("skipped", "removed (moderator) after it was stored")
    with sessions() as session:
        roles = dict(session.execute(
            select(PostImage.role, PostImage.source_url).join(Post).where(Post.reddit_id == "h1")).all())
    assert roles == {"original": f"{base}/i/h1-bw.png", "colorization": f"{base}/i/h1.png"}
