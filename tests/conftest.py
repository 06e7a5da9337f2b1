from __future__ import annotations

import keras
import pytest
from sqlalchemy import Engine

from colorizer.export import export_model
from colorizer.model import ModelConfig, build_model
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


def export_tiny(folder, name: str, seed: int):
    keras.utils.set_random_seed(seed)
    config = ModelConfig(backbone="tiny", weights=None, input_size=64, tiny_widths=[8, 8, 16, 16, 16])
    export_model(build_model(config), config, folder, name=name, version=f"seed-{seed}")
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Two different exported models: the benchmark compares them side by side."""
    root = tmp_path_factory.mktemp("models")
    return [export_tiny(root / "tiny-a", "tiny-a", 1), export_tiny(root / "tiny-b", "tiny-b", 2)]
