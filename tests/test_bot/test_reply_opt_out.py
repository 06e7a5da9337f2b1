"""Opt-outs by reply: whoever answers one of the bot's comments with the opt-out word is never replied to again.

Real PRAW against the replay server's inbox (``/message/comments``); the opt-outs land in ``opt_outs``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.replay import Fault
from db.models import OptOut, ReplyStatus

from .test_reply import BOT, replier, replies, seed


def opt_outs(sessions) -> dict[str, str | None]:
    with sessions() as session:
        return {row.username: row.comment_id for row in session.scalars(select(OptOut))}


def bot_comment(server, reddit_id: str) -> str:
    (comment,) = server.comments_by(reddit_id, BOT)
    return comment["id"]


def test_user_who_replied_the_word_is_skipped_on_a_later_post(server, sessions):
    seed(server, sessions, "o1", author="Painter")
    assert replier(server, sessions, dry_run=False).run().posted == 1
    said = server.add_inbox_reply(bot_comment(server, "o1"), "Thanks, but \\!NoColorBot please", author="Painter")
    server.add_inbox_reply(bot_comment(server, "o1"), "Looks great!", author="Admirer")

    seed(server, sessions, "o2", author="painter")  # names are case-insensitive
    seed(server, sessions, "o3", author="Admirer")
    report = replier(server, sessions, dry_run=False).run()
    assert report.opted_out == 1 and report.posted == 1, report.summary()
    assert opt_outs(sessions) == {"painter": said["id"]}
    rows = replies(sessions)
    assert rows["o2"].status == ReplyStatus.SKIPPED.value and rows["o2"].reason == "author opted out"
    assert rows["o3"].status == ReplyStatus.POSTED.value
    assert server.comments_by("o2", BOT) == [] and len(server.posted_comments) == 2
    assert server.count("/message/comments") >= 1


def test_the_word_inside_another_word_does_not_opt_out(server, sessions):
    seed(server, sessions, "w1")
    replier(server, sessions, dry_run=False, opt_out_word="stop").run()
    parent = bot_comment(server, "w1")
    server.add_inbox_reply(parent, "My stopwatch says this took ages. Unstoppable!", author="Timekeeper")
    server.add_inbox_reply(parent, "stop_it is not the word either", author="Coder")
    server.add_inbox_reply(parent, "STOP.", author="Stopper")

    for reddit_id, author in (("w2", "Timekeeper"), ("w3", "Coder"), ("w4", "Stopper")):
        seed(server, sessions, reddit_id, author=author)
    report = replier(server, sessions, dry_run=False, opt_out_word="stop", max_per_hour=10).run()
    assert opt_outs(sessions) == {"stopper": server.inbox[0]["id"]}
    rows = replies(sessions)
    assert rows["w2"].status == rows["w3"].status == ReplyStatus.POSTED.value, report.summary()
    assert rows["w4"].reason == "author opted out"


def test_running_twice_stores_the_opt_out_once(server, sessions):
    seed(server, sessions, "t1a")
    seed(server, sessions, "t1b")
    replier(server, sessions, dry_run=False).run()
    first = server.add_inbox_reply(bot_comment(server, "t1b"), "!nocolorbot", author="Twice", created_utc=1.7e9)
    server.add_inbox_reply(bot_comment(server, "t1a"), "I said !NOCOLORBOT", author="twice", created_utc=1.7e9 + 60)

    assert replier(server, sessions, dry_run=False).run().opted_out == 1
    assert replier(server, sessions, dry_run=False).run().opted_out == 0
    assert replier(server, sessions, dry_run=True).run().opted_out == 0  # a logged-in dry run reads it too
    assert opt_outs(sessions) == {"twice": first["id"]}  # the earliest reply that said it
    assert server.count("/message/comments") == 4  # the first run read the (empty) inbox too


def test_dry_run_without_credentials_skips_the_inbox_and_still_honours_stored_opt_outs(server, sessions, caplog):
    with sessions.begin() as session:
        session.add(OptOut(username="Stored", comment_id="r00001"))  # stored lower-case
    seed(server, sessions, "n1", author="STORED")
    seed(server, sessions, "n2", author="Configured")
    seed(server, sessions, "n3", author="Someone")
    with caplog.at_level(logging.INFO, logger="bot.reply"):
        report = replier(server, sessions, logged_in=False, opted_out_users=["configured"]).run()
    assert report.recorded == 1 and report.opted_out == 0 and report.stopped is None, report.summary()
    assert "inbox is not read" in caplog.text
    assert server.count("/message/comments") == 0 and server.posted_comments == []
    rows = replies(sessions)
    assert rows["n1"].reason == rows["n2"].reason == "author opted out"
    assert rows["n3"].status == ReplyStatus.DRY_RUN.value
    assert opt_outs(sessions) == {"stored": "r00001"}


def test_a_live_run_that_cannot_read_the_inbox_posts_nothing(server, sessions):
    seed(server, sessions, "f1")
    server.faults.add(Fault("500", path="/message/comments", times=None))
    report = replier(server, sessions, dry_run=False).run()
    assert report.posted == 0 and "inbox" in (report.stopped or ""), report.summary()
    assert server.posted_comments == [] and server.submitted == []
    server.faults.clear()
    assert replier(server, sessions, dry_run=False).run().posted == 1
