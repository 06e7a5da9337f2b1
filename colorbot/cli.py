"""The ``colorbot`` command line."""

from __future__ import annotations

import json
import logging
import math
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
from colorbot.allocator import keep_freed_memory
from colorbot.config import Config, ConfigError, load_config
from colorbot.logs import allow_native_logs, configure_logging
from db import DatabaseURLError, make_engine, session_factory
from db.safe_text import mask_credentials
from db import migrate
from db.store import job_run, post_state_counts, table_counts

log = logging.getLogger("colorbot")


class SetupError(click.ClickException):
    """A problem with configuration or environment: one line, exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"colorbot: error: {mask_credentials(self.format_message())}", err=True)


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
            if self._config.logging.level == "DEBUG":
                allow_native_logs()
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

    def step_context(self):
        """What a pipeline step gets (``colorbot.steps``), with a stop event of its own."""
        from colorbot.steps import StepContext

        return StepContext(config=self.config, sessions=self.sessions)


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
    configure_logging(debug=verbose or _debug_configured(config_path))
    # Alembic announces every migration context at INFO; that is noise on each start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = App(config_path=config_path)


def _debug_configured(config_path: Path | None) -> bool:
    """Whether logging.level is DEBUG, known before any command imports TensorFlow; a configuration
    that does not load is reported by the command that needs it."""
    try:
        return load_config(config_path).logging.level == "DEBUG"
    except ConfigError:
        return False


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
    import prawcore

    from colorbot.schedule import stop_on_signals
    from colorbot.steps import run_step

    context = app.step_context()
    try:
        with stop_on_signals(context.stop):
            result = run_step("scrape", context, reddit=_reddit_or_exit(app), subreddits=list(subreddits) or None,
                              listing=listing, time_filter=time_filter, limit=limit)
    except (prawcore.PrawcoreException, RuntimeError) as exc:
        raise click.ClickException(f"scrape failed: {type(exc).__name__}: {exc}") from None
    for line in result.lines:
        click.echo(line)


@cli.command("import")
@click.argument("submissions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--comments", "comments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Comments dump (repeatable): keep the posters' comments with links under waiting posts.")
@click.option("--subreddit", "subreddits", multiple=True, help="Subreddit to import [default: reddit.subreddits].")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Only posts made on or after DATE (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Only posts made before DATE (UTC).")
@click.option("--no-progress", is_flag=True, help="No progress bar (there is none when stderr is not a terminal).")
@pass_app
def import_dump(app: App, submissions: Path, comments: tuple[Path, ...], subreddits: tuple[str, ...],
                since: datetime | None, until: datetime | None, no_progress: bool) -> None:
    """Store a subreddit's history from Pushshift / Arctic Shift dump files (zstd NDJSON).

    Posts are stored as the scraper stores them, marked as imported (never replied to) and left
    for the scrape step to refresh and fetch. Idempotent; a rerun after a kill carries on. A
    truncated or corrupt file stops with one line naming the line reached; a line that is not
    JSON is skipped with a warning and the exit code is 1.
    """
    import threading

    from sqlalchemy.exc import SQLAlchemyError

    from bot.dumps import DumpError, DumpImporter, ImportInterruptedError
    from colorbot.schedule import stop_on_signals

    stop = threading.Event()
    importer = DumpImporter(app.sessions, app.config.reddit, subreddits=list(subreddits) or None, since=since,
                            until=until, progress=not no_progress and sys.stderr.isatty(), stop=stop)
    try:
        with stop_on_signals(stop), job_run(app.sessions, "import") as run:
            try:
                report = importer.run(submissions, comments)
            finally:
                run.items = importer.report.posts_stored
    except (DumpError, ImportInterruptedError) as exc:
        raise click.ClickException(f"import: {exc} ({importer.report.posts_stored} posts stored)") from None
    except SQLAlchemyError as exc:  # the database locked too long, the disk full: committed batches stay
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"import: database error: {reason} ({importer.report.posts_stored} posts "
                                   "stored; running the same import again carries on)") from None
    click.echo(report.summary())
    if report.bad_lines:
        raise SystemExit(1)


@cli.command("reply")
@click.option("--dry-run", is_flag=True, help="Only record what would be posted [default: reply.dry_run].")
@click.option("--limit", type=click.IntRange(1, 10_000), default=None, help="Most posts to examine.")
@pass_app
def reply(app: App, dry_run: bool, limit: int | None) -> None:
    """Reply to evaluated posts with the model's colorization (off unless reply.enabled).

    Dry-run unless reply.dry_run = false: the comment is stored in the replies table and logged.
    Never replies twice: a reply is recorded before posting and reconciled after a crash.
    """
    import prawcore

    from bot.reply import ReplyConfigError
    from colorbot.schedule import stop_on_signals
    from colorbot.steps import StepFailedError, run_step

    if not app.config.reply.enabled:
        raise SetupError("reply: replies are off; set reply.enabled = true (dry-run unless reply.dry_run = false)")
    reddit = _reddit_or_exit(app)
    context = app.step_context()
    try:
        with stop_on_signals(context.stop):
            result = run_step("reply", context, reddit=reddit, dry_run=True if dry_run else None, limit=limit)
    except ReplyConfigError as exc:
        raise SetupError(f"reply: {exc}") from None
    except prawcore.PrawcoreException as exc:
        raise click.ClickException(f"reply failed: {type(exc).__name__}: {exc}") from None
    except StepFailedError as exc:
        click.echo("\n".join(exc.result.lines))
        raise SystemExit(1) from None
    click.echo("\n".join(result.lines))


@cli.command("run")
@click.option("--once", is_flag=True, help="Run every job once, in order, and exit.")
@pass_app
def run(app: App, once: bool) -> None:
    """Run the pipeline's jobs on their schedule until SIGINT/SIGTERM (scrape every reddit.scrape_interval_min)."""
    from colorbot.schedule import default_jobs, run_forever, run_once, stop_on_signals

    _reddit_or_exit(app)  # credentials problems stop here, not in every run of the job
    context = app.step_context()
    _open_models_or_exit(app, context.cache)
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


