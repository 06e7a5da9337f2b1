from __future__ import annotations

import os
from pathlib import Path

import keras
import pytest
from sqlalchemy import Engine

from colorizer.export import export_model
from colorizer.model import ModelConfig, build_model
from db import make_engine, migrate, session_factory
from tests.postgres_server import PostgresCluster, PostgresUnavailable


DB_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster for the whole run (tests/postgres_server.py), started on first use.

    CI installs PostgreSQL (see the README's test command), so there its absence fails the tests
    that need it; elsewhere they are skipped with the reason.
    """
    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL for the database tests: {exc}")
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def db_backend(request) -> str:
    """Which database the test runs on: every test using the database runs on each (``--db`` picks one)."""
    return request.param


@pytest.fixture
def db_url(request, db_backend, tmp_path) -> str:
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'colorbot.db'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


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


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts this offline machine cannot reach.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class BrowserPage:
    """A Chromium page, the console errors and failed requests it had, and screenshots as artefacts."""

    def __init__(self, page, problems: list[str]):
        self.page = page
        self.problems = problems

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def browser_page():
    """A page in Debian's headless Chromium (see BrowserPage), closed after the test.

    CI installs chromium (see the README's test command), so there a missing browser fails the
    test; elsewhere the test is skipped.
    """
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
        ARTIFACTS.mkdir(exist_ok=True)
        yield BrowserPage(page, problems)
        browser.close()


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run the long variants marked slow")
    parser.addoption("--db", choices=[*DB_BACKENDS, "both"], default="both",
                     help="which database the database tests run on [default: both]")


def pytest_generate_tests(metafunc):
    if "db_backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--db")
    backends = [name for name in DB_BACKENDS if chosen in (name, "both")]
    for only in DB_BACKENDS:
        if metafunc.definition.get_closest_marker(f"{only}_only"):
            backends = [name for name in backends if name == only]
    metafunc.parametrize("db_backend", backends, indirect=True)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long variant: run with --run-slow (or -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
