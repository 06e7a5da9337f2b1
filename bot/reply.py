"""Optional replies: post the machine's colorization under an evaluated post, safely and once.

First, opt-outs: the replies to the bot's own comments (its inbox, ``/message/comments``) are read,
and every author whose reply contains ``reply.opt_out_word`` as a whole word (any case) is stored
in ``opt_outs`` (once per user, lower-case). Reading the inbox needs a logged-in account: a dry run
without one skips it (logged); a live run that cannot read it stops before replying to anyone.
``reply.opted_out_users`` and ``opt_outs`` both count as opted out.

Then, for each post in state ``evaluated`` that has a colorization by ``reply.model`` and its metrics:

1. cheap checks from the database (subreddit allow-list, age, NSFW, removed, deleted author,
   opted-out author), then the post's current state from Reddit (``/api/info``: locked, archived,
   removed, deleted, NSFW). A refusal is stored as a ``skipped`` row in ``replies`` with its reason
   (re-checked on later runs: configuration may change);
2. dry-run (the default): the comment that would be posted is stored as a ``dry-run`` row and
   logged; nothing is posted;
3. live: a ``pending`` row is committed **before** anything is posted; then the colorization is
   uploaded as an image post on the bot's own profile (``u_<name>``, its id committed at once),
   the original post gets the comment, and the row becomes ``posted`` (post state ``replied``).

A ``pending`` row found on a later run means a run stopped between "recorded" and "done" (a crash,
a kill, a time-out whose outcome is unknown). It is *reconciled*, never re-posted blindly: if the
post already carries a top-level comment by the bot, that comment is recorded as the reply; an
image post already made for it (found on the profile by the ``[<post id>]`` tag in its title) is
reused. Only then is the comment posted.

Only one replier posts for a post, however many run at once on however many machines: a live
replier first *takes* the post's row (``taken_by``, ``taken_until``) with one conditional write
that succeeds only if no other replier holds it (or the holder's lease of ``LEASE_S`` ran out:
it died), and lets go when done. A post another replier holds is left to it; a skip or a dry-run
never overwrites a pending row held by another, so a reply in flight stays reconcilable.

Reddit's rate limits end the run: a ``RATELIMIT`` API error or HTTP 429 leaves the row pending
with ``rate-limited until <time>``, and no run posts before that time. ``reply.max_per_hour``
caps replies (posted or pending) per rolling hour.

Comment text comes from ``reply.template``; the post's title and author are escaped so they cannot
inject Markdown (links, mentions, formatting).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import string
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import praw
import prawcore
from praw.exceptions import ClientException, RedditAPIException, WebSocketException
from praw.models import PostMedia
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import ReplySettings
from db.models import Colorization, Metric, Model, OptOut, Post, PostSource, PostState, Reply, ReplyStatus, utcnow
from db.safe_text import neutralise_bidi
from db.store import advance_post, database_now

log = logging.getLogger(__name__)

JOB_NAME = "reply"
RATE_LIMITED = "rate-limited until "
DEFAULT_RATELIMIT_S = 600.0
# How long a taken row is the taker's alone: far longer than posting one reply takes (a few
# requests of at most PRAW's time-out each), so only a replier that died loses it.
LEASE_S = 900.0
TITLE_MAX = 300

METRIC_FORMATS = {
    "delta_e_2000": "ΔE2000 {:.1f}",
    "psnr": "PSNR {:.1f} dB",
    "ssim": "SSIM {:.3f}",
    "uv_error": "UV error {:.4f}",
    "colorfulness_gap": "colourfulness gap {:.1f}",
    "colorfulness_machine": "colourfulness {:.1f}",
}


class RateLimitedError(RuntimeError):
    """Reddit said to slow down: the run stops; nothing is posted before ``until``."""

    def __init__(self, until: datetime, detail: str):
        super().__init__(f"Reddit rate limit: {detail}; retry after {until:%Y-%m-%d %H:%M:%S} UTC")
        self.until = until


class ReplyConfigError(ValueError):
    """Live replies cannot work with this configuration (e.g. no logged-in account)."""


@dataclass
class ReplyReport:
    """What one reply run did, for the log, the CLI and ``job_runs.items``."""

    dry_run: bool
    examined: int = 0
    posted: int = 0
    recorded: int = 0  # dry-run rows written
    reconciled: int = 0  # pending rows found already answered
    busy: int = 0  # posts left to the other replier that holds them
    opted_out: int = 0  # authors newly stored in opt_outs by this run
    skipped: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended early (rate limit, hourly limit, error)
    errors: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.posted + self.recorded + self.reconciled

    def summary(self) -> str:
        mode = "dry-run" if self.dry_run else "live"
        skipped = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.skipped.items())) or "none"
        line = (
            f"reply ({mode}): {self.examined} examined, {self.posted} posted, {self.recorded} recorded, "
            f"{self.reconciled} reconciled; skipped: {skipped}"
        )
        if self.opted_out:
            line += f"; {self.opted_out} new opt-out{'s' if self.opted_out != 1 else ''}"
        if self.busy:
            line += f"; {self.busy} held by another replier"
        return line + (f"; stopped: {self.stopped}" if self.stopped else "")


# -- text -----------------------------------------------------------------------------------------

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def escape_markdown(text: str | None, limit: int = 200) -> str:
    """``text`` as literal Markdown: one line, every ASCII punctuation mark backslash-escaped.

    CommonMark (and Reddit) treat an escaped punctuation mark as itself, so ``[x](https://…)``,
    ``**``, ``#``, ``>``, ``u/name`` and bare URLs all come out as plain text. Bidirectional
    controls go, so a title cannot turn the rest of the comment around.
    """
    flat = " ".join(neutralise_bidi(text or "").split())[:limit]
    return _PUNCTUATION.sub(r"\\\1", flat)


def metrics_line(values: dict[str, float], names: list[str]) -> str:
    parts = []
    for name in names:
        if name in values:
            fmt = METRIC_FORMATS.get(name, escape_markdown(name) + " {:.3g}")
            parts.append(fmt.format(values[name]))
    return ", ".join(parts)


def render_comment(settings: ReplySettings, *, link: str, model: str, version: str, metrics: str,
                   title: str, author: str | None, subreddit: str) -> str:
    """The comment from ``settings.template`` (placeholders were validated with the settings)."""
    values = {
        "link": link,
        "model": escape_markdown(model, 64),
        "version": escape_markdown(version, 64),
        "metrics": metrics,
        "title": escape_markdown(title),
        "author": escape_markdown(author or "[deleted]", 64),
        "subreddit": escape_markdown(subreddit, 64),
        "opt_out_word": escape_markdown(settings.opt_out_word, 40),
    }
    return settings.template.format_map(values)


def image_title(post: Post, model: Model) -> str:
    """The image post's title; it ends with ``[<post id>]``, which reconciliation looks for."""
    tag = f" [{post.reddit_id}]"
    head = f"{' '.join(neutralise_bidi(post.title).split())} (colorized by {model.name} {model.version})"
    return head[: TITLE_MAX - len(tag)] + tag


def opt_out_pattern(word: str) -> re.Pattern[str]:
    """``word`` as a whole word, any case: not inside a longer word (``stop`` is not in ``stopwatch``).

    "Whole" means no letter, digit or underscore right before or after it, so a word starting with
    punctuation (``!nocolorbot``) is still found after a space, a quote or a Markdown backslash.
    """
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


# -- time ----------------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _ratelimit_until(exc: Exception) -> RateLimitedError:
    now = datetime.now(timezone.utc)
    if isinstance(exc, prawcore.TooManyRequests):
        seconds = float(exc.retry_after) if exc.retry_after else DEFAULT_RATELIMIT_S
        return RateLimitedError(now + timedelta(seconds=seconds), "HTTP 429")
    message = " ".join(item.message or "" for item in getattr(exc, "items", []))
    seconds = DEFAULT_RATELIMIT_S
    if (match := re.search(r"(\d+)\s*(second|minute|hour)", message)) is not None:
        seconds = int(match.group(1)) * {"second": 1, "minute": 60, "hour": 3600}[match.group(2)] + 5
    return RateLimitedError(now + timedelta(seconds=seconds), f"RATELIMIT ({message.strip()[:120]})")


def _is_ratelimit(exc: RedditAPIException) -> bool:
    return any(item.error_type == "RATELIMIT" for item in exc.items)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    post: Post
    reply: Reply | None
    colorization: Colorization | None
    model: Model | None
    metrics: dict[str, float]


class Replier:
    """Replies (or records dry-run replies) for evaluated posts in the database behind ``sessions``."""

    def __init__(self, reddit: praw.Reddit, sessions: sessionmaker[Session], settings: ReplySettings,
                 *, dry_run: bool | None = None, stop: threading.Event | None = None):
        self.reddit = reddit
        self.sessions = sessions
        self.settings = settings
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        self.stop = stop or threading.Event()
        self._me: str | None = None
        self._allowed = {name.lower() for name in settings.subreddits}
        self._configured_opt_outs = {name.lower() for name in settings.opted_out_users}
        self._opted_out = set(self._configured_opt_outs)  # plus the opt_outs table, read by run()
        self.taker = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lease_s = LEASE_S

    @property
    def me(self) -> str:
        """The bot's own account name (from ``/api/v1/me``)."""
        if self._me is None:
            if self.reddit.read_only:
                raise ReplyConfigError(
                    "live replies need a logged-in account: set COLORBOT_REDDIT__USERNAME and __PASSWORD"
                    " (or reply.dry_run = true)"
                )
            user = self.reddit.user.me()
            if user is None:
                raise ReplyConfigError("Reddit did not say which account is logged in")
            self._me = user.name
        return self._me

    def run(self, limit: int | None = None) -> ReplyReport:
        report = ReplyReport(dry_run=self.dry_run)
        try:
            if not self.dry_run:
                self.me  # noqa: B018 - fail early without a logged-in account
                self._check_cooldown()
            if not self._sync_opt_outs(report):
                log.info("%s", report.summary())
                return report
            for post_id in self._candidates(limit):
                if self.stop.is_set():
                    report.stopped = "interrupted"
                    break
                report.examined += 1
                self._handle(post_id, report)
        except RateLimitedError as exc:
            report.stopped = str(exc)
            log.warning("reply: %s", exc)
        except _HourlyLimit as exc:
            report.stopped = str(exc)
            log.info("reply: %s", exc)
        except _Ambiguous as exc:
            report.stopped = str(exc)
            report.errors.append(str(exc))
            log.error("reply: %s", exc)
        log.info("%s", report.summary())
        return report

    # -- opt-outs --------------------------------------------------------------------------

    def _sync_opt_outs(self, report: ReplyReport) -> bool:
        """Store new opt-outs from the inbox, then load all of them; False: do not reply this run."""
        if self.reddit.read_only:
            if not self.dry_run:  # cannot happen: live runs need self.me first
                raise ReplyConfigError("live replies need a logged-in account")
            log.info("reply: no logged-in account, so the inbox is not read for new opt-outs "
                     "(dry-run; reply.opted_out_users and those already stored still count)")
        else:
            try:
                found = self._inbox_opt_outs()
            except prawcore.TooManyRequests as exc:
                raise _ratelimit_until(exc) from exc
            except (prawcore.PrawcoreException, RedditAPIException, ClientException) as exc:
                message = f"cannot read the inbox for opt-outs: {type(exc).__name__}: {exc}"
                if not self.dry_run:  # replying now might answer someone who just opted out
                    report.stopped = message
                    report.errors.append(message)
                    log.error("reply: %s; nothing posted", message)
                    return False
                log.warning("reply: %s (dry-run goes on)", message)
            else:
                report.opted_out += self._store_opt_outs(found)
        with self.sessions() as session:
            stored = set(session.scalars(select(OptOut.username)))
        self._opted_out = self._configured_opt_outs | stored
        return True

    def _inbox_opt_outs(self) -> dict[str, tuple[str, datetime]]:
        """Lower-case author -> (comment id, time) of the earliest inbox reply saying the word."""
        pattern = opt_out_pattern(self.settings.opt_out_word)
        found: dict[str, tuple[str, datetime]] = {}
        for item in self.reddit.inbox.comment_replies(limit=None):
            data = vars(item)
            if not data.get("was_comment", True) or not str(data.get("parent_id", "")).startswith("t1_"):
                continue
            author = data.get("author")
            name = getattr(author, "name", author)
            if not name or str(name) == "[deleted]" or not pattern.search(str(data.get("body") or "")):
                continue
            when = datetime.fromtimestamp(float(data.get("created_utc") or 0), timezone.utc)
            key = str(name).lower()
            if key not in found or when < found[key][1]:
                found[key] = (str(data.get("id")), when)
        return found

    def _store_opt_outs(self, found: dict[str, tuple[str, datetime]]) -> int:
        """Insert the users not stored yet; returns how many were new."""
        added = 0
        with self.sessions.begin() as session:
            known = set(session.scalars(select(OptOut.username).where(OptOut.username.in_(list(found)))))
            for username, (comment_id, when) in sorted(found.items()):
                if username in known:
                    continue
                try:
                    with session.begin_nested():  # another run may have stored it meanwhile
                        session.add(OptOut(username=username, comment_id=comment_id, opted_out_at=when))
                except IntegrityError:
                    continue
                added += 1
                log.info("reply: u/%s opted out (comment %s); never replied to again", username, comment_id)
        return added

    # -- selection --------------------------------------------------------------------------

    def _candidates(self, limit: int | None) -> list[int]:
        retry = [ReplyStatus.SKIPPED.value]
        if not self.dry_run:
            retry += [ReplyStatus.DRY_RUN.value, ReplyStatus.PENDING.value]
        query = (
            select(Post.id)
            .outerjoin(Reply, Reply.post_id == Post.id)
            .where(Post.state == PostState.EVALUATED.value, or_(Reply.id.is_(None), Reply.status.in_(retry)))
            .order_by(case((Reply.status == ReplyStatus.PENDING.value, 0), else_=1), Post.created_utc.desc())
        )
        if limit:
            query = query.limit(limit)
        with self.sessions() as session:
            ids = list(session.scalars(query))
            if self.dry_run:
                pending = session.scalar(
                    select(func.count()).select_from(Reply).where(Reply.status == ReplyStatus.PENDING.value)
                )
                if pending:
                    log.warning("reply: %d pending replies wait for a live run to reconcile them", pending)
        return ids

    def _load(self, session: Session, post_id: int) -> _Candidate:
        post = session.get(Post, post_id)
        assert post is not None
        reply = session.scalar(select(Reply).where(Reply.post_id == post_id))
        row = session.execute(
            select(Colorization, Model)
            .join(Model, Model.id == Colorization.model_id)
            .where(Colorization.post_id == post_id, Model.name == self.settings.model)
            .order_by(Model.id.desc())
            .limit(1)
        ).first()
        colorization, model = (row[0], row[1]) if row else (None, None)
        metrics: dict[str, float] = {}
        if colorization is not None:
            metrics = dict(session.execute(
                select(Metric.name, Metric.value).where(Metric.colorization_id == colorization.id)
            ).tuples().all())
        return _Candidate(post, reply, colorization, model, metrics)

    def _stored_reason(self, candidate: _Candidate) -> str | None:
        """Why not to reply, from what the database knows (no network)."""
        post, settings = candidate.post, self.settings
        if post.subreddit.lower() not in self._allowed:
            return f"subreddit r/{post.subreddit} is not in reply.subreddits"
        if post.source == PostSource.DUMP.value:
            return "imported from a dump file"  # history: however young, never answered
        created = _aware(post.created_utc)
        if created is not None and created < datetime.now(timezone.utc) - timedelta(hours=settings.max_age_h):
            return f"older than {settings.max_age_h:g} h"
        if post.removed:
            return "removed"
        if not post.author or post.author == "[deleted]":
            return "deleted"
        if post.author.lower() in self._opted_out:
            return "author opted out"
        if post.nsfw and not settings.allow_nsfw:
            return "nsfw"
        if candidate.colorization is None:
            return f"no colorization by {settings.model}"
        if not metrics_line(candidate.metrics, settings.metrics):
            return "no metrics"
        return None

    def _live_reason(self, post: Post) -> str | None:
        """Why not to reply, from the post's current state on Reddit."""
        found = list(self.reddit.info(fullnames=[f"t3_{post.reddit_id}"]))
        if not found:
            return "deleted"
        data = vars(found[0])
        author = data.get("author")
        if author is None or str(author) == "[deleted]" or data.get("selftext") == "[deleted]":
            return "deleted"
        if data.get("removed_by_category") or data.get("banned_by") or data.get("selftext") == "[removed]":
            return "removed"
        if data.get("locked"):
            return "locked"
        if data.get("archived"):
            return "archived"
        if data.get("over_18") and not self.settings.allow_nsfw:
            return "nsfw"
        if str(author).lower() in self._opted_out:
            return "author opted out"
        return None

    # -- one post ---------------------------------------------------------------------------

    def _handle(self, post_id: int, report: ReplyReport) -> None:
        try:
            self._examine(post_id, report)
        finally:
            if not self.dry_run:
                self._release(post_id)

    def _examine(self, post_id: int, report: ReplyReport) -> None:
        with self.sessions() as session:
            candidate = self._load(session, post_id)
            reddit_id = candidate.post.reddit_id
            pending = candidate.reply is not None and candidate.reply.status == ReplyStatus.PENDING.value
        if pending:
            if self.dry_run:
                return  # a dry run never touches a reply that may be on Reddit already
            if not self._take(post_id):  # another replier is posting it now: not ours to reconcile
                self._busy(reddit_id, report)
                return
            if self._reconcile(post_id, reddit_id, report):
                return
        reason = self._stored_reason(candidate)
        if reason is None:
            if not self.dry_run:
                self._check_hourly(exclude_post=post_id)
            try:
                reason = self._live_reason(candidate.post)
            except prawcore.TooManyRequests as exc:
                raise _ratelimit_until(exc) from exc
            except prawcore.PrawcoreException as exc:
                report.errors.append(f"{reddit_id}: {type(exc).__name__}: {exc}")
                log.warning("reply: %s: cannot read the post now: %s", reddit_id, exc)
                return
        if reason is not None:
            self._skip(post_id, reason, report)
            return
        if self.dry_run:
            self._record_dry_run(post_id, report)
        else:
            self._post(post_id, report)

    # -- which replier posts ----------------------------------------------------------------

    def _take(self, post_id: int) -> bool:
        """Make this replier the one that posts ``post_id``'s reply; False if another holds it or it
        is done. One conditional write decides, so of two repliers racing only one gets True."""
        with self.sessions.begin() as session:
            now = database_now(session)
            lease = {"taken_by": self.taker, "taken_until": now + timedelta(seconds=self.lease_s)}
            if session.scalar(select(Reply.id).where(Reply.post_id == post_id)) is None:
                try:
                    with session.begin_nested():
                        session.add(Reply(post_id=post_id, status=ReplyStatus.PENDING.value, **lease))
                    return True
                except IntegrityError:
                    pass  # another replier recorded it first: the write below decides
            taken = session.execute(
                update(Reply)
                .where(Reply.post_id == post_id,
                       Reply.status.in_([ReplyStatus.SKIPPED.value, ReplyStatus.DRY_RUN.value,
                                         ReplyStatus.PENDING.value]),
                       or_(Reply.taken_by.is_(None), Reply.taken_by == self.taker, Reply.taken_until < now))
                .values(**lease)
                .execution_options(synchronize_session=False)
            )
            return taken.rowcount == 1

    def _release(self, post_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Reply).where(Reply.post_id == post_id, Reply.taken_by == self.taker)
                .values(taken_by=None, taken_until=None).execution_options(synchronize_session=False)
            )

    def _busy(self, reddit_id: str, report: ReplyReport) -> None:
        report.busy += 1
        log.info("reply: %s is being replied to by another replier; left to it", reddit_id)

    def _settle(self, session: Session, post_id: int) -> Reply | None:
        """The post's reply row to write an outcome on (created if none), or None where another
        replier holds it pending: its reply may be on its way to Reddit."""
        query = select(Reply).where(Reply.post_id == post_id).with_for_update()
        reply = session.scalar(query)
        if reply is None:
            try:
                with session.begin_nested():
                    reply = Reply(post_id=post_id, status=ReplyStatus.SKIPPED.value)
                    session.add(reply)
                return reply
            except IntegrityError:  # another replier recorded it meanwhile
                reply = session.scalars(query).one()
        if reply.status == ReplyStatus.PENDING.value and reply.taken_by != self.taker:
            return None
        return reply

    def _skip(self, post_id: int, reason: str, report: ReplyReport) -> None:
        with self.sessions.begin() as session:
            reddit_id = session.get(Post, post_id).reddit_id  # type: ignore[union-attr]
            reply = self._settle(session, post_id)
            if reply is not None:
                reply.status = ReplyStatus.SKIPPED.value
                reply.reason = reason
        if reply is None:
            self._busy(reddit_id, report)
            return
        key = "subreddit not allowed" if reason.startswith("subreddit") else reason.split(":")[0]
        report.skipped[key] = report.skipped.get(key, 0) + 1
        log.info("reply: skipping %s: %s", reddit_id, reason)

    def _body(self, candidate: _Candidate, link: str) -> str:
        post, model = candidate.post, candidate.model
        assert model is not None
        return render_comment(
            self.settings, link=link, model=model.name, version=model.version,
            metrics=metrics_line(candidate.metrics, self.settings.metrics),
            title=post.title, author=post.author, subreddit=post.subreddit,
        )

    def _record_dry_run(self, post_id: int, report: ReplyReport) -> None:
        with self.sessions.begin() as session:
            reply = self._settle(session, post_id)
            candidate = self._load(session, post_id)
            reddit_id = candidate.post.reddit_id
            if reply is not None:
                body = self._body(candidate, "<link to the image post on u/<bot>>")
                reply.status = ReplyStatus.DRY_RUN.value
                reply.model_id = candidate.model.id  # type: ignore[union-attr]
                reply.body = body
                reply.reason = None
        if reply is None:
            self._busy(reddit_id, report)
            return
        report.recorded += 1
        log.info("reply (dry-run) to %s would post:\n%s", reddit_id, body)

    # -- live -------------------------------------------------------------------------------

    def _check_cooldown(self) -> None:
        with self.sessions() as session:
            reasons = session.scalars(
                select(Reply.reason).where(Reply.status == ReplyStatus.PENDING.value,
                                           Reply.reason.like(RATE_LIMITED + "%"))
            ).all()
        deadlines = []
        for reason in reasons:
            try:
                deadlines.append(datetime.fromisoformat(reason[len(RATE_LIMITED):]))
            except ValueError:
                continue
        if deadlines and (until := max(deadlines)) > datetime.now(timezone.utc):
            raise RateLimitedError(until, "still cooling down from an earlier rate limit")

    def _check_hourly(self, exclude_post: int) -> None:
        since = utcnow() - timedelta(hours=1)
        with self.sessions() as session:
            recent = session.scalar(
                select(func.count()).select_from(Reply).where(
                    Reply.post_id != exclude_post,
                    or_(
                        (Reply.status == ReplyStatus.POSTED.value) & (Reply.posted_at >= since),
                        (Reply.status == ReplyStatus.PENDING.value) & (Reply.created_at >= since),
                    ),
                )
            ) or 0
        if recent >= self.settings.max_per_hour:
            raise _HourlyLimit(f"reply.max_per_hour ({self.settings.max_per_hour}) reached; the rest wait")

    def _reconcile(self, post_id: int, reddit_id: str, report: ReplyReport) -> bool:
        """For a pending row: True if the post already has the bot's comment (now recorded)."""
        try:
            submission = self.reddit.submission(id=reddit_id)
            submission.comment_sort = "new"
            submission.comments.replace_more(limit=0)
            mine = [c for c in submission.comments if c.author is not None and c.author.name.lower() == self.me.lower()]
        except prawcore.TooManyRequests as exc:
            raise _ratelimit_until(exc) from exc
        except prawcore.NotFound:
            return False  # deleted since: the checks below skip it
        except prawcore.PrawcoreException as exc:
            raise _Ambiguous(f"{reddit_id}: cannot check for an earlier reply: {type(exc).__name__}: {exc}") from exc
        if not mine:
            return False
        comment = min(mine, key=lambda c: c.created_utc)
        with self.sessions.begin() as session:
            self._mark_posted(session, post_id, comment.id, None)
        report.reconciled += 1
        log.info("reply: %s already has comment %s by u/%s; recorded it, posted nothing", reddit_id, comment.id, self.me)
        return True

    def _mark_posted(self, session: Session, post_id: int, comment_id: str, body: str | None) -> None:
        reply = session.scalars(select(Reply).where(Reply.post_id == post_id)).one()
        reply.status = ReplyStatus.POSTED.value
        reply.comment_id = comment_id
        reply.reason = None
        reply.posted_at = utcnow()
        if body is not None:
            reply.body = body
        post = session.get(Post, post_id)
        assert post is not None
        advance_post(post, PostState.REPLIED)

    def _find_image_post(self, reddit_id: str) -> Any | None:
        tag = f"[{reddit_id}]"
        for submission in self.reddit.subreddit(f"u_{self.me}").new(limit=100):
            data = vars(submission)
            if str(data.get("title", "")).endswith(tag) and str(data.get("author", "")).lower() == self.me.lower():
                return submission
        return None

    def _post(self, post_id: int, report: ReplyReport) -> None:
        # 1. taken, and recorded before anything is posted
        if not self._take(post_id):
            with self.sessions() as session:
                self._busy(session.get(Post, post_id).reddit_id, report)  # type: ignore[union-attr]
            return
        with self.sessions.begin() as session:
            candidate = self._load(session, post_id)
            reply = candidate.reply
            assert reply is not None and reply.taken_by == self.taker
            reply.status = ReplyStatus.PENDING.value
            reply.model_id = candidate.model.id  # type: ignore[union-attr]
            reply.reason = None
            reply.created_at = utcnow()
            image_post_id = reply.image_post_id
            reddit_id = candidate.post.reddit_id
            title = image_title(candidate.post, candidate.model)  # type: ignore[arg-type]
            image = candidate.colorization.image  # type: ignore[union-attr]
            data, ext = image.data, {"jpeg": "jpg"}.get(image.format, image.format)
            nsfw = candidate.post.nsfw
        log.info("reply: %s recorded as pending", reddit_id)
        try:
            # 2. the image post on the bot's profile (reused if an earlier run made it)
            image_submission = None
            if image_post_id:
                image_submission = self.reddit.submission(id=image_post_id)
            else:
                image_submission = self._find_image_post(reddit_id)
            if image_submission is None:
                profile = self.reddit.subreddit(f"u_{self.me}")
                media = PostMedia(data, name=f"{reddit_id}-colorized.{ext}")
                try:
                    image_submission = profile.submit(title, image=media, nsfw=nsfw, send_replies=False)
                except WebSocketException:
                    image_submission = None
                if image_submission is None:  # Reddit did not say where it went: look for it
                    image_submission = self._find_image_post(reddit_id)
                if image_submission is None:
                    raise _Ambiguous(f"{reddit_id}: the image post was submitted but cannot be found yet")
            link = self.reddit.config.reddit_url.rstrip("/") + image_submission.permalink
            with self.sessions.begin() as session:
                candidate = self._load(session, post_id)
                body = self._body(candidate, link)
                candidate.reply.image_post_id = image_submission.id  # type: ignore[union-attr]
                candidate.reply.body = body  # type: ignore[union-attr]
            # 3. the comment
            comment = self.reddit.submission(id=reddit_id).reply(body)
            if comment is None:
                raise _Ambiguous(f"{reddit_id}: Reddit did not return the comment")
        except RedditAPIException as exc:
            if _is_ratelimit(exc):
                error = _ratelimit_until(exc)
                self._set_reason(post_id, RATE_LIMITED + error.until.isoformat())
                raise error from exc
            # Reddit refused (locked, deleted, too old...): nothing was posted under the post.
            item = exc.items[0]
            self._skip(post_id, f"reddit refused: {item.error_type}: {item.message}"[:500], report)
            return
        except prawcore.TooManyRequests as exc:
            error = _ratelimit_until(exc)
            self._set_reason(post_id, RATE_LIMITED + error.until.isoformat())
            raise error from exc
        except (prawcore.Forbidden, prawcore.NotFound) as exc:
            self._skip(post_id, f"reddit refused: {type(exc).__name__}", report)
            return
        except ClientException as exc:  # e.g. an image type Reddit does not take
            with self.sessions.begin() as session:
                reply = session.scalars(select(Reply).where(Reply.post_id == post_id)).one()
                reply.status = ReplyStatus.FAILED.value
                reply.reason = f"{type(exc).__name__}: {exc}"[:500]
            report.errors.append(f"{reddit_id}: {exc}")
            return
        except prawcore.PrawcoreException as exc:
            # Time-out, 5xx, connection reset: the comment may or may not exist. The row stays
            # pending; the next run reconciles it.
            self._set_reason(post_id, f"outcome unknown: {type(exc).__name__}: {exc}"[:500])
            raise _Ambiguous(f"{reddit_id}: {type(exc).__name__}: {exc}; left pending") from exc
        # 4. done
        with self.sessions.begin() as session:
            self._mark_posted(session, post_id, comment.id, body)
        report.posted += 1
        log.info("reply: posted comment %s under %s (image post %s)", comment.id, reddit_id, image_submission.id)

    def _set_reason(self, post_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            reply = session.scalars(select(Reply).where(Reply.post_id == post_id)).one()
            reply.reason = reason


class _HourlyLimit(RuntimeError):
    pass


class _Ambiguous(RuntimeError):
    """The outcome of a posting request is unknown; the row stays pending for reconciliation."""


def reply_job(reddit: praw.Reddit, sessions: sessionmaker[Session], settings: ReplySettings, *,
              dry_run: bool | None = None, limit: int | None = None,
              stop: threading.Event | None = None) -> ReplyReport:
    """One reply run, as ``colorbot reply`` and the scheduler's job run it."""
    return Replier(reddit, sessions, settings, dry_run=dry_run, stop=stop).run(limit)
