from __future__ import annotations

import pytest
from sqlalchemy import Engine

from db import make_engine, migrate, session_factory


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'colorbot.db'}"


@pytest.fixture
def engine(db_url) -> Engine:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)