def _open_models_or_exit(app: App, cache: dict) -> None:
    """Open the configured models for the colorize job now, so that a wrong one (a bad ONNX
    declaration, a missing folder, a name and version a stored model with another identity has)
    stops the command at start with one line. A model server that does not answer yet is left to
    the colorize job, which retries on its schedule."""
    from colorbot.pipeline import register_models
    from colorizer.client import RemoteColorizerError, open_colorizers
    from db.store import ModelIdentityClash

    try:
        colorizers = open_colorizers(app.config.colorizer.models)
    except RemoteColorizerError as exc:
        log.warning("colorize: cannot open the models now (the colorize job tries again): %s", str(exc).splitlines()[0])
        return
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise SetupError(f"colorize: cannot load model: {str(exc).splitlines()[0]}") from None
    try:
        register_models(app.sessions, colorizers)
    except ModelIdentityClash as exc:
        raise SetupError(f"colorize: {exc}") from None
    cache["colorizers"] = colorizers


@cli.command("train")
@click.option("--data", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder tree of colour photos (repeat to pool several).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File listing more photo folders to pool, one per line ('#' comments).")
@click.option("--val", type=click.Path(exists=True, file_okay=False), default=None, help="Held-out photos.")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Run folder; an existing run resumes.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TOML training config; the options given here override it "
                   "[colorizer/recipes/default.toml, the shipped model's].")
@click.option("--steps", type=click.IntRange(1), default=None, help="Total optimisation steps [10000].")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Photos per step [16].")
@click.option("--lr", type=float, default=None, help="Learning rate [0.1].")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default=None, help="Optimizer [sgd].")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]), default=None, help="LR schedule.")
@click.option("--loss-norm", type=click.Choice(["l2", "l1"]), default=None,
              help="UV distance: Euclidean (the post) or absolute (the original code) [l2].")
