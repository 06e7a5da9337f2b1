"""Opening the database: any SQLAlchemy URL, with SQLite tuned for several writers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from db.safe_text import mask_credentials

DEFAULT_URL = "sqlite:///colorbot.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
BEGIN_OPTION = "colorbot_sqlite_begin"


class DatabaseURLError(ValueError):
    """The configured database URL cannot be used; the message says why."""


def make_engine(url: str = DEFAULT_URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; for SQLite, WAL journal, a busy timeout and foreign keys are on.

    WAL lets the scheduler's jobs and a ``colorbot report`` read while another process writes;
    the busy timeout makes a second writer wait instead of failing with "database is locked".
    It is 30 s unless the URL sets pysqlite's own ``timeout`` parameter, in seconds
    (``sqlite:///colorbot.db?timeout=5``): a writer blocked longer than that fails with
    "database is locked" and its job is retried at its next run.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(f"bad database URL {mask_credentials(url)!r}: not an SQLAlchemy URL") from None
    except ValueError as exc:  # a port that is not a number: SQLAlchemy's int() fails with the port in it
        raise DatabaseURLError(f"bad database URL {mask_credentials(url)!r}: {exc}") from None
    shown = parsed.render_as_string(hide_password=True)
    busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
    if parsed.get_backend_name() == "sqlite" and "timeout" in parsed.query:
        try:
            busy_timeout_ms = round(float(parsed.query["timeout"]) * 1000)
        except (TypeError, ValueError):
            busy_timeout_ms = -1
        if busy_timeout_ms < 0:
            raise DatabaseURLError(f"bad database URL {shown!r}: timeout must be a number of seconds >= 0")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise DatabaseURLError(f"bad database URL {shown!r}: folder {folder} does not exist")
    try:
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": busy_timeout_ms / 1000}
            if parsed.get_backend_name() == "sqlite"
            else {},
        )
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise DatabaseURLError(f"bad database URL {shown!r}: {mask_credentials(str(exc))}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda connection, _record: _configure_sqlite(connection, busy_timeout_ms))
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINTs; take control of it.
        # IMMEDIATE takes the write lock at once, so a writer never fails half-way to upgrade its lock;
        # a reading() session begins DEFERRED and, in WAL mode, holds no lock writers wait for.
        event.listen(
            engine, "begin",
            lambda conn: conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(BEGIN_OPTION, 'IMMEDIATE')}"),
        )
    return engine


def _configure_sqlite(dbapi_connection, busy_timeout_ms: int) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads: on SQLite its transaction begins DEFERRED, so however long it
    lasts (a report over thousands of posts) no writer waits for it; it must not write.

    Every other session begins IMMEDIATE, taking the write lock even to read.
    """
    with sessions() as session:
        session.connection(execution_options={BEGIN_OPTION: "DEFERRED"})
        yield session
