"""A throwaway PostgreSQL cluster for the test run: initdb and pg_ctl into a temporary folder.

Debian's ``postgresql`` package puts its programs outside PATH (``/usr/lib/postgresql/15/bin``);
they are found on PATH, through ``pg_config --bindir`` or by that folder's pattern. PostgreSQL
refuses to run as root, so under root (CI containers) the cluster belongs to the ``postgres``
user the package creates and its programs run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "colorbot"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL to start here; the message says what is missing."""


def find_bindir() -> Path:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(found.stdout.strip()))
    candidates += sorted((Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb found; Debian: apt-get install postgresql)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One cluster on 127.0.0.1, trust authentication, ``colorbot`` as its superuser."""

    def __init__(self):
        try:
            import psycopg  # noqa: F401 - the driver every PostgreSQL URL of the tests uses
        except ImportError:
            raise PostgresUnavailable("the psycopg driver is not installed (pip install -e '.[dev]')") from None
        self.bindir = find_bindir()
        self.owner = None
        if os.geteuid() == 0:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as") \
                    from None
        self.root = Path(tempfile.mkdtemp(prefix="colorbot-pg-"))  # not under pytest's root-only folders
        self.data = self.root / "data"
        self.port = free_port()
        self._databases = 0
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{program} failed: {(done.stderr or done.stdout).strip()[-2000:]}")

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
        for attempt in range(3):  # the free port may be taken by another test run before the server binds it
            # fsync off: a crash of the test machine loses nothing anyone needs, and it is much faster.
            options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                          "-w", "start")
                return self
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                self.port = free_port()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self) -> str:
        """A new empty database's URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
