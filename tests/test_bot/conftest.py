"""Fixtures for the bot tests: a replay server on 127.0.0.1 and a real SQLite database."""

from __future__ import annotations

import pytest

from bot.client import make_reddit
from bot.replay import ReplayServer, Snapshot
from bot.scrape import scrape_job
from bot.settings import DownloadSettings, RedditSettings
from db.store import job_run


class Harness:
    """A replay server, settings pointing at it, and a scrape run the way the CLI runs one."""

    def __init__(self, server: ReplayServer, sessions, **reddit_overrides):
        self.server = server
        self.sessions = sessions
        self.reddit_settings = RedditSettings(**server.reddit_settings(**reddit_overrides))
        self.download_settings = DownloadSettings(
            **server.download_settings(timeout_s=2.0, retries=1, backoff_s=0.01, max_retry_after_s=5)
        )
        self.reddit = make_reddit(self.reddit_settings)

    def scrape(self, **kwargs):
        with job_run(self.sessions, "scrape") as run:
            reports = scrape_job(self.reddit, self.sessions, self.reddit_settings, self.download_settings, **kwargs)
            run.items = sum(report.items for report in reports)
        return reports[0]


@pytest.fixture
def server():
    with ReplayServer(Snapshot()) as running:
        yield running


@pytest.fixture
def harness(server, sessions):
    return Harness(server, sessions)
