"""Replies with real PRAW against the replay server: dry-run, once-only across kills, skips, limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from bot.client import make_reddit
from bot.replay import Fault, image_post
from bot.reply import Replier, escape_markdown
from bot.settings import RedditSettings, ReplySettings
from colorbot.cli import cli
from colorbot.config import ConfigError, load_config
from colorbot.schedule import default_jobs
from colorizer.images import examine
from db.models import Colorization, Metric, Post, PostState, Reply, ReplyStatus
from db.store import get_or_create_model, store_image
from tests.factories import flat_png

BOT = "colorbot-tests"
PASSWORD = "replay-password"
REPO = Path(__file__).resolve().parents[2]


def _png(color=(180, 90, 30)) -> bytes:
    return flat_png(16, 12, color)


def seed(server, sessions, reddit_id: str, *, age_h: float = 1.0, title: str = "Snake Charmer, Morocco, 1950",
         author: str | None = "colorist", subreddit: str = "colorization", nsfw: bool = False,
         removed: bool = False, on_reddit: bool = True, model: str = "residual-encoder", source: str = "reddit",
         **live) -> None:
    """An evaluated post in the database (colorization + metrics) and, unless told, on Reddit."""
    created = datetime.now(timezone.utc) - timedelta(hours=age_h)
    if on_reddit:
        extra = {"over_18": nsfw, **live}
        server.add_post(image_post(reddit_id, "{base}/i/x.png", title=title, author=author, subreddit=subreddit,
                                   created_utc=created.timestamp(), extra=extra))
    with sessions.begin() as session:
        post = Post(reddit_id=reddit_id, subreddit=subreddit, title=title, author=author, created_utc=created,
                    nsfw=nsfw, removed=removed, state=PostState.EVALUATED.value, source=source)
        session.add(post)
        session.flush()
        image = store_image(session, examine(_png((len(reddit_id) * 20 % 255, 90, ord(reddit_id[-1]) % 255))))
        db_model = get_or_create_model(session, name=model, version="v7")
        colorization = Colorization(post_id=post.id, model_id=db_model.id, image_id=image.id, seconds=0.5)
        session.add(colorization)
        session.flush()
        for name, value in {"delta_e_2000": 11.26, "psnr": 23.41, "ssim": 0.8123, "uv_error": 0.02}.items():
            session.add(Metric(colorization_id=colorization.id, name=name, value=value))


def replies(sessions) -> dict[str, Reply]:
    with sessions() as session:
        rows = session.execute(select(Post.reddit_id, Reply).join(Reply, Reply.post_id == Post.id)).all()
        session.expunge_all()
    return {reddit_id: reply for reddit_id, reply in rows}


def state(sessions, reddit_id: str) -> str:
    with sessions() as session:
        return session.scalar(select(Post.state).where(Post.reddit_id == reddit_id))


def replier(server, sessions, *, logged_in: bool = True, **settings) -> Replier:
    reddit_settings = server.reply_settings(BOT) if logged_in else server.reddit_settings()
    reddit = make_reddit(RedditSettings(**reddit_settings))
    return Replier(reddit, sessions, ReplySettings(enabled=True, **settings))


# -- dry-run --------------------------------------------------------------------------------------


def test_dry_run_records_and_posts_nothing(server, sessions):
    seed(server, sessions, "d1")
    report = replier(server, sessions, logged_in=False).run()  # the default: dry_run = true
    assert report.recorded == 1 and report.posted == 0
    row = replies(sessions)["d1"]
    assert row.status == ReplyStatus.DRY_RUN.value
    assert "residual\\-encoder v7" in row.body and "ΔE2000 11.3, PSNR 23.4 dB, SSIM 0.812" in row.body
    assert "!nocolorbot" in row.body and "automatic colorization" in row.body
    assert server.posted_comments == [] and server.submitted == [] and server.uploads == {}
    assert server.count("/api/comment") == server.count("/api/submit") == server.count("/api/media") == 0
    assert state(sessions, "d1") == PostState.EVALUATED.value
    assert replier(server, sessions, logged_in=False).run().recorded == 0  # recorded once


# -- live -----------------------------------------------------------------------------------------


def test_live_posts_one_comment_per_post_and_never_again(server, sessions):
    seed(server, sessions, "a1")
    seed(server, sessions, "a2", title="Dockers [click me](https://evil.example) **now**")
    replier(server, sessions, dry_run=True).run()  # a dry run first: the live run takes over its rows
    report = replier(server, sessions, dry_run=False).run()
    assert report.posted == 2, report.summary()
    rows = replies(sessions)
    for reddit_id in ("a1", "a2"):
        comments = server.comments_by(reddit_id, BOT)
        assert len(comments) == 1
        row = rows[reddit_id]
        assert row.status == ReplyStatus.POSTED.value and row.comment_id == comments[0]["id"]
        assert row.posted_at is not None and row.image_post_id
        assert comments[0]["body"] == row.body
        assert f"/r/u_{BOT}/comments/{row.image_post_id}/" in row.body
        assert state(sessions, reddit_id) == PostState.REPLIED.value
    assert [post["subreddit"] for post in server.submitted] == [f"u_{BOT}"] * 2
    assert sorted(post["title"][-4:] for post in server.submitted) == ["[a1]", "[a2]"]
    assert sorted(server.uploads.values()) == sorted(_uploaded(sessions))
    body = rows["a2"].body
    assert "](https://evil" not in body and "[click me]" not in body and "**now**" not in body
    assert escape_markdown("[click me](https://evil.example)") in body

    again = replier(server, sessions, dry_run=False).run()
    assert again.posted == 0 and again.examined == 0
    assert len(server.posted_comments) == 2 and len(server.submitted) == 2


def _uploaded(sessions) -> list[bytes]:
    with sessions() as session:
        return [c.image.data for c in session.scalars(select(Colorization))]


def test_every_skip_reason_is_stored_and_nothing_posted(server, sessions):
    seed(server, sessions, "slock", locked=True)
    seed(server, sessions, "sarch", archived=True)
    seed(server, sessions, "srem", removed_by_category="moderator")
    seed(server, sessions, "sdel", author=None)  # the author deleted it: "[deleted]" on Reddit
    seed(server, sessions, "sgone", on_reddit=False)  # no longer on Reddit at all
    seed(server, sessions, "snsfw", nsfw=True)
    seed(server, sessions, "sold", age_h=48)
    seed(server, sessions, "sopt", author="ShyColorist")
    seed(server, sessions, "ssub", subreddit="pics")
    seed(server, sessions, "sdbrem", removed=True)
    seed(server, sessions, "smodel", model="another-model")
    seed(server, sessions, "sok")
    server.update_post("sok", over_18=False)
    report = replier(server, sessions, dry_run=False, max_age_h=24, opted_out_users=["shycolorist"],
                     max_per_hour=50).run()
    rows = replies(sessions)
    expected = {
        "slock": "locked", "sarch": "archived", "srem": "removed", "sdel": "deleted", "sgone": "deleted",
        "snsfw": "nsfw", "sold": "older than 24 h", "sopt": "author opted out",
        "ssub": "subreddit r/pics is not in reply.subreddits", "sdbrem": "removed",
        "smodel": "no colorization by residual-encoder",
    }
    for reddit_id, reason in expected.items():
        assert rows[reddit_id].status == ReplyStatus.SKIPPED.value, reddit_id
        assert rows[reddit_id].reason == reason, reddit_id
        assert state(sessions, reddit_id) == PostState.EVALUATED.value
        assert server.comments_by(reddit_id, BOT) == []
    assert rows["sok"].status == ReplyStatus.POSTED.value, rows["sok"].reason
    assert len(server.posted_comments) == 1 and len(server.submitted) == 1
    assert sum(report.skipped.values()) == len(expected)

    # NSFW allowed: the skipped post is re-checked and answered; a lock on Reddit is found live.
    report = replier(server, sessions, dry_run=False, allow_nsfw=True, opted_out_users=["shycolorist"],
                     max_per_hour=50).run()
    assert report.posted == 1
    assert replies(sessions)["snsfw"].status == ReplyStatus.POSTED.value
    assert replies(sessions)["slock"].reason == "locked"
    assert len(server.posted_comments) == 2


def test_posts_imported_from_a_dump_are_never_replied_to_however_young(server, sessions):
    seed(server, sessions, "hist1", age_h=0.5, source="dump")
    seed(server, sessions, "live1", age_h=0.5)
    report = replier(server, sessions, dry_run=False, max_age_h=10**6).run()
    rows = replies(sessions)
    assert (rows["hist1"].status, rows["hist1"].reason) == (ReplyStatus.SKIPPED.value, "imported from a dump file")
    assert rows["live1"].status == ReplyStatus.POSTED.value and report.posted == 1
    assert server.comments_by("hist1", BOT) == [] and server.count("/api/info") == 1  # not even looked up


def test_replies_per_hour_limit_holds(server, sessions):
    for number in range(4):
        seed(server, sessions, f"h{number}")
    report = replier(server, sessions, dry_run=False, max_per_hour=2).run()
    assert report.posted == 2 and "max_per_hour" in (report.stopped or "")
    assert replier(server, sessions, dry_run=False, max_per_hour=2).run().posted == 0
    assert len(server.posted_comments) == 2
    with sessions.begin() as session:  # an hour later
        session.execute(update(Reply).values(posted_at=datetime.now(timezone.utc) - timedelta(minutes=61)))
    assert replier(server, sessions, dry_run=False, max_per_hour=2).run().posted == 2
    assert len(server.posted_comments) == 4


@pytest.mark.parametrize("kind", ["ratelimit", "429"])
def test_reddit_rate_limit_stops_the_run_and_is_retried_later(server, sessions, kind):
    seed(server, sessions, "r1")
    seed(server, sessions, "r2")
    server.faults.add(Fault(kind, path="/api/comment", retry_after=120))
    report = replier(server, sessions, dry_run=False).run()
    assert report.posted == 0 and "rate limit" in (report.stopped or "").lower()
    assert server.posted_comments == [] and server.count("/api/comment") == 1  # stopped at the first
    pending = [row for row in replies(sessions).values() if row.status == ReplyStatus.PENDING.value]
    assert len(pending) == 1 and pending[0].reason.startswith("rate-limited until ")

    # Before the deadline nothing is even tried.
    assert replier(server, sessions, dry_run=False).run().posted == 0
    assert server.count("/api/comment") == 1
    with sessions.begin() as session:  # the deadline passes
        session.execute(update(Reply).values(reason="rate-limited until 2000-01-01T00:00:00+00:00"))
    report = replier(server, sessions, dry_run=False).run()
    assert report.posted == 2
    assert len(server.submitted) == 2  # the first post's image post was reused, not made again
    assert all(len(server.comments_by(rid, BOT)) == 1 for rid in ("r1", "r2"))


# -- killed mid-reply -----------------------------------------------------------------------------


@pytest.fixture
def config_file(server, tmp_path, db_url, engine):
    settings = server.reply_settings(BOT)
    settings.pop("password")
    lines = [f'[database]\nurl = "{db_url}"\n', "[reddit]"]
    lines += [f'{key} = "{value}"' for key, value in settings.items()]
    lines += ["", "[reply]", "enabled = true", "dry_run = false", ""]
    path = tmp_path / "colorbot.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _start(config_file) -> subprocess.Popen:
    env = {**os.environ, "COLORBOT_REDDIT__PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}
    env.pop("COLORBOT_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "colorbot", "--config", str(config_file), "reply"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("killed_at", ["/api/comment", "/api/submit"])
def test_killed_mid_reply_and_restarted_posts_exactly_one_comment(server, sessions, config_file, killed_at):
    seed(server, sessions, "k1")
    hold = server.hold(killed_at)
    process = _start(config_file)
    try:
        assert hold.arrived.wait(60), "the reply never reached " + killed_at
        # The request is recorded by "Reddit"; the process dies before it hears the answer.
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        hold.release()
        if process.poll() is None:
            process.kill()
    row = replies(sessions)["k1"]
    assert row.status == ReplyStatus.PENDING.value and row.comment_id is None and row.taken_by
    assert len(server.comments_by("k1", BOT)) == (1 if killed_at == "/api/comment" else 0)
    with sessions.begin() as session:  # the killed replier holds the post for its lease; as if that had run out
        session.execute(update(Reply).values(taken_until=datetime.now(timezone.utc) - timedelta(seconds=1)))

    restarted = _start(config_file)
    output, _ = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, output
    comments = server.comments_by("k1", BOT)
    assert len(comments) == 1 and len(server.posted_comments) == 1
    assert len(server.submitted) == 1  # the image post was not made twice either
    row = replies(sessions)["k1"]
    assert row.status == ReplyStatus.POSTED.value and row.comment_id == comments[0]["id"]
    assert state(sessions, "k1") == PostState.REPLIED.value
    assert PASSWORD not in output and "replay-secret" not in output
    with sessions() as session:
        assert all(PASSWORD not in (r.body + (r.reason or "")) for r in session.scalars(select(Reply)))


# -- two repliers at once -------------------------------------------------------------------------


@pytest.mark.parametrize("held_at", ["/api/info", "/api/submit", "/api/comment"])
def test_two_live_repliers_racing_on_one_post_give_one_comment_and_one_image_post(server, sessions, held_at):
    """Replier A is held at a step of its reply (checking the post, uploading the image, commenting)
    while replier B runs from start to end; then A goes on. Before A has taken the post (``/api/info``)
    B takes it and posts, and A leaves it; after, B leaves it to A."""
    seed(server, sessions, "race1")
    first, second = replier(server, sessions, dry_run=False), replier(server, sessions, dry_run=False)
    hold = server.hold(held_at)
    reports = {}
    running = threading.Thread(target=lambda: reports.setdefault("first", first.run()))
    running.start()
    try:
        assert hold.arrived.wait(60), "the first replier never reached " + held_at
        reports["second"] = second.run()
    finally:
        hold.release()
        running.join(60)
    assert not running.is_alive()
    poster, other = ("second", "first") if held_at == "/api/info" else ("first", "second")
    assert (reports[poster].posted, reports[poster].busy) == (1, 0), reports[poster].summary()
    assert (reports[other].posted, reports[other].busy) == (0, 1), reports[other].summary()
    assert "1 held by another replier" in reports[other].summary()
    comments = server.comments_by("race1", BOT)
    assert len(comments) == 1 and len(server.posted_comments) == 1
    assert len(server.submitted) == 1
    row = replies(sessions)["race1"]
    assert (row.status, row.comment_id, row.taken_by) == (ReplyStatus.POSTED.value, comments[0]["id"], None)
    assert state(sessions, "race1") == PostState.REPLIED.value


def test_a_replier_that_died_holding_a_post_lets_it_go_when_its_lease_ends(server, sessions):
    seed(server, sessions, "lease1")
    with sessions.begin() as session:  # a replier on another machine took it, recorded it pending, and died
        post_id = session.scalar(select(Post.id).where(Post.reddit_id == "lease1"))
        session.add(Reply(post_id=post_id, status=ReplyStatus.PENDING.value, taken_by="gone:1:dead",
                          taken_until=datetime.now(timezone.utc) + timedelta(minutes=10)))
    dry = replier(server, sessions, logged_in=False).run()
    assert dry.recorded == 0 and replies(sessions)["lease1"].status == ReplyStatus.PENDING.value
    assert replier(server, sessions, dry_run=False).run().busy == 1
    assert server.posted_comments == [] and server.submitted == []
    with sessions.begin() as session:  # its lease runs out
        session.execute(update(Reply).values(taken_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    report = replier(server, sessions, dry_run=False).run()
    assert report.posted == 1 and report.busy == 0, report.summary()
    assert len(server.comments_by("lease1", BOT)) == 1 and len(server.submitted) == 1


# -- configuration --------------------------------------------------------------------------------


def test_reply_is_off_unless_enabled_and_template_is_checked(tmp_path):
    assert "reply" not in [job.name for job in default_jobs(_config(tmp_path))]
    enabled = _config(tmp_path, "[reply]\nenabled = true\n")
    assert "reply" in [job.name for job in default_jobs(enabled)]
    assert enabled.reply.dry_run is True
    with pytest.raises(ConfigError, match="reply.template"):
        _config(tmp_path, '[reply]\ntemplate = "{title.__class__} {link}"\n')
    path = tmp_path / "off.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "reply"])
    assert result.exit_code == 2 and "reply.enabled" in result.output


def _config(tmp_path, text: str = ""):
    path = tmp_path / "colorbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def test_bidirectional_controls_in_titles_and_authors_never_reach_a_reply():
    from types import SimpleNamespace

    from bot.reply import image_title, render_comment

    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    title, author = "Family \u202efdp.exe\u202c photo \u2067(1931)\u2069", "\u202eevil_user"
    body = render_comment(ReplySettings(), link="https://i.redd.it/x.png", model="m", version="1", metrics="",
                          title=title, author=author, subreddit="colorization")
    assert not any(control in body for control in controls)
    assert escape_markdown("Family fdp.exe photo (1931)") in body
    post, model = SimpleNamespace(title=title, reddit_id="abc"), SimpleNamespace(name="m", version="1")
    assert not any(control in image_title(post, model) for control in controls)
    # Right-to-left letters themselves stay: only the controls that reorder text go.
    assert "שלום" in escape_markdown("שלום \u202e")
