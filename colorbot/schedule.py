"""``colorbot run``: the pipeline's jobs on an APScheduler 3 schedule.

Jobs are a plain list of :class:`Job`, each a step of :mod:`colorbot.steps` (the functions the
CLI's commands call) on an interval; :func:`register` adds one (or append to what
:func:`default_jobs` returns). Each job:

* runs at most once at a time, and missed runs are coalesced into one (``job_defaults``);
* is recorded in ``job_runs`` (:func:`db.store.job_run`): start, heartbeat, end, items, outcome;
* scrape, report and reply are singletons: one worker at a time runs each, across machines; a
  worker that finds one running elsewhere skips it (logged at INFO) until its next time;
* may fail (Reddit down, 429, time-outs, a private subreddit): the failure is logged and recorded,
  and the job simply runs again at its next time; the scheduler never stops for it.

SIGINT/SIGTERM set a stop event that jobs check between items, so the item in hand is finished
and committed before the process exits. ``--once`` runs every job once, in order, and returns.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from colorbot.config import Config
from colorbot.steps import StepContext, perform
from db.store import JobBusy, job_run

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}

JobContext = StepContext  # what a job gets is what a step gets (colorbot.steps)


@dataclass(frozen=True)
class Job:
    """A step of the pipeline run every ``interval_s`` seconds; ``run`` returns items handled."""

    name: str
    run: Callable[[JobContext], int]
    interval_s: float
    singleton: bool = False  # run by one worker at a time across all machines (db.store.job_run)


_registered: list[Callable[[Config], Job | None]] = []


def register(factory: Callable[[Config], Job | None]) -> Callable[[Config], Job | None]:
    """Add a job to ``colorbot run``: ``factory(config)`` builds it (None leaves it out)."""
    _registered.append(factory)
    return factory


def _step_job(name: str, interval_s: float, singleton: bool = False) -> Job:
    return Job(name, lambda context: perform(name, context).items, interval_s, singleton=singleton)


@register
def scrape_job_spec(config: Config) -> Job:
    return _step_job("scrape", config.reddit.scrape_interval_min * 60, singleton=True)


@register
def colorize_job_spec(config: Config) -> Job:
    return _step_job("colorize", config.pipeline.colorize_interval_min * 60)


@register
def evaluate_job_spec(config: Config) -> Job:
    return _step_job("evaluate", config.pipeline.evaluate_interval_min * 60)


@register
def report_job_spec(config: Config) -> Job:
    return _step_job("report", config.pipeline.report_interval_h * 3600, singleton=True)


@register
def reply_job_spec(config: Config) -> Job | None:
    """Off unless ``reply.enabled``."""
    return _step_job("reply", config.reply.interval_min * 60, singleton=True) if config.reply.enabled else None


def default_jobs(config: Config) -> list[Job]:
    """Every registered job, in registration order (scrape first)."""
    return [job for factory in _registered if (job := factory(config)) is not None]


def run_job(job: Job, context: JobContext) -> bool:
    """Run one job, recorded in ``job_runs``; False if it failed (logged, never raised).

    A singleton running in another worker is skipped, which is no failure."""
    if context.stop.is_set():
        return False
    try:
        with job_run(context.sessions, job.name, singleton=job.singleton) as record:
            record.items = job.run(context)
    except JobBusy as exc:
        log.info("job %s skipped: %s", job.name, exc)
        return True
    except Exception as exc:  # noqa: BLE001 - a failing job must not stop the scheduler
        log.error("job %s failed: %s: %s", job.name, type(exc).__name__, str(exc)[:500])
        return False
    log.info("job %s: %d items", job.name, record.items)
    return True


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (main thread only); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        log.warning("%s: finishing the item in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_once(jobs: list[Job], context: JobContext) -> dict[str, bool]:
    """Every job once, in order; {name: succeeded}."""
    results = {}
    for job in jobs:
        if context.stop.is_set():
            break
        results[job.name] = run_job(job, context)
    return results


def run_forever(jobs: list[Job], context: JobContext, *, poll_s: float = 1.0) -> None:
    """Run the jobs on their intervals until ``context.stop`` is set; each starts at once."""
    scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone=timezone.utc)
    now = datetime.now(timezone.utc)
    for number, job in enumerate(jobs):
        scheduler.add_job(
            run_job,
            "interval",
            args=(job, context),
            seconds=job.interval_s,
            id=job.name,
            name=job.name,
            replace_existing=True,
            next_run_time=now + timedelta(seconds=number),  # first runs in registration order
        )
    scheduler.start()
    log.info("scheduler started: %s", ", ".join(f"{job.name} every {job.interval_s:g}s" for job in jobs))
    try:
        while not context.stop.wait(poll_s):
            pass
    finally:
        log.info("stopping: waiting for running jobs to finish their item")
        scheduler.shutdown(wait=True)
