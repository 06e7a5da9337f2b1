"""Locks between workers on several machines: PostgreSQL's advisory locks.

A session-level advisory lock belongs to one database connection, so each is held on a connection
of its own for as long as the work lasts, and a worker that dies (SIGKILL, a lost machine) lets go
of it with its connection. On SQLite, whose writers already take the whole database's lock
(``BEGIN IMMEDIATE``, see db.engine) but only for a transaction, a lock that lasts a job is an
``flock`` on a file beside the database: the kernel lets go of it when its process dies, however it
dies, and every process that can open the database (the one machine, or containers sharing its
volume) sees it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

MIGRATIONS_LOCK = "colorbot: migrations"


def lock_key(name: str) -> int:
    """The signed 64-bit key PostgreSQL's advisory locks take, the same for ``name`` in every process."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold the advisory lock ``name`` for the block; yields whether it is held.

    ``wait`` blocks until the holder lets go; otherwise another holder means False at once. On a
    database other than PostgreSQL this yields True: its own locking has to do (see above).
    """
    if engine.dialect.name == "sqlite":
        with _file_lock(engine, name, wait=wait) as held:
            yield held
        return
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    # Autocommit: the lock outlives transactions, and a connection idle in a transaction for the
    # length of a job would hold back PostgreSQL's vacuum.
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if wait:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            held = True
        else:
            held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        try:
            yield held
        finally:
            if held:
                _unlock(connection, key, name)
    finally:
        connection.close()


def lock_file(engine: Engine, name: str) -> str | None:
    """The file that stands for lock ``name`` of a SQLite database; None for an in-memory one."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return f"{database}.{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.lock"


def lock_holder(engine: Engine, name: str) -> str | None:
    """Who holds a SQLite lock, as its holder wrote it ("process P on HOST"); None if unknown."""
    path = lock_file(engine, name)
    try:
        with open(path or "", encoding="utf-8") as file:
            return file.read().strip() or None
    except OSError:
        return None


@contextmanager
def _file_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    path = lock_file(engine, name)
    if path is None:  # one process has an in-memory database to itself
        yield True
        return
    with open(path, "a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            file.truncate(0)
            file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            file.flush()
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _unlock(connection, key: int, name: str) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except SQLAlchemyError as exc:
        # The pool must not keep a connection that may still hold the lock: closing it lets go.
        log.warning("advisory lock %r: unlock failed (%s); closing its connection", name, str(exc).splitlines()[0])
        connection.invalidate()
