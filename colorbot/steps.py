"""The pipeline's steps, one function each over a :class:`StepContext`.

``colorbot scrape``, ``colorbot evaluate``, ``colorbot report`` and ``colorbot reply`` call the same
functions as the scheduler of ``colorbot run`` (and ``colorbot demo``) does, through
:func:`run_step`, so a step is wired up in one place: what it reads from the configuration, which
models it uses, how it reports. A step returns a :class:`StepResult`; a step whose items failed in
a way that fails the job (a reply that could not be posted) raises :class:`StepFailedError` after
its work is stored, carrying the result.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from colorbot.config import Config
from db.claims import Claims, worker_name
from db.store import job_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    """What a step gets: the configuration, the database, the stop event to check between items,
    and the worker's name, which its claims on posts carry."""

    config: Config
    sessions: sessionmaker[Session]
    stop: threading.Event = field(default_factory=threading.Event)
    # Loaded once per process and shared by the step's runs: models take seconds to load.
    cache: dict[str, Any] = field(default_factory=dict)
    worker: str = field(default_factory=worker_name)

    def claims(self) -> Claims:
        return Claims(self.sessions, self.worker)


@dataclass
class StepResult:
    """What a run of a step did: items handled (``job_runs.items``) and lines for the log or terminal."""

    items: int
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class StepFailedError(RuntimeError):
    """The step stored what it could, but some of its items failed in a way that fails the job."""

    def __init__(self, name: str, result: StepResult):
        super().__init__(f"{'; '.join(result.lines)}; {result.errors[0]}")
        self.name = name
        self.result = result


def scrape(context: StepContext, *, reddit=None, subreddits: list[str] | None = None, listing: str | None = None,
           time_filter: str | None = None, limit: int | None = None) -> StepResult:
    """Store new posts of the configured listings and fetch each one's images."""
    from bot.client import make_reddit
    from bot.scrape import scrape_job

    config = context.config
    reports = scrape_job(
        reddit or make_reddit(config.reddit), context.sessions, config.reddit, config.download, stop=context.stop,
        subreddits=subreddits, listing=listing, time_filter=time_filter, limit=limit, claims=context.claims(),
    )
    return StepResult(sum(report.items for report in reports), [report.summary() for report in reports])


def pipeline_colorizers(context: StepContext) -> list:
    """The configured models, opened once per process, and the gray baseline, which every post gets too."""
    from colorizer.baseline import GrayBaseline
    from colorizer.client import open_colorizers

    if "colorizers" not in context.cache:
        context.cache["colorizers"] = open_colorizers(context.config.colorizer.models)
    return [*context.cache["colorizers"], GrayBaseline()]


def colorize(context: StepContext, *, limit: int | None = None) -> StepResult:
    """Colorize every fetched post's original with every model (the gray baseline among them)."""
    from colorbot.pipeline import colorize_pending
    from colorizer.client import ModelChangedError

    try:
        summary = colorize_pending(context.sessions, pipeline_colorizers(context), stop=context.stop, limit=limit,
                                   progress=sys.stderr.isatty(), claims=context.claims())
    except ModelChangedError:
        context.cache.pop("colorizers", None)  # the next run reads which version each server has now
        raise
    return StepResult(summary.posts, [summary.line()])


def evaluate(context: StepContext, *, limit: int | None = None) -> StepResult:
    """Align human colorizations and measure every stored colorization that lacks metrics."""
    from eval.evaluate import evaluate_pending

    summary = evaluate_pending(context.sessions, context.config.eval, limit=limit, claims=context.claims())
    return StepResult(summary.posts, [
        f"evaluated {summary.posts} posts ({summary.refused} not alignable), stored {summary.metrics} metrics, "
        f"{summary.failed} failed ({summary.skipped} given up)"
    ])


def report(context: StepContext, *, out_dir: Path | None = None, filters=None) -> StepResult:
    """Write the comparison report into ``out_dir`` [default: pipeline.report_dir]."""
    from eval.report import write_report

    index = write_report(context.sessions, Path(out_dir or context.config.pipeline.report_dir), filters,
                         context.config.eval, notice=context.cache.get("report_notice"))
    return StepResult(1, [str(index)])


def reply(context: StepContext, *, reddit=None, dry_run: bool | None = None, limit: int | None = None) -> StepResult:
    """Reply to evaluated posts with the model's colorization (dry-run unless reply.dry_run = false)."""
    from bot.client import make_reddit
    from bot.reply import reply_job

    config = context.config
    outcome = reply_job(reddit or make_reddit(config.reddit), context.sessions, config.reply, dry_run=dry_run,
                        limit=limit, stop=context.stop)
    return StepResult(outcome.items, [outcome.summary()], list(outcome.errors))


STEPS: dict[str, Callable[..., StepResult]] = {
    "scrape": scrape, "colorize": colorize, "evaluate": evaluate, "report": report, "reply": reply,
}


def perform(name: str, context: StepContext, **options: Any) -> StepResult:
    """Run step ``name`` once, its lines to the log; raises :class:`StepFailedError` if items failed."""
    result = STEPS[name](context, **options)
    for line in result.lines:
        log.info("%s: %s", name, line)
    if result.errors:
        raise StepFailedError(name, result)
    return result


def run_step(name: str, context: StepContext, **options: Any) -> StepResult:
    """:func:`perform`, recorded in ``job_runs`` (as the scheduler records its jobs)."""
    with job_run(context.sessions, name) as record:
        try:
            result = perform(name, context, **options)
        except StepFailedError as exc:
            record.items = exc.result.items
            raise
        record.items = result.items
    return result
