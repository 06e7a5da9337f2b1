"""Scrape a subreddit listing into the database, finding each new post's image pair.

One run:

1. walks the listing (``new`` by default), storing posts not seen before and refreshing the score
   and removal state of those already stored. On ``new`` it stops at the first post that was
   already stored when the last successful scrape ended: everything older was seen then.
   (Posts stored by a run that failed half-way do not stop it, so a failure leaves no gap.)
2. finds the pair of every new post (and of stored posts still waiting after a failed fetch),
   committing post by post;
3. retries posts whose fetch failed before, fetching their current JSON with ``/api/info``;
4. refreshes score and removal state of recent stored posts the walk did not reach.

Several workers may scrape at once: a post is stored once (by its Reddit id; the second insert
counts as the post being known), and a worker fetches a post only while it holds its claim
(``db.claims``), so no image is downloaded twice.

A transient failure (Reddit or an image host down, 429, a time-out, a truncated image) leaves the
post in state ``new`` with ``last_error`` and one more ``attempts``; after ``reddit.max_attempts``
it is skipped with the last reason. A post whose images Reddit is still processing (a gallery
seconds old) is deferred the same way, ``last_error`` saying so; on its last attempt it is decided
from the images that are final. A policy refusal (host, address, size, pixels) skips the
post at once. Rate limiting by Reddit itself (429) ends the run: it is the job's failure, tried
again at the next run.

Attributes are read from ``vars(submission)`` only: reading an attribute a lazy PRAW object lacks
makes PRAW fetch the whole post, one request per post.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import praw
import prawcore
from praw.models.base import PRAWBase
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.client import user_agent
from bot.download import DownloadError, Fetcher, RefusedError
from bot.layout import MalformedPostError, PostInfo, plan_post, post_info, removal
from bot.pairing import find_pair
from bot.settings import DownloadSettings, RedditSettings
from db.claims import Claims
from db.models import JobRun, Post, PostImage, PostState
from db.store import advance_post, insert_new, skip_post, store_image, stored_comments

log = logging.getLogger(__name__)

JOB_NAME = "scrape"
INFO_BATCH = 100
REFRESH_MAX = 1000


class RateLimitedError(RuntimeError):
    """Reddit answered 429: this run stops, the next one carries on."""


class ScrapeInterruptedError(RuntimeError):
    """Stopped by a signal part-way: the run must not count as complete (see the ``new`` stop rule)."""


@dataclass
class ScrapeReport:
    """What one scrape run did, for the log, the CLI and ``job_runs.items``."""

    subreddit: str
    listing: str
    seen: int = 0
    new: int = 0
    refreshed: int = 0
    fetched: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    malformed: int = 0
    elsewhere: int = 0  # being fetched by another worker
    stopped_at_known: bool = False
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.new + self.retried

    def summary(self) -> str:
        stop = ", stopped at a known post" if self.stopped_at_known else ""
        stop += ", interrupted" if self.interrupted else ""
        stop += f", {self.elsewhere} being fetched by other workers" if self.elsewhere else ""
        return (
            f"r/{self.subreddit} {self.listing}: {self.seen} seen, {self.new} new, "
            f"{self.refreshed} refreshed, {self.fetched} fetched, {self.skipped} skipped, "
            f"{self.deferred} deferred, {self.retried} retried{stop}"
        )


def plain(submission: Any) -> dict[str, Any]:
    """The post's JSON as Reddit sent it, from ``vars()`` (no lazy fetch); PRAW objects as names."""
    data: dict[str, Any] = {}
    for key, value in vars(submission).items():
        if key.startswith("_"):
            continue
        data[key] = str(value) if isinstance(value, PRAWBase) else value
    return data


