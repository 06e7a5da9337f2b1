"""The ``colorbot`` command line."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from colorbot import __version__
from colorbot.config import Config, ConfigError, load_config
from db import DatabaseURLError, make_engine, session_factory
from db import migrate
from db.store import job_run, post_state_counts, table_counts

log = logging.getLogger("colorbot")


class SetupError(click.ClickException):
    """A problem with configuration or environment: one line, exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"colorbot: error: {self.format_message()}", err=True)


@dataclass
class App:
    """What every subcommand needs, built on first use so ``--help`` works without a database."""

    config_path: Path | None
    _config: Config | None = None
    _engine: Engine | None = None
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                raise SetupError(f"config: {exc}") from None
            logging.getLogger().setLevel(self._config.logging.level)
        return self._config

    def engine(self, *, upgrade: bool = True) -> Engine:
        """The database engine; migrations are brought to head first unless ``upgrade`` is off."""
        if self._engine is None:
            url = self.config.database.url
            try:
                engine = make_engine(url)
                if upgrade and not migrate.is_up_to_date(engine):
                    migrate.upgrade(engine)
            except DatabaseURLError as exc:
                raise SetupError(f"database.url: {exc}") from None
            except DBAPIError as exc:
                shown = make_url(url).render_as_string(hide_password=True)
                reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
                raise SetupError(f"database.url: cannot open {shown!r}: {reason}") from None
            self._engine = engine
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = session_factory(self.engine())
        return self._sessions


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML configuration file [default: $COLORBOT_CONFIG or ./colorbot.toml].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.version_option(__version__, prog_name="colorbot")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Benchmark automatic photo colorization against the human colorists of r/colorization.

    Scrapes posts pairing a black-and-white photo with a person's colorization, colorizes the
    original with our residual-encoder network, measures how far machine is from human and
    writes comparison reports. Everything is kept in one database (SQLite by default).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic announces every migration context at INFO; that is noise on each start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = App(config_path=config_path)


@cli.group()
def db() -> None:
    """Create, migrate and inspect the database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
@pass_app
def db_upgrade(app: App, revision: str) -> None:
    """Apply the migrations up to REVISION (every command does this to head on start)."""
    engine = app.engine(upgrade=False)
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def db_stats(app: App, as_json: bool) -> None:
    """Row counts per table and post counts per pipeline state."""
    with app.sessions() as session:
        stats = {"tables": table_counts(session), "post_states": post_state_counts(session)}
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    for title, counts in (("table", stats["tables"]), ("post state", stats["post_states"])):
        click.echo(f"{title:<16}{'rows':>8}")
        for name, count in sorted(counts.items()):
            click.echo(f"{name:<16}{count:>8}")
        click.echo()


def _reddit_or_exit(app: App):
    import praw.exceptions

    from bot.client import make_reddit

    try:
        return make_reddit(app.config.reddit)
    except (praw.exceptions.PRAWException, ValueError) as exc:
        raise SetupError(
            f"reddit: {str(exc).splitlines()[0].strip()}"
            " (set COLORBOT_REDDIT__CLIENT_ID and __CLIENT_SECRET, or reddit.site)"
        ) from None


@cli.command("scrape")
@click.option("--subreddit", "subreddits", multiple=True, help="Subreddit to scrape [default: reddit.subreddits].")
@click.option("--listing", type=click.Choice(["new", "hot", "top", "rising"]), default=None,
              help="Listing to walk [default: reddit.listing].")
@click.option("--time-filter", type=click.Choice(["all", "day", "hour", "month", "week", "year"]), default=None,
              help="Period for --listing top [default: reddit.time_filter].")
@click.option("--limit", type=click.IntRange(1, 10_000), default=None, help="Most posts to walk [default: reddit.limit].")
@pass_app
def scrape(app: App, subreddits: tuple[str, ...], listing: str | None, time_filter: str | None, limit: int | None) -> None:
    """Store new posts of a subreddit listing and fetch each one's original and colorization.

    Idempotent: posts already stored get their score and removal state refreshed; on `new` the
    walk stops at the first post stored by an earlier complete run.
    """
    import threading

    import prawcore

    from bot.scrape import scrape_job
    from colorbot.schedule import stop_on_signals

    reddit = _reddit_or_exit(app)
    stop = threading.Event()
    try:
        with stop_on_signals(stop), job_run(app.sessions, "scrape") as run:
            reports = scrape_job(
                reddit, app.sessions, app.config.reddit, app.config.download, stop=stop,
                subreddits=list(subreddits) or None, listing=listing, time_filter=time_filter, limit=limit,
            )
            run.items = sum(report.items for report in reports)
    except (prawcore.PrawcoreException, RuntimeError) as exc:
        raise click.ClickException(f"scrape failed: {type(exc).__name__}: {exc}") from None
    for report in reports:
        click.echo(report.summary())


@cli.command("run")
@click.option("--once", is_flag=True, help="Run every job once, in order, and exit.")
@pass_app
def run(app: App, once: bool) -> None:
    """Run the pipeline's jobs on their schedule until SIGINT/SIGTERM (scrape every reddit.scrape_interval_min)."""
    import threading

    from colorbot.schedule import JobContext, default_jobs, run_forever, run_once, stop_on_signals

    _reddit_or_exit(app)  # credentials problems stop here, not in every run of the job
    context = JobContext(config=app.config, sessions=app.sessions, stop=threading.Event())
    jobs = default_jobs(app.config)
    with stop_on_signals(context.stop):
        if once:
            results = run_once(jobs, context)
            for name, ok in results.items():
                click.echo(f"{name}: {'ok' if ok else 'failed (see log and job_runs)'}")
            if not all(results.values()):
                raise SystemExit(1)
        else:
            run_forever(jobs, context)


@cli.command("evaluate")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate at most this many posts.")
@pass_app
def evaluate(app: App, limit: int | None) -> None:
    """Align human colorizations and measure every stored colorization that lacks metrics."""
    from eval.evaluate import evaluate_pending

    with job_run(app.sessions, "evaluate") as run:
        summary = evaluate_pending(app.sessions, app.config.eval, limit=limit)
        run.items = summary.posts
    click.echo(
        f"evaluated {summary.posts} posts ({summary.refused} not alignable), "
        f"stored {summary.metrics} metrics, {summary.failed} failed"
    )


@cli.command("report")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Only posts made on or after DATE.")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable); the gray baseline is always kept.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True, help="Folder to write.")
@pass_app
def report(app: App, since: datetime | None, models: tuple[str, ...], out_dir: Path) -> None:
    """Write the comparison report (HTML, CSV, JSON, Markdown) into a self-contained folder."""
    from eval.report import ReportFilter, write_report

    filters = ReportFilter(since=since.replace(tzinfo=timezone.utc) if since else None, models=list(models))
    index = write_report(app.sessions, out_dir, filters, app.config.eval)
    click.echo(str(index))


def main() -> None:
    cli(prog_name="colorbot")
