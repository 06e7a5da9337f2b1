"""Locks between workers on several machines: PostgreSQL's advisory locks.

A session-level advisory lock belongs to one database connection, so each is held on a connection
of its own for as long as the work lasts, and a worker that dies (SIGKILL, a lost machine) lets go
of it with its connection. SQLite needs none of this: its writers take the whole database's lock
(``BEGIN IMMEDIATE``, see db.engine), which serialises them on the one machine that has the file.
"""

from __future__ import annotations

import hashlib
import logging
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


def _unlock(connection, key: int, name: str) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except SQLAlchemyError as exc:
        # The pool must not keep a connection that may still hold the lock: closing it lets go.
        log.warning("advisory lock %r: unlock failed (%s); closing its connection", name, str(exc).splitlines()[0])
        connection.invalidate()
