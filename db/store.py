"""Small storage operations shared by every step of the pipeline."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.locks import advisory_lock, lock_holder
from db.models import Base, Image, JobRun, Model, Post, PostComment, PostState, utcnow

log = logging.getLogger(__name__)


def insert_new(session: Session, model: type[Base], **values: Any) -> bool:
    """Insert a row unless its unique key is stored already; True if this call inserted it.

    Another worker may store the same post, image or colorization between our look-up and our
    insert: that is work already done, not an error. PostgreSQL and SQLite say so with
    ``INSERT … ON CONFLICT DO NOTHING``; other databases through a savepoint and the
    ``IntegrityError``. On PostgreSQL the insert waits for a concurrent insert of the same key
    to commit or roll back, so after False the other worker's row can be read.
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # RETURNING says whether a row was written: rowcount is -1 under psycopg once SQLAlchemy
        # adds its own RETURNING of the primary key.
        table = model.__table__
        statement = insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key.columns)
        return session.execute(statement).first() is not None
    try:
        with session.begin_nested():
            session.add(model(**values))
    except IntegrityError:
        return False
    return True


class EncodedImage(Protocol):
    """Bytes to store and their format and upright size, from ``colorizer.images`` (db decodes nothing)."""

    data: bytes
    format: str
    width: int
    height: int


def store_image(session: Session, image: EncodedImage) -> Image:
    """The stored image with these bytes, inserting it if it is new.

    Content addressing makes storing idempotent: the same photo linked from two posts, or
    fetched again after a crash, is kept once. Format and size come from decoding the bytes with
    ``colorizer.images`` (``examine``, ``png_image``), the one decoder every step uses.
    """
    data = image.data
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(Image).where(Image.sha256 == digest))
    if existing is not None:
        return existing
    # Another worker may store the same bytes between our look-up and our insert: that row is ours too.
    insert_new(session, Image, sha256=digest, data=data, format=image.format.lower(), width=image.width,
               height=image.height)
    return session.scalars(select(Image).where(Image.sha256 == digest)).one()


class ModelIdentityClash(ValueError):
    """A model is configured under the name and version of a stored model that computes something else."""


def identity_sha256(identity: dict[str, Any]) -> str:
    """SHA-256 of the identity's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def get_or_create_model(
    session: Session,
    *,
    name: str,
    version: str,
    backbone: str | None = None,
    config: dict[str, Any] | None = None,
    weights_sha256: str | None = None,
    chroma_scale: float | None = None,
    upsampling: str | None = None,
    input_size: int | None = None,
) -> Model:
    """The stored model with this name and version, inserting it if it is new.

    Its identity is name, version and the other arguments but ``config`` (a description); ``None``
    means not known. A stored model whose identity differs in a setting both sides know raises
    :class:`ModelIdentityClash`, never merges: its numbers were computed by another model. Settings
    the stored row lacks (rows from before they were recorded) are filled in from this one.
    """
    identity = {
        "name": name,
        "version": version,
        "weights_sha256": weights_sha256,
        "chroma_scale": None if chroma_scale is None else float(chroma_scale),
        "upsampling": upsampling,
        "input_size": input_size,
        "backbone": backbone or None,
    }
    model = session.scalar(select(Model).where(Model.name == name, Model.version == version))
    if model is not None:
        return _same_identity(model, identity)
    model = Model(
        name=name,
        version=version,
        backbone=backbone or "",
        config=config or {},
        weights_sha256=weights_sha256,
        identity=identity,
        identity_sha256=identity_sha256(identity),
    )
    try:
        with session.begin_nested():
            session.add(model)
    except IntegrityError:  # another process stored it between our look-up and our insert
        stored = session.scalars(select(Model).where(Model.name == name, Model.version == version)).one()
        return _same_identity(stored, identity)
    return model


def _same_identity(model: Model, identity: dict[str, Any]) -> Model:
    """``model``, its unknown settings filled from ``identity``; raises if a known one differs."""
    stored = dict(model.identity or {})
    differences = [key for key, value in identity.items()
                   if value is not None and stored.get(key) is not None and stored[key] != value]
    if differences:
        shown = ", ".join(f"{key} {stored[key]!r} stored, {identity[key]!r} configured" for key in differences)
        raise ModelIdentityClash(
            f"model {model.name!r} version {model.version!r} is stored with another identity: {shown} "
            f"(identity {model.identity_sha256[:12]} stored, {identity_sha256(identity)[:12]} configured); "
            "give this one its own version (colorbot export --version) or name"
        )
    learned = {key: value for key, value in identity.items() if value is not None and stored.get(key) is None}
    if learned:
        log.info("model %s %s: recording %s, not known before", model.name, model.version, ", ".join(sorted(learned)))
        model.identity = {**stored, **learned}
        model.identity_sha256 = identity_sha256(model.identity)
        model.weights_sha256 = model.weights_sha256 or model.identity.get("weights_sha256")
        model.backbone = model.backbone or model.identity.get("backbone") or ""
    return model


def advance_post(post: Post, state: PostState) -> None:
    """Move a post to its next pipeline state; its error and attempt count start afresh there.

    ``attempts`` counts tries at the step the post is in, so failures while fetching do not
    count against it when colorizing or evaluating.
    """
    post.state = state.value
    post.last_error = None
    post.attempts = 0


def skip_post(post: Post, reason: str) -> None:
    post.state = PostState.SKIPPED.value
    post.skip_reason = reason


def stored_comments(session: Session, reddit_id: str) -> list[dict[str, Any]]:
    """The post's comments kept from a dump file, oldest first, as ``{"author", "body"}`` mappings."""
    rows = session.execute(
        select(PostComment.author, PostComment.body)
        .join(Post, Post.id == PostComment.post_id)
        .where(Post.reddit_id == reddit_id)
        .order_by(PostComment.created_utc, PostComment.id)
    ).all()
    return [{"author": author, "body": body} for author, body in rows]


HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed heartbeats: the run's process is gone, wherever it ran


class JobBusy(Exception):
    """A job that runs in one worker at a time is running in another worker now."""


def database_now(session: Session) -> datetime:
    """The time on the database's clock, so that workers on several machines compare one clock;
    SQLite's file has no server, and all its writers share the one machine's clock."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now()))
    return utcnow()


def close_killed_runs(session: Session, stale_after_s: float = STALE_AFTER_S) -> list[JobRun]:
    """Mark ``killed`` the runs still ``running`` whose heartbeat is older than ``stale_after_s``.

    A run records its end in a ``finally``, which a SIGKILL, an out-of-memory kill or a power cut
    skips; its row would say ``running`` for ever. While it works its heartbeat is renewed every
    ``HEARTBEAT_S`` (:func:`job_run`), so a row that stopped beating belongs to a process that is
    gone, on whichever machine or in whichever container it ran.
    """
    cutoff = database_now(session) - timedelta(seconds=stale_after_s)
    killed = session.scalars(
        select(JobRun).where(JobRun.status == "running",
                             func.coalesce(JobRun.heartbeat_at, JobRun.started_at) < cutoff)
    ).all()
    for run in killed:
        run.status = "killed"
        run.error = (f"no heartbeat for over {stale_after_s:g} s (last {run.heartbeat_at or run.started_at}): "
                     f"process {run.pid} on {run.host} ended without recording the end of this run (killed?)")
        log.warning("job %s started %s: %s", run.job, run.started_at, run.error)
    return killed


class _Heartbeat:
    """Renews a run's ``heartbeat_at`` every ``every_s`` from a thread of its own until stopped."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int, job: str, every_s: float):
        self.sessions, self.run_id, self.job, self.every_s = sessions, run_id, job, every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name=f"heartbeat-{job}", daemon=True)
        self._thread.start()

    def _beat_until_stopped(self) -> None:
        while not self._stopped.wait(self.every_s):
            try:
                with self.sessions.begin() as session:
                    beat = session.execute(
                        update(JobRun.__table__)
                        .where(JobRun.__table__.c.id == self.run_id, JobRun.__table__.c.status == "running")
                        .values(heartbeat_at=database_now(session))
                    )
                if beat.rowcount == 0:
                    log.warning("job %s: its run was marked ended by another worker (heartbeat too late?)", self.job)
            except SQLAlchemyError as exc:  # a locked or unreachable database: try again next beat
                log.warning("job %s: heartbeat not recorded: %s", self.job, str(exc).splitlines()[0])

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


@contextmanager
def _singleton(sessions: sessionmaker[Session], job: str, singleton: bool) -> Iterator[None]:
    """Hold the job's lock for the run (PostgreSQL's advisory lock, SQLite's lock file; both let go
    when their process dies), or raise :class:`JobBusy`."""
    if not singleton:
        yield
        return
    with sessions() as session:
        engine = session.get_bind()
    name = f"colorbot job: {job}"
    with advisory_lock(engine, name, wait=False) as held:
        if not held:
            holder = lock_holder(engine, name) if engine.dialect.name == "sqlite" else None
            raise JobBusy(f"{job} is running in another worker" + (f" ({holder})" if holder else ""))
        yield


@contextmanager
def job_run(sessions: sessionmaker[Session], job: str, *, singleton: bool = False,
            heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S) -> Iterator[JobRun]:
    """Record one run of ``job`` in ``job_runs``: its start at once, a heartbeat while it works, its
    end and outcome after.

    The caller sets ``run.items``; an exception marks the run failed with its message and is
    re-raised, so a scheduler can log it and carry on. When the end cannot be written (the database
    locked for too long, the disk full), the job's own exception is still the one raised, and the
    row stays ``running`` until its heartbeat is ``stale_after_s`` old (:func:`close_killed_runs`).

    ``singleton``: the job runs in one worker at a time, across machines; while another worker's
    run of it is alive this raises :class:`JobBusy` before anything is recorded: an advisory lock on
    PostgreSQL, a lock file beside the database on SQLite (``db.locks``), held for the run; a holder
    that dies lets go of either at once.
    """
    started = time.monotonic()
    with _singleton(sessions, job, singleton):
        with sessions.begin() as session:
            close_killed_runs(session, stale_after_s)
            run = JobRun(job=job, host=socket.gethostname(), pid=os.getpid(), heartbeat_at=database_now(session))
            session.add(run)
        heartbeat = _Heartbeat(sessions, run.id, job, heartbeat_s)
        failed = False
        try:
            yield run
        except BaseException as exc:
            failed = True
            run.status = "failed" if isinstance(exc, Exception) else "interrupted"
            run.error = f"{type(exc).__name__}: {exc}"[:2000]
            raise
        else:
            run.status = "ok"
        finally:
            heartbeat.stop()
            run.finished_at = utcnow()
            run.seconds = time.monotonic() - started
            try:
                with sessions.begin() as session:
                    session.merge(run)
            except SQLAlchemyError as exc:
                if not failed:
                    raise
                log.error("job %s: its failure could not be recorded in job_runs either: %s", job,
                          str(exc).splitlines()[0])


def table_counts(session: Session) -> dict[str, int]:
    return {
        name: session.scalar(select(func.count()).select_from(table)) or 0
        for name, table in Base.metadata.tables.items()
    }


def post_state_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Post.state, func.count()).group_by(Post.state)).all()
    return {state: count for state, count in rows}