@click.option("--backbone", type=click.Choice(["vgg16", "resnet50", "efficientnet_lite0", "tiny"]), default=None,
              help="Encoder [vgg16].")
@click.option("--weights", default=None,
              help="Backbone weights: 'imagenet' (downloaded by Keras), a local file, or 'none'.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def train(data, manifest, val, out, recipe, steps, batch_size, lr, optimizer, schedule, loss_norm, backbone, weights, no_progress):
    """Train the residual encoder on a folder of colour photos, desaturated on the fly.

    Checkpoints, TensorBoard logs (`tensorboard --logdir OUT/tensorboard`) and history.jsonl go
    to OUT; running the same command again resumes from the last checkpoint.
    """
    from colorizer.train import DEFAULT_RECIPE, TrainConfig
    from colorizer.train import train as run_training

    overrides = {"data": list(data) or None, "manifest": manifest, "val": val, "out": out, "steps": steps,
                 "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "schedule": schedule,
                 "loss_norm": loss_norm}
    try:
        config = TrainConfig.from_toml(recipe or DEFAULT_RECIPE, **overrides)
        if backbone:
            config.model.backbone = backbone
        if weights:
            config.model.weights = None if weights.lower() == "none" else weights
        config.progress = not no_progress
        if not config.data and not config.manifest:
            raise ValueError("--data or --manifest (or data in the recipe) is required")
        result = run_training(config)
    except (ValueError, FileNotFoundError) as exc:
        raise SetupError(f"train: {exc}") from None
    click.echo(json.dumps(result))


@cli.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder for the SavedModel.")
@click.option("--name", default="residual-encoder", show_default=True, help="Model name in reports.")
@click.option("--version", "version", default=None,
              help="Model version [default: step-STEP-DIGEST, DIGEST from the weights and the settings below].")
@click.option("--upsampling", type=click.Choice(["guided", "bilinear"]), default="guided", show_default=True,
              help="How chroma is brought to full resolution.")
@click.option("--chroma-scale", default="auto", show_default=True,
              help="Multiply the predicted U and V by this; 'auto' fits it on the run's calibration photos "
                   "(1 when the run kept none).")
@click.option("--min-chroma-ratio", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="With --chroma-scale auto: the least mean chroma, as a share of the true photos'.")
def export(run_dir, out, name, version, upsampling, chroma_scale, min_chroma_ratio):
    """Export a training run's latest checkpoint as a TensorFlow SavedModel for serving.

    The default signature takes encoded image bytes and returns full-resolution PNG bytes, so
    TensorFlow Serving serves the folder unchanged.
    """
    from colorizer.calibrate import fit_chroma_scale
    from colorizer.export import export_model
    from colorizer.train import load_run

    try:
        config, model, step = load_run(run_dir)
        if chroma_scale == "auto":
            listing = Path(run_dir) / "calibration.txt"
            paths = [line for line in listing.read_text(encoding="utf-8").splitlines() if line] if listing.is_file() else []
            scale = 1.0
            if paths:
                fit = fit_chroma_scale(model, paths, config.model.input_size, min_chroma_ratio=min_chroma_ratio)
                click.echo(fit.describe())
                scale = fit.scale
        else:
            try:
                scale = float(chroma_scale)
            except ValueError:
                scale = -1.0
            if not 0 <= scale <= 4:
                raise ValueError(f"--chroma-scale must be 'auto' or a number from 0 to 4, not {chroma_scale}")
    except (FileNotFoundError, ValueError) as exc:
        raise SetupError(f"export: {exc}") from None
    info = export_model(model, config.model, out, name=name, version=version, version_prefix=f"step-{step}",
                        upsampling=upsampling, chroma_scale=scale)
    _copy_chroma_prior(Path(run_dir), Path(out))
    click.echo(f"exported {info.name} {info.version} to {out} (weights sha256 {info.weights_sha256[:12]})")


def _copy_chroma_prior(run_dir: Path, out: Path) -> None:
    """A classification run's bin prior goes with its export: the record of what it was trained on."""
    import shutil

    from colorizer.chroma_bins import PRIOR_FILE

    if (run_dir / PRIOR_FILE).is_file():
        shutil.copyfile(run_dir / PRIOR_FILE, out / PRIOR_FILE)


@cli.command("colorize")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder for the PNG results.")
@click.option("--model", "model_dir", type=click.Path(), default=None,
              help="Exported model folder or declared .onnx file "
                   "[default: the first of colorizer.models, else the default model].")
@click.option("--batch-size", type=click.IntRange(1, 256), default=None, help="Images per network call.")
@pass_app
def colorize(app: App, images, out, model_dir, batch_size):
    """Colorize photos at full resolution; colour photos are turned gray first.

    Writes OUT/<name>.png for each input (inputs sharing a name get <name>-2.png, -3, ... in the
    order given); an animated image gives its first frame. A file that cannot be read or written
    gets one line on stderr and the rest go on; the exit code is 1 if any failed.
    """
    out_dir = Path(out)
    try:  # before TensorFlow and the model load: a typo in --out should not cost that wait
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"colorize: cannot create the output folder {out}: {exc.strerror or exc}") from None

    from colorizer.client import RemoteColorizerError, open_colorizers
    from colorizer.images import UnreadableImageError, decode, encode_png
    from colorizer.settings import model_spec_for

    try:
        specs = [model_spec_for(model_dir)] if model_dir else app.config.colorizer.models[:1]
        model = open_colorizers(specs)[0]
    except (FileNotFoundError, OSError, ValueError, RemoteColorizerError) as exc:
        raise SetupError(f"colorize: cannot load model: {str(exc).splitlines()[0]}") from None
    targets = [out_dir / name for name in _unique_png_names(images)]
    size = batch_size or app.config.colorizer.batch_size
    failed = 0
    for start in range(0, len(images), size):
        batch, numbers = [], []
        for number in range(start, min(start + size, len(images))):
            try:
                batch.append(decode(images[number]))
                numbers.append(number)
            except (UnreadableImageError, OSError) as exc:
                failed += 1
                click.echo(f"colorbot: {images[number]}: {exc}", err=True)
        for number, result in zip(numbers, model.colorize(batch)):
            try:
                targets[number].write_bytes(encode_png(result))
            except OSError as exc:
                failed += 1
                click.echo(f"colorbot: {images[number]}: cannot write {targets[number]}: {exc.strerror or exc}", err=True)
                continue
            click.echo(str(targets[number]))
    if failed:
        raise SystemExit(1)