def _unseen(comments: list[Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Comments not yielded before, as ``{"author", "body"}``; "load more" stubs are left out."""
    for comment in comments:
        if not isinstance(comment, praw.models.Comment):
            continue
        values = vars(comment)
        name = str(values.get("id") or id(comment))
        if name in seen:
            continue
        seen.add(name)
        author = values.get("author")
        yield {"author": str(author) if author is not None else None, "body": values.get("body")}


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class Scraper:
    """Scrapes listings with a PRAW client into the database behind ``sessions``."""

    def __init__(
        self,
        reddit: praw.Reddit,
        sessions: sessionmaker[Session],
        reddit_settings: RedditSettings,
        download_settings: DownloadSettings,
        *,
        stop: threading.Event | None = None,
        claims: Claims | None = None,
    ):
        self.reddit = reddit
        self.sessions = sessions
        self.settings = reddit_settings
        self.fetcher = Fetcher(download_settings, user_agent=user_agent(reddit_settings))
        self.stop = stop or threading.Event()
        self.claims = claims or Claims(sessions)

    def close(self) -> None:
        self.fetcher.close()

    # -- the run ----------------------------------------------------------------------------

    def run(
        self,
        subreddit: str | None = None,
        *,
        listing: str | None = None,
        time_filter: str | None = None,
        limit: int | None = None,
    ) -> ScrapeReport:
        subreddit = subreddit or self.settings.subreddits[0]
        listing = listing or self.settings.listing
        report = ScrapeReport(subreddit=subreddit, listing=listing)
        boundary = self._last_good_run_end()
        seen_ids: set[str] = set()
        try:
            for submission in self._listing(subreddit, listing, time_filter, limit):
                if self.stop.is_set():
                    report.interrupted = True
                    break
                data = plain(submission)
                report.seen += 1
                known_before = self._handle(data, report, boundary, seen_ids)
                if known_before and listing == "new":
                    report.stopped_at_known = True
                    break
            if not self.stop.is_set():
                self._retry_pending(subreddit, seen_ids, report)
            if not self.stop.is_set():
                self._refresh_recent(subreddit, seen_ids, report)
        except prawcore.TooManyRequests as exc:
            raise RateLimitedError(
                f"Reddit rate limit (429), retry after {exc.retry_after or '?'} s; {report.summary()}"
            ) from exc
        report.interrupted = report.interrupted or self.stop.is_set()
        log.info("scrape: %s", report.summary())
        return report

    def _listing(self, subreddit: str, listing: str, time_filter: str | None, limit: int | None) -> Iterator[Any]:
        sub = self.reddit.subreddit(subreddit)
        limit = limit or self.settings.limit
        if listing == "top":
            return sub.top(time_filter=time_filter or self.settings.time_filter, limit=limit)
        if listing not in ("new", "hot", "rising"):
            raise ValueError(f"unknown listing {listing!r}")
        return getattr(sub, listing)(limit=limit)

    def _last_good_run_end(self) -> datetime | None:
        with self.sessions() as session:
            finished = session.scalar(
                select(func.max(JobRun.finished_at)).where(JobRun.job == JOB_NAME, JobRun.status == "ok")
            )
        return _naive_utc(finished)

    # -- one post ---------------------------------------------------------------------------

    def _handle(self, data: dict[str, Any], report: ScrapeReport, boundary: datetime | None, seen_ids: set[str]) -> bool:
        """Store or refresh one post from a listing; True if it was known before the last good run."""
        try:
            info = post_info(data)
        except MalformedPostError as exc:
            report.malformed += 1
            report.errors.append(str(exc))
            log.warning("skipping a listing entry: %s", exc)
            return False
        seen_ids.add(info.reddit_id)
        with self.sessions.begin() as session:
            post = session.scalar(select(Post).where(Post.reddit_id == info.reddit_id))
            if post is None and insert_new(
                session, Post,
                reddit_id=info.reddit_id,
                subreddit=info.subreddit,
                title=info.title,
                author=info.author,
                permalink=info.permalink,
                url=info.url,
                created_utc=info.created_utc,
                score=info.score,
                nsfw=info.nsfw,
                removed=info.removed,
                state=PostState.NEW.value,
            ):
                report.new += 1
                known_before = False
                pending = True
            else:
                # Stored before, or by another worker between our look-up and our insert.
                post = post or session.scalars(select(Post).where(Post.reddit_id == info.reddit_id)).one()
                self._refresh(post, info, data)
                report.refreshed += 1
                first_seen = _naive_utc(post.first_seen)
                known_before = boundary is not None and first_seen is not None and first_seen < boundary
                pending = post.state == PostState.NEW.value and post.attempts < self.settings.max_attempts
                if pending:
                    report.retried += 1
        if pending:
            self._process(info, data, report)
        return known_before

    def _refresh(self, post: Post, info: PostInfo, data: Mapping[str, Any]) -> None:
        post.score = info.score
        post.nsfw = info.nsfw
        if info.removed and not post.removed:
            post.removed = True
            if post.state in (PostState.NEW.value, PostState.FETCHED.value):
                skip_post(post, f"{removal(data) or 'removed'} after it was stored")
        elif not info.removed and post.removed:
            post.removed = False  # reinstated by the moderators; an earlier skip stays explained

    def _process(self, info: PostInfo, data: Mapping[str, Any], report: ScrapeReport) -> None:
        """Find and store the post's pair unless another worker is at it; a failure is recorded
        on the post, never raised (except Reddit's 429, which ends the run)."""
        post_id = self.claims.take_one(Post.reddit_id == info.reddit_id, Post.state == PostState.NEW.value)
        if post_id is None:
            report.elsewhere += 1
            return
        try:
            self._fetch(post_id, info, data, report)
        finally:
            self.claims.release_all()

    def _fetch(self, post_id: int, info: PostInfo, data: Mapping[str, Any], report: ScrapeReport) -> None:
        with self.sessions() as session:
            attempts = session.scalar(select(Post.attempts).where(Post.reddit_id == info.reddit_id)) or 0
        plan = plan_post(
            data,
            allow_nsfw=self.settings.allow_nsfw,
            media_url=self.settings.media_url,
            max_gallery_images=self.settings.max_gallery_images,
            decide_unprocessed=attempts + 1 >= self.settings.max_attempts,
        )
        if plan.deferred:
            self._defer(info.reddit_id, plan.defer_reason or "deferred", plan.layout.value)
            report.deferred += 1
            return
        error: Exception | None = None
        pair = None
        with self.sessions() as session:
            kept = stored_comments(session, info.reddit_id)  # from a dump file (bot.dumps)
        try:
            pair = find_pair(
                plan,
                self.fetcher,
                lambda: self._comments_kept_first(kept, info.reddit_id),
                author=info.author,
                has_comments=info.num_comments > 0 or bool(kept),
            )
        except prawcore.TooManyRequests as exc:
            self._record_failure(info.reddit_id, f"Reddit 429 while reading comments: {exc}", plan.layout.value)
            report.deferred += 1
            raise
        except (DownloadError, prawcore.PrawcoreException) as exc:
            error = exc
        with self.sessions.begin() as session:
            if not self.claims.holds(session, post_id):
                log.warning("post %s: claimed by another worker meanwhile (our lease ran out)", info.reddit_id)
                return
            post = session.get(Post, post_id)
            # Given up with the result, not after: a post committed `fetched` but still claimed could be
            # taken by this worker's own colorize (same name) and the later release would pull it from under it.
            self.claims.release(post)
            post.layout = (pair.layout if pair else plan.layout).value
            if pair is not None:
                for found in pair.images:
                    image = store_image(session, found.image)
                    link = session.scalar(
                        select(PostImage).where(PostImage.post_id == post.id, PostImage.role == found.role.value)
                    )
                    if link is None:
                        session.add(PostImage(post_id=post.id, image_id=image.id, role=found.role.value, source_url=found.source_url))
                    else:
                        link.image_id, link.source_url = image.id, found.source_url
                post.last_error = None
                if pair.skip_reason:
                    skip_post(post, pair.skip_reason)
                    report.skipped += 1
                else:
                    advance_post(post, PostState.FETCHED)
                    post.skip_reason = None
                    report.fetched += 1
            elif isinstance(error, RefusedError):
                post.last_error = str(error)
                skip_post(post, f"download refused: {error}")
                report.skipped += 1
            else:
                post.attempts += 1
                post.last_error = f"{type(error).__name__}: {error}"[:2000]
                if post.attempts >= self.settings.max_attempts:
                    skip_post(post, f"gave up after {post.attempts} attempts: {error}"[:2000])
                    report.skipped += 1
                else:
                    report.deferred += 1
                log.info("post %s: %s", info.reddit_id, post.last_error)

    def _defer(self, reddit_id: str, reason: str, layout: str) -> None:
        """Leave the post ``new`` for a later run, counting the look as an attempt."""
        with self.sessions.begin() as session:
            post = session.scalar(select(Post).where(Post.reddit_id == reddit_id))
            if post is not None:
                post.attempts += 1
                post.last_error = f"deferred: {reason}"[:2000]
                post.layout = layout
        log.info("post %s deferred: %s", reddit_id, reason)

    def _record_failure(self, reddit_id: str, message: str, layout: str) -> None:
        with self.sessions.begin() as session:
            post = session.scalar(select(Post).where(Post.reddit_id == reddit_id))
            if post is not None:
                post.last_error = message[:2000]
                post.layout = layout

    def _comments_kept_first(self, kept: list[dict[str, Any]], reddit_id: str) -> Iterator[Mapping[str, Any]]:
        """Comments kept from a dump file, then Reddit's (asked only if those hold no original):
        a link in a comment deleted since is still found."""
        yield from kept
        yield from self._comments(reddit_id)

    def _comments(self, reddit_id: str) -> Iterator[dict[str, Any]]:
        """The post's comments as plain mappings, fetched as far as they are read.

        First those of the thread as Reddit sends it (one ``/comments/{id}`` request): the poster's
        own link is usually there. Only if the reader wants more are "load more comments" stubs
        expanded, at most ``reddit.comment_expansions`` of them (one request each).
        """
        submission = self.reddit.submission(id=reddit_id)
        seen: set[str] = set()
        yield from _unseen(submission.comments.list(), seen)
        if self.settings.comment_expansions <= 0:
            return
        if not any(isinstance(item, praw.models.MoreComments) for item in submission.comments.list()):
            return
        try:
            submission.comments.replace_more(limit=self.settings.comment_expansions)
        except (praw.exceptions.PRAWException, AssertionError) as exc:
            # PRAW's own consistency checks on an odd answer: keep what was read.
            log.warning("post %s: expanding more comments failed: %s: %s", reddit_id, type(exc).__name__, exc)
            return
        yield from _unseen(submission.comments.list(), seen)

    # -- posts the walk did not reach -----------------------------------------------------------

    def _info(self, reddit_ids: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(reddit_ids), INFO_BATCH):
            batch = [f"t3_{rid}" for rid in reddit_ids[start : start + INFO_BATCH]]
            for thing in self.reddit.info(fullnames=batch):
                yield plain(thing)

    def _retry_pending(self, subreddit: str, seen_ids: set[str], report: ScrapeReport) -> None:
        with self.sessions() as session:
            waiting = session.scalars(
                select(Post.reddit_id).where(
                    Post.state == PostState.NEW.value,
                    func.lower(Post.subreddit) == subreddit.lower(),
                    Post.attempts < self.settings.max_attempts,
                )
            ).all()
        waiting = [rid for rid in waiting if rid not in seen_ids]
        for data in self._info(waiting):
            if self.stop.is_set():
                return
            try:
                info = post_info(data)
            except MalformedPostError:
                continue
            seen_ids.add(info.reddit_id)
            with self.sessions.begin() as session:
                post = session.scalar(select(Post).where(Post.reddit_id == info.reddit_id))
                if post is None:
                    continue
                self._refresh(post, info, data)
                still_pending = post.state == PostState.NEW.value
            if still_pending:
                report.retried += 1
                self._process(info, data, report)

    def _refresh_recent(self, subreddit: str, seen_ids: set[str], report: ScrapeReport) -> None:
        if self.settings.refresh_days <= 0:
            return
        since = datetime.now(timezone.utc) - timedelta(days=self.settings.refresh_days)
        with self.sessions() as session:
            recent = session.scalars(
                select(Post.reddit_id)
                .where(func.lower(Post.subreddit) == subreddit.lower(), Post.created_utc >= since)
                .order_by(Post.created_utc.desc())
                .limit(REFRESH_MAX)
            ).all()
        recent = [rid for rid in recent if rid not in seen_ids]
        for data in self._info(recent):
            try:
                info = post_info(data)
            except MalformedPostError:
                continue
            with self.sessions.begin() as session:
                post = session.scalar(select(Post).where(Post.reddit_id == info.reddit_id))
                if post is not None:
                    self._refresh(post, info, data)
                    report.refreshed += 1


def scrape_job(
    reddit: praw.Reddit,
    sessions: sessionmaker[Session],
    reddit_settings: RedditSettings,
    download_settings: DownloadSettings,
    *,
    stop: threading.Event | None = None,
    subreddits: list[str] | None = None,
    listing: str | None = None,
    time_filter: str | None = None,
    limit: int | None = None,
    claims: Claims | None = None,
) -> list[ScrapeReport]:
    """Scrape every configured subreddit once (the body of the ``scrape`` job)."""
    scraper = Scraper(reddit, sessions, reddit_settings, download_settings, stop=stop, claims=claims)
    try:
        reports = [
            scraper.run(name, listing=listing, time_filter=time_filter, limit=limit)
            for name in (subreddits or reddit_settings.subreddits)
            if not scraper.stop.is_set()
        ]
    finally:
        scraper.close()
    if scraper.stop.is_set():
        done = "; ".join(report.summary() for report in reports) or "nothing scraped"
        raise ScrapeInterruptedError(f"stopped by a signal: {done}")
    return reports
