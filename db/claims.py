"""Work claims: which worker works a step on which post, so that many workers share the pending posts.

A worker takes a small batch of pending posts with ``SELECT … FOR UPDATE SKIP LOCKED`` (rows another
worker is taking at that moment are passed over, not waited for) and writes its name and a lease
end into them (``claimed_by``, ``claimed_until``). Another worker's query leaves posts whose lease
has not ended alone. The worker renews the lease between items and clears it in the transaction
that stores a post's result; before storing, it checks (with the post's row locked) that the post
is still its own, since a lease that ran out may have been taken over. A worker that dies simply
lets its leases run out: its posts are taken by the next worker that looks. One shortcut: a worker
restarted on the same host (the usual end of a crash or a kill) frees at once the leases of workers
of that host whose process is gone, rather than waiting out the lease. If two machines or containers
share a host name, the check can free a live worker's leases; that worker then finds the post taken
over and drops its result (``holds``), so the cost is work done twice, never a result stored twice.

On SQLite ``FOR UPDATE`` is not rendered; every writing transaction there begins IMMEDIATE
(``db.engine``), so the one writer at a time serialises claims just the same.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from threading import Event

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Post, utcnow

LEASE_S = 600.0
"""How long a claim lasts unrenewed: longer than any one post takes at any step, short enough
that a dead worker's posts are not left waiting long."""

BATCH = 8
"""Posts claimed at once: few, so that workers starting together share the pending posts."""


def worker_name() -> str:
    """A name no other worker has: host and process id tell people which it is, the suffix keeps
    two workers of one process (or one PID reused in another container) apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]


class Claims:
    """One worker's claims on posts, for one run of one step."""

    def __init__(self, sessions: sessionmaker[Session], worker: str | None = None, *, lease_s: float = LEASE_S):
        self.sessions = sessions
        self.worker = worker or worker_name()
        self.lease_s = lease_s
        self.held: set[int] = set()
        self._renewed = time.monotonic()
        self._looked_for_dead = False

    def take(self, conditions: Iterable[ColumnElement[bool]], *, order_by: Iterable = (), limit: int = BATCH,
             exclude: Iterable[int] = ()) -> list[int]:
        """Claim up to ``limit`` posts meeting ``conditions`` that no live lease holds; their ids, in order."""
        now = utcnow()
        free = or_(Post.claimed_until.is_(None), Post.claimed_until < now, Post.claimed_by == self.worker)
        query = select(Post.id).where(*conditions, free).order_by(*order_by, Post.id).limit(limit)
        excluded = list(exclude)
        if excluded:
            query = query.where(Post.id.not_in(excluded))
        with self.sessions.begin() as session:
            if not self._looked_for_dead:
                self._free_leases_of_dead_local_workers(session, now)
                self._looked_for_dead = True
            ids = list(session.scalars(query.with_for_update(skip_locked=True)))
            if ids:
                self._lease(session, ids, now)
        self.held.update(ids)
        return ids

    def take_one(self, *conditions: ColumnElement[bool]) -> int | None:
        """Claim the one post meeting ``conditions``; None if there is none or it is another's."""
        ids = self.take(conditions, limit=1)
        return ids[0] if ids else None

    def renew_if_due(self) -> None:
        """Extend the leases still held, once a third of the lease has gone by since the last time.

        A post whose lease ran out and was taken by another worker is that worker's now: it is
        not taken back, and is no longer counted as held."""
        if not self.held or time.monotonic() - self._renewed <= self.lease_s / 3:
            return
        with self.sessions.begin() as session:
            ours = list(session.scalars(
                select(Post.id).where(Post.id.in_(list(self.held)), Post.claimed_by == self.worker).with_for_update()
            ))
            self._lease(session, ours, utcnow())
        self.held.intersection_update(ours)

    def holds(self, session: Session, post_id: int) -> bool:
        """Whether the post is still this worker's, locking its row for the rest of ``session``'s
        transaction: a result may be stored only while that is so."""
        owner = session.scalar(select(Post.claimed_by).where(Post.id == post_id).with_for_update())
        return owner == self.worker

    def release(self, post: Post) -> None:
        """Give the post up, in the transaction that stores what was done to it."""
        if post.claimed_by == self.worker:
            post.claimed_by = None
            post.claimed_until = None
        self.held.discard(post.id)

    def release_all(self) -> None:
        """Give up every post still held (a run stopping part-way); the next worker takes them at once."""
        if not self.held:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(Post)
                .where(Post.id.in_(list(self.held)), Post.claimed_by == self.worker)
                .values(claimed_by=None, claimed_until=None, updated_at=Post.updated_at)
            )
        self.held.clear()

    def _free_leases_of_dead_local_workers(self, session: Session, now) -> None:
        prefix = f"{socket.gethostname()}:"
        holders = session.scalars(
            select(Post.claimed_by).where(Post.claimed_until >= now, Post.claimed_by.startswith(prefix, autoescape=True))
            .distinct()
        )
        dead = [holder for holder in holders if holder != self.worker and not _process_alive(holder[len(prefix):])]
        if dead:
            session.execute(
                update(Post).where(Post.claimed_by.in_(dead))
                .values(claimed_by=None, claimed_until=None, updated_at=Post.updated_at)
            )

    def _lease(self, session: Session, ids: list[int], now) -> None:
        # updated_at says when the post's data last changed; a lease is not that.
        session.execute(
            update(Post)
            .where(Post.id.in_(ids))
            .values(claimed_by=self.worker, claimed_until=now + timedelta(seconds=self.lease_s),
                    updated_at=Post.updated_at)
        )
        self._renewed = time.monotonic()


def _process_alive(pid_and_suffix: str) -> bool:
    """Whether the process of a worker name's ``pid:suffix`` part runs here; True when unsure."""
    try:
        pid = int(pid_and_suffix.split(":", 1)[0])
    except ValueError:
        return True
    if pid == os.getpid():
        return True  # another Claims of this process: it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, run by another user
    return True


def each_claimed(claims: Claims, conditions: Iterable[ColumnElement[bool]], *, order_by: Iterable = (),
                 limit: int | None = None, stop: Event | None = None, batch: int = BATCH) -> Iterator[int]:
    """The ids of pending posts, claimed a batch at a time, until none is left, ``limit`` are
    done or ``stop`` is set. Each post comes once per run: one that fails stays pending for a later
    run, not for this one again. Whatever is still held when the caller stops is released."""
    conditions, order_by = list(conditions), list(order_by)
    tried: list[int] = []
    try:
        while limit is None or len(tried) < limit:
            wanted = batch if limit is None else min(batch, limit - len(tried))
            ids = claims.take(conditions, order_by=order_by, limit=wanted, exclude=tried)
            if not ids:
                return
            for post_id in ids:
                if stop is not None and stop.is_set():
                    return
                claims.renew_if_due()
                tried.append(post_id)
                yield post_id
    finally:
        claims.release_all()
