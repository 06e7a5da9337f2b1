"""Many workers on one database: migrations at start, singleton jobs, killed runs told by heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

from db import make_engine, migrate
from db.models import Base

REPO = Path(__file__).resolve().parent.parent

# What every colorbot command does on start (colorbot.cli.App.engine), once the given moment has
# come: the processes start together, as workers started by one deployment do.
STARTING_WORKER = textwrap.dedent(
    """
    import sys, time
    from colorbot.cli import App

    class Configured(App):
        config = type("C", (), {"database": type("D", (), {"url": sys.argv[1]})})()

    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    Configured(config_path=None).engine()
    print("started", flush=True)
    """
)


@pytest.mark.postgresql_only
def test_three_workers_starting_at_once_on_a_fresh_database_all_start(db_url):
    start_at = time.time() + 8  # time enough for each to import colorbot
    workers = [subprocess.Popen([sys.executable, "-c", STARTING_WORKER, db_url, str(start_at)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], "\n".join(outputs)
    assert all(output.strip().endswith("started") for output in outputs), outputs
    engine = make_engine(db_url)
    assert migrate.is_up_to_date(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