def _unique_png_names(paths) -> list[str]:
    """``<stem>.png`` per input; a stem seen before gets ``-2``, ``-3``, ... so no result overwrites another."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = Path(path).stem or "image"
        name, count = f"{stem}.png", 1
        while name in used:
            count += 1
            name = f"{stem}-{count}.png"
        used.add(name)
        names.append(name)
    return names


@cli.command("evaluate")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate at most this many posts.")
@pass_app
def evaluate(app: App, limit: int | None) -> None:
    """Align human colorizations and measure every stored colorization that lacks metrics."""
    from colorbot.steps import run_step

    click.echo("\n".join(run_step("evaluate", app.step_context(), limit=limit).lines))


@cli.command("report")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Only posts made on or after DATE.")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable); the gray baseline is always kept.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True, help="Folder to write.")
@pass_app
def report(app: App, since: datetime | None, models: tuple[str, ...], out_dir: Path) -> None:
    """Write the comparison report (HTML, CSV, JSON, Markdown) into a self-contained folder."""
    from colorbot.steps import perform
    from eval.report import ReportFilter

    filters = ReportFilter(since=since.replace(tzinfo=timezone.utc) if since else None, models=list(models))
    click.echo("\n".join(perform("report", app.step_context(), out_dir=out_dir, filters=filters).lines))


@cli.command("bench")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the results and report; an earlier run's folder resumes.")
@click.option("--model", "model_dirs", multiple=True, type=click.Path(),
              help="Exported model folder or declared .onnx file (repeatable) "
                   "[default: colorizer.models, else the default model].")
@click.option("--gallery", type=click.IntRange(0, 1000), default=8, show_default=True,
              help="Photos shown as input | each model | truth in index.html.")
@click.option("--no-progress", is_flag=True, help="No progress bar (there is none when stderr is not a terminal).")
@pass_app
def bench(app: App, photos: tuple[Path, ...], out_dir: Path, model_dirs: tuple[str, ...], gallery: int,
          no_progress: bool) -> None:
    """Turn colour photos gray, colorize them with every model and measure each against the true photo.

    PHOTOS are image files or folders (searched for JPEG/PNG/WebP). Writes OUT/results.jsonl (one line
    per photo and model, kept as it goes), metrics.csv, summary.json, summary.md and index.html.
    Running it again into the same OUT measures only what is not stored yet. A bad photo gets one
    warning line and the rest go on; the exit code is 1 if any failed.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"bench: cannot create the output folder {out_dir}: {exc.strerror or exc}") from None

    from colorizer.client import RemoteColorizerError, open_colorizers
    from colorizer.data import find_images
    from colorizer.images import decode
    from colorizer.settings import model_spec_for
    from eval.bench import BenchBusyError, run_bench

    files = [path for photo in photos for path in (find_images(photo) if photo.is_dir() else [photo])]
    try:
        specs = [model_spec_for(path) for path in model_dirs] if model_dirs else app.config.colorizer.models
        models = open_colorizers(specs)
    except (FileNotFoundError, OSError, ValueError, RemoteColorizerError) as exc:
        raise SetupError(f"bench: cannot load model: {str(exc).splitlines()[0]}") from None
    try:
        summary = run_bench(files, models, out_dir, decode=decode, gallery=gallery,
                            progress=not no_progress and sys.stderr.isatty())
    except (BenchBusyError, ValueError) as exc:
        raise SetupError(f"bench: {exc}") from None
    click.echo(summary.line())
    click.echo(str(summary.index))
    if summary.failed:
        raise SystemExit(1)


