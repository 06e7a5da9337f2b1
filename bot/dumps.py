"""Import a subreddit's history from the public Reddit dump files (Pushshift, Arctic Shift).

Reddit's API lists only the newest 1,000 posts of a listing; everything older comes from the
dumps researchers use: zstandard-compressed NDJSON, one Reddit object per line, written with a
long window (``zstd --long=31``), of submissions (``RS_2023-01.zst``,
``colorization_submissions.zst``) and of comments (``RC_…``, ``…_comments.zst``).

An import stores posts exactly as the scraper does (:func:`bot.layout.post_info` for the row,
:func:`bot.layout.plan_post` for the layout and the skips), marked ``source = "dump"`` and left
in state ``new``: the scrape step refreshes them through the API and fetches their images like
any post whose fetch is pending. From the comments files it keeps each waiting post's author's
comments that carry a link (``post_comments``), which that fetch reads before asking Reddit.

Memory does not grow with the file: it is read a chunk at a time; only lines that mention a
wanted subreddit are parsed; posts are committed in batches; the comment pass keeps the ids of the
posts waiting for a fetch. What does grow is the zstd window the file declares: a decoder must
keep that much of the decompressed stream (up to 2 GiB for ``--long=31``), so resident memory
rises until the first window's worth of data has gone by and stays there.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from bot.layout import MalformedPostError, PostInfo, plan_post, post_info
from bot.settings import RedditSettings
from db.models import Post, PostComment, PostSource, PostState
from db.store import skip_post

log = logging.getLogger(__name__)

MAX_WINDOW_SIZE = 2**31  # Pushshift's and Arctic Shift's files are written with zstd --long=31
READ_SIZE = 1 << 17  # compressed bytes per read; one read can inflate to a few MB
MAX_LINE_BYTES = 64 << 20  # no Reddit object comes near this: a longer "line" is a corrupt file
BATCH_SIZE = 500  # rows per commit: a kill loses at most this many, which the rerun stores
COMMENT_BODY_MAX = 40_000  # Reddit's own limit on a comment's length
_ID = re.compile(r"[0-9a-z]{1,16}")


class DumpError(RuntimeError):
    """The file cannot be read on (truncated, corrupt, not zstd); what was stored before stays."""


class ImportInterruptedError(RuntimeError):
    """Stopped by a signal; everything before the line reached is stored."""


@dataclass
class ImportReport:
    """What one import did, for the log, the CLI and ``job_runs.items``."""

    lines: int = 0
    posts_matched: int = 0
    posts_stored: int = 0
    posts_known: int = 0
    posts_skipped: int = 0
    out_of_range: int = 0
    malformed: int = 0
    bad_lines: int = 0
    comment_lines: int = 0
    comments_stored: int = 0
    comments_known: int = 0
    seconds: float = 0.0

    @property
    def objects_per_s(self) -> float:
        return (self.lines + self.comment_lines) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        comments = (f"; {self.comment_lines} comment lines, {self.comments_stored} of the posters' comments stored, "
                    f"{self.comments_known} known") if self.comment_lines else ""
        bad = f", {self.bad_lines} bad lines skipped" if self.bad_lines else ""
        return (
            f"import: {self.lines} lines, {self.posts_matched} posts matched, {self.posts_stored} stored "
            f"({self.posts_skipped} of them skipped with a reason), {self.posts_known} already stored, "
            f"{self.out_of_range} outside the dates, {self.malformed} malformed{bad}{comments}; "
            f"{self.seconds:.1f} s, {self.objects_per_s:,.0f} objects/s"
        )


# -- reading a dump file ------------------------------------------------------------------------


class DumpReader:
    """The lines of one zstd NDJSON dump that mention any of ``markers`` (lower-case bytes).

    Lines are numbered from 1 over the whole file; ``lines`` counts every line read so far, so
    an error can say how far the file was good. The markers only spare parsing lines that cannot
    match (``b'"colorization"'`` appears in every line of that subreddit); callers still check
    the parsed object.
    """

    def __init__(self, path: Path, markers: Iterable[bytes], *, progress: bool = False,
                 stop: threading.Event | None = None):
        self.path = Path(path)
        self.markers = tuple(markers)
        self.progress = progress
        self.stop = stop or threading.Event()
        self.lines = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed below, after the generator ends
        except OSError as exc:
            raise DumpError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        bar = tqdm(total=self.path.stat().st_size, unit="B", unit_scale=True, desc=self.path.name,
                   disable=not self.progress, mininterval=0.5)
        try:
            yield from self._lines(self._inflate(raw, bar))
        finally:
            bar.close()
            raw.close()

    def _inflate(self, raw: BinaryIO, bar: tqdm) -> Iterator[bytes]:
        """Decompressed bytes, frame after frame; raises DumpError on a bad or unfinished frame."""
        decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
        frame = decompressor.decompressobj()
        in_frame = False
        while chunk := raw.read(READ_SIZE):
            bar.update(raw.tell() - bar.n)
            if self.stop.is_set():
                raise ImportInterruptedError(
                    f"stopped by a signal after {self.path} line {self.lines}; everything before it is stored, "
                    "and running the same import again carries on"
                )
            while chunk:
                try:
                    out = frame.decompress(chunk)
                except zstandard.ZstdError as exc:
                    raise DumpError(
                        f"{self.path}: corrupt or not zstd after line {self.lines} "
                        f"(byte {raw.tell():,} of the file): {exc}"
                    ) from None
                in_frame = True
                if out:
                    yield out
                if frame.eof:  # files may hold several frames back to back
                    chunk, frame, in_frame = frame.unused_data, decompressor.decompressobj(), False
                else:
                    chunk = b""
        if in_frame:
            raise DumpError(f"{self.path}: truncated: the zstd data ends inside a frame, after line {self.lines}")

    def _lines(self, chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        carry = b""
        for chunk in chunks:
            buffer = carry + chunk if carry else chunk
            cut = buffer.rfind(b"\n")
            if cut < 0:
                carry = buffer
                if len(carry) > MAX_LINE_BYTES:
                    raise DumpError(f"{self.path}: corrupt: line {self.lines + 1} is longer than "
                                    f"{MAX_LINE_BYTES >> 20} MiB without an end")
                continue
            whole, carry = buffer[:cut], buffer[cut + 1 :]
            yield from self._matching(whole)
        if carry.strip():
            yield from self._matching(carry)

    def _matching(self, whole: bytes) -> Iterator[tuple[int, bytes]]:
        """The lines of ``whole`` (complete lines, no final newline) holding a marker, numbered."""
        first = self.lines + 1
        self.lines += whole.count(b"\n") + 1
        lowered = whole.lower()
        bounds: set[tuple[int, int]] = set()
        for marker in self.markers:
            at = lowered.find(marker)
            while at >= 0:
                start = lowered.rfind(b"\n", 0, at) + 1
                end = lowered.find(b"\n", at)
                end = len(lowered) if end < 0 else end
                bounds.add((start, end))
                at = lowered.find(marker, end)
        counted_to, newlines = 0, 0
        for start, end in sorted(bounds):
            newlines += whole.count(b"\n", counted_to, start)
            counted_to = start
            yield first + newlines, whole[start:end]


def subreddit_markers(subreddits: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(f'"{name.lower()}"'.encode() for name in subreddits)


def parse_object(path: Path, number: int, line: bytes, report: ImportReport) -> dict[str, Any] | None:
    """The line's JSON object, or None (logged and counted) for a line that is not one.

    A bad line is skipped, not fatal: one damaged object in a 30 GB month must not stop the
    import, and the exit code still says that something was passed over.
    """
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as exc:
        report.bad_lines += 1
        log.warning("%s line %d: not JSON (%s); skipped", path, number, str(exc).splitlines()[0][:200])
        return None
    if not isinstance(value, dict):
        report.bad_lines += 1
        log.warning("%s line %d: a JSON %s, not an object; skipped", path, number, type(value).__name__)
        return None
    return value


# -- importing ----------------------------------------------------------------------------------


class DumpImporter:
    """Stores the posts (and their authors' comments) of ``subreddits`` from dump files."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: RedditSettings,
        *,
        subreddits: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: bool = False,
        stop: threading.Event | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        self.sessions = sessions
        self.settings = settings
        self.subreddits = {name.lower() for name in (subreddits or settings.subreddits)}
        self.since, self.until = _utc(since), _utc(until)
        self.progress = progress
        self.stop = stop or threading.Event()
        self.batch_size = batch_size
        self.report = ImportReport()

    def run(self, submissions: Path, comments: Iterable[Path] = ()) -> ImportReport:
        started = time.monotonic()
        try:
            self.import_submissions(Path(submissions))
            for path in comments:
                self.import_comments(Path(path))
        finally:
            self.report.seconds = time.monotonic() - started
        log.info("%s", self.report.summary())
        return self.report

    # -- submissions ---------------------------------------------------------------------------

    def import_submissions(self, path: Path) -> None:
        reader = DumpReader(path, subreddit_markers(self.subreddits), progress=self.progress, stop=self.stop)
        batch: list[tuple[PostInfo, dict[str, Any]]] = []
        try:
            for number, line in reader:
                data = parse_object(path, number, line, self.report)
                matched = data is not None and self._wanted_post(path, number, data)
                if matched:
                    batch.append(matched)
                    if len(batch) >= self.batch_size:
                        self._store_posts(batch)
        except (DumpError, ImportInterruptedError):
            self._store_posts(batch)  # everything before the bad spot (or the signal) is good: keep it
            raise
        finally:
            self.report.lines += reader.lines
        self._store_posts(batch)

    def _wanted_post(self, path: Path, number: int, data: dict[str, Any]) -> tuple[PostInfo, dict[str, Any]] | None:
        if str(data.get("subreddit") or "").lower() not in self.subreddits:
            return None
        try:
            info = post_info(data)
        except MalformedPostError as exc:
            self.report.malformed += 1
            log.warning("%s line %d: %s; skipped", path, number, exc)
            return None
        self.report.posts_matched += 1
        if (self.since and info.created_utc < self.since) or (self.until and info.created_utc >= self.until):
            self.report.out_of_range += 1
            return None
        return info, data

    def _store_posts(self, batch: list[tuple[PostInfo, dict[str, Any]]]) -> None:
        """Insert the batch's posts not stored yet, in one transaction; empties the batch."""
        if not batch:
            return
        for attempt in range(3):
            try:
                with self.sessions.begin() as session:
                    stored, skipped, known = self._insert_posts(session, batch)
                break
            except IntegrityError:  # a scrape stored one of them meanwhile: the next look-up sees it
                if attempt == 2:
                    raise
        self.report.posts_stored += stored
        self.report.posts_skipped += skipped
        self.report.posts_known += known
        batch.clear()

    def _insert_posts(self, session: Session, batch: list[tuple[PostInfo, dict[str, Any]]]) -> tuple[int, int, int]:
        ids = {info.reddit_id for info, _ in batch}
        present = set(session.scalars(select(Post.reddit_id).where(Post.reddit_id.in_(ids))))
        stored = skipped = known = 0
        for info, data in batch:
            if info.reddit_id in present:  # an earlier import, an overlapping file, or the scraper
                known += 1
                continue
            present.add(info.reddit_id)
            post = Post(
                reddit_id=info.reddit_id, subreddit=info.subreddit, title=info.title, author=info.author,
                permalink=info.permalink, url=info.url, created_utc=info.created_utc, score=info.score,
                nsfw=info.nsfw, removed=info.removed, state=PostState.NEW.value, source=PostSource.DUMP.value,
            )
            # The scraper's own decision on the same JSON: skipped kinds are skipped here already;
            # the rest wait in "new" for the fetch, which decides again on what Reddit says now.
            plan = plan_post(
                data,
                allow_nsfw=self.settings.allow_nsfw,
                media_url=self.settings.media_url,
                max_gallery_images=self.settings.max_gallery_images,
            )
            post.layout = plan.layout.value
            if plan.skip_reason:
                skip_post(post, plan.skip_reason)
                skipped += 1
            session.add(post)
            stored += 1
        return stored, skipped, known

    # -- comments ------------------------------------------------------------------------------

    def import_comments(self, path: Path) -> None:
        """Keep the comments with a link that waiting posts' authors wrote under them."""
        waiting = self._waiting_posts()
        if not waiting:
            log.info("%s: no post of r/%s waits for a fetch; not read", path, ", r/".join(sorted(self.subreddits)))
            return
        reader = DumpReader(path, subreddit_markers(self.subreddits), progress=self.progress, stop=self.stop)
        batch: list[tuple[int, dict[str, Any]]] = []
        try:
            for number, line in reader:
                data = parse_object(path, number, line, self.report)
                post_id = self._wanted_comment(data, waiting) if data is not None else None
                if post_id is not None:
                    batch.append((post_id, data))  # type: ignore[arg-type]
                    if len(batch) >= self.batch_size:
                        self._store_comments(batch)
        except (DumpError, ImportInterruptedError):
            self._store_comments(batch)
            raise
        finally:
            self.report.comment_lines += reader.lines
        self._store_comments(batch)

    def _waiting_posts(self) -> dict[str, tuple[int, str]]:
        """reddit id -> (row id, author) of the posts of these subreddits waiting for a fetch."""
        with self.sessions() as session:
            rows = session.execute(
                select(Post.reddit_id, Post.id, Post.author).where(
                    Post.state == PostState.NEW.value,
                    Post.author.is_not(None),
                    func.lower(Post.subreddit).in_(self.subreddits),
                )
            ).all()
        return {reddit_id: (post_id, author) for reddit_id, post_id, author in rows}

    @staticmethod
    def _wanted_comment(data: Mapping[str, Any], waiting: dict[str, tuple[int, str]]) -> int | None:
        link = data.get("link_id")
        if not isinstance(link, str) or not link.startswith("t3_"):
            return None
        found = waiting.get(link[3:])
        body, comment_id = data.get("body"), data.get("id")
        if found is None or data.get("author") != found[1]:
            return None  # only the poster's own links are trusted to be the original
        if not isinstance(body, str) or "http" not in body or not isinstance(comment_id, str):
            return None
        return found[0] if _ID.fullmatch(comment_id) else None

    def _store_comments(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        for attempt in range(3):
            try:
                with self.sessions.begin() as session:
                    stored, known = self._insert_comments(session, batch)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self.report.comments_stored += stored
        self.report.comments_known += known
        batch.clear()

    @staticmethod
    def _insert_comments(session: Session, batch: list[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
        ids = {data["id"] for _, data in batch}
        present = set(session.scalars(select(PostComment.reddit_id).where(PostComment.reddit_id.in_(ids))))
        stored = known = 0
        for post_id, data in batch:
            if data["id"] in present:
                known += 1
                continue
            present.add(data["id"])
            session.add(PostComment(
                reddit_id=data["id"], post_id=post_id, author=data["author"][:64],
                body=data["body"][:COMMENT_BODY_MAX], created_utc=_created(data),
            ))
            stored += 1
        return stored, known


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _created(data: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(float(data.get("created_utc")), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(timezone.utc)