@cli.command("compare")
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("candidates", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--aligned", is_flag=True, help="The candidates already share the reference's frame: measure every pixel.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per candidate per line.")
@pass_app
def compare(app: App, reference: str, candidates: tuple[str, ...], aligned: bool, as_json: bool) -> None:
    """Every metric and the headline score of each CANDIDATE colorization against REFERENCE.

    Each candidate is aligned onto the reference as a post's human colorization is onto its original
    (the [eval] settings), unless --aligned says they already share a frame. A candidate that cannot
    be read or aligned gets one line on stderr and the others go on; the exit code is 1 if any failed.
    """
    from colorizer.images import UnreadableImageError, decode
    from eval.compare import NotComparableError, compare_images
    from eval.metrics import HEADLINE_METRIC

    try:
        reference_rgb = decode(reference)
    except (UnreadableImageError, OSError) as exc:
        raise SetupError(f"compare: {reference}: {exc}") from None
    failed = 0
    for candidate in candidates:
        try:
            metrics = compare_images(reference_rgb, decode(candidate), aligned=aligned, settings=app.config.eval)
        except (UnreadableImageError, NotComparableError, OSError) as exc:
            click.echo(f"colorbot compare: {candidate}: {exc}", err=True)
            failed += 1
            continue
        if as_json:
            values = {name: (value if math.isfinite(value) else None) for name, value in metrics.items()}
            click.echo(json.dumps({"candidate": candidate, **values}))
        else:
            click.echo(f"{candidate}: {HEADLINE_METRIC} {metrics[HEADLINE_METRIC]:.4f}")
            for name, value in metrics.items():
                if name != HEADLINE_METRIC:
                    click.echo(f"  {name:22s} {value:.4f}")
    if failed:
        raise SystemExit(1)


@cli.command("serve")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Exported model folder [default: the default model].")
@click.option("--name", default=None, help="Model name in the URL [default: the model's own].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True, help="Port (0: any free).")
@click.option("--max-batch", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Most images run through the network at once.")
@click.option("--batch-timeout-ms", type=click.FloatRange(0, 1000), default=5.0, show_default=True,
              help="How long the first request of a batch waits for others.")
@click.option("--max-queue", type=click.IntRange(1), default=64, show_default=True,
              help="Images waiting beyond this get 503 with Retry-After.")
@click.option("--max-body-mb", type=click.FloatRange(0.01), default=64.0, show_default=True, help="Request size limit.")
@click.option("--max-instances", type=click.IntRange(1), default=64, show_default=True,
              help="Images per request (at most --max-queue); more get 413.")
@click.option("--max-megapixels", type=click.FloatRange(0.01), default=50.0, show_default=True,
              help="Pixels decoded or colorized at once, all requests together (what bounds memory); "
                   "a request over it gets 413, one that must wait for others 503.")
def serve(model_dir, name, host, port, max_batch, batch_timeout_ms, max_queue, max_body_mb, max_instances,
          max_megapixels):
    """Serve an exported model over TensorFlow Serving's REST API, with dynamic batching.

    POST /v1/models/NAME:predict (or /v1/models/NAME/versions/VERSION:predict) with
    {"instances": [{"b64": ...}]} answers {"predictions": [{"b64": PNG}]}; GET /v1/models/NAME
    gives its status with its version and identity (weights hash, settings), /healthz its health.
    SIGINT/SIGTERM stop taking requests and finish those accepted.
    """
    import threading

    from colorbot.schedule import stop_on_signals
    from colorizer.client import LocalColorizer, default_model_dir
    from colorizer.serve import ModelServer, ServeSettings

    try:
        model = LocalColorizer(model_dir or default_model_dir())
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise SetupError(f"serve: cannot load model: {str(exc).splitlines()[0]}") from None
    pixels = int(max_megapixels * 1_000_000)
    settings = ServeSettings(host=host, port=port, max_batch=max_batch, batch_timeout_ms=batch_timeout_ms,
                             max_queue=max_queue, max_body_bytes=int(max_body_mb * 1024 * 1024),
                             max_instances=max_instances, max_pixels_in_flight=pixels,
                             max_pixels=min(ServeSettings.max_pixels, pixels))
    served_name = name or model.identity.name
    try:
        server = ModelServer(served_name, model.identity.version, model.colorize, settings,
                             identity=model.identity.settings()).start()
    except OSError as exc:
        raise SetupError(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"serving {served_name} {model.identity.version} at {server.url}/v1/models/{served_name}", err=True)
    stop = threading.Event()
    with stop_on_signals(stop):
        stop.wait()
    server.stop()
    click.echo("stopped", err=True)


@cli.command("demo")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("colorbot-demo"),
              show_default=True, help="Folder for the demo database and report (emptied of an earlier demo).")
@click.option("--model", "model_dirs", multiple=True, type=click.Path(),
              help="Exported model folder(s) or declared .onnx file(s) to compare [default: the default model].")
def demo(out, model_dirs):
    """Run the whole chain once, offline, on demo posts made from scikit-image's photos.

    Starts a Reddit-API replay server on 127.0.0.1, points PRAW at it, scrapes, colorizes with
    the default model (and the gray baseline), evaluates and writes a report. Needs no
    credentials and no network.
    """
    from colorbot.demo import run_demo
    from colorizer.settings import model_spec_for

    models = [model_spec_for(path) for path in model_dirs]
    try:
        index, outcomes = run_demo(out, models)
    except (FileNotFoundError, ValueError) as exc:
        raise SetupError(f"demo: {str(exc).splitlines()[0]}") from None
    for job, ok in outcomes.items():
        click.echo(f"{job}: {'ok' if ok else 'failed (see the log above)'}")
    if not all(outcomes.values()) or not index.exists():
        raise SystemExit(1)
    click.echo(f"report: {index.resolve()}")


def main() -> None:
    keep_freed_memory()
    cli(prog_name="colorbot")
