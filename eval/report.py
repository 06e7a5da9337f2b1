"""The comparison report: a self-contained folder that opens from disk with no network.

``index.html`` opens with the leaderboard (see ``eval.leaderboard``), then the full metric table
per model with 95 % intervals (folded), plots, the ten best and worst as thumbnails, and a gallery
"black-and-white | each model | human" sortable by any metric; beside it ``metrics.csv`` (one row
per colorization), ``summary.json`` and ``summary.md`` (the leaderboard and the metric table),
``settings.json`` (filters, alignment settings, library versions) and the ``images/`` and
``plots/`` it shows. Each model stored is one entry, labelled by its name, or by "name version"
where models share a name.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import os
import platform
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import PIL.Image
from matplotlib.figure import Figure
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from colorizer.images import decode
from db.engine import reading
from db.models import Alignment, Colorization, Image, Metric, Model, Post, PostImage
from db.safe_text import neutralise_bidi
from eval.evaluate import GRAY_MODEL_NAME, original_and_human
from eval.leaderboard import CONFIDENCE, RESAMPLES, build_leaderboard, ratio_summaries
from eval.metrics import MAX_MEASURED_PIXELS, METRICS
from eval.settings import EvalSettings

THUMBNAIL_SIDE = 320
REDDIT = "https://www.reddit.com"
# Reddit's own permalinks: a post under /r/<subreddit>/ or a profile's /user/<name>/. Anything else
# (javascript:, another host, a path that opens as file:/// from a report on disk) is no link.
_PERMALINK = re.compile(r"/(?:r|user)/[^\s\\\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]*")
RANKED = 10
Z_95 = 1.959964
LIBRARIES = ["numpy", "opencv-python-headless", "scikit-image", "matplotlib", "pandas", "jinja2", "sqlalchemy"]


@dataclass
class ReportFilter:
    """Which colorizations a report covers. The gray baseline is always included."""

    since: datetime | None = None
    models: list[str] = field(default_factory=list)


def write_report(
    sessions: sessionmaker[Session],
    out_dir: Path,
    filters: ReportFilter | None = None,
    settings: EvalSettings | None = None,
    notice: str | None = None,
) -> Path:
    """Write the report folder for the measured colorizations; returns the path of ``index.html``.

    ``notice``, if given, is shown prominently at the top (the demo says its data is made up).
    """
    filters, settings = filters or ReportFilter(), settings or EvalSettings()
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    remove_abandoned_partials(out_dir)
    with reading(sessions) as session:  # must not hold the write lock while thumbnails are written
        table, gallery, refused = _collect(session, filters, out_dir / "images")
    summary = summarise(table)
    leaderboard = build_leaderboard(table, GRAY_MODEL_NAME)
    write_file(out_dir / "metrics.csv", table.to_csv(index=False))
    plots = _plot(table, out_dir / "plots")
    models = _report_order(table)
    rankings = _rankings(table, leaderboard["metric"], METRICS[leaderboard["metric"]].better == "higher")
    write_gallery(out_dir, gallery, models)
    context = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "notice": notice,
        "filters": {"since": filters.since.isoformat() if filters.since else None, "models": filters.models},
        "summary": summary,
        "metrics": METRICS,
        "models": models,
        "gallery_posts": len(gallery.posts),
        "ranked_thumbnails": {row["reddit_id"]: gallery.thumbnails_of(row["reddit_id"])
                   for ranked in rankings.values() for rows in ranked.values() for row in rows},
        "refused": refused,
        "plots": plots,
        "leaderboard": leaderboard,
        "rankings": rankings,
    }
    settings_record = {
        "notice": notice,
        "filters": context["filters"],
        "eval": settings.model_dump(),
        "preprocessing": _PREPROCESSING,
        "libraries": _library_versions(),
    }
    summary_record = {"leaderboard": leaderboard, "models": summary}
    write_file(out_dir / "summary.json", json.dumps(json_ready(summary_record), indent=2))
    write_file(out_dir / "settings.json", json.dumps(settings_record, indent=2))
    environment = templates()
    write_file(out_dir / "summary.md", environment.get_template("summary.md.j2").render(**context))
    index = out_dir / "index.html"
    write_file(index, environment.get_template("report.html.j2").render(**context))
    return index


PARTIAL_SUFFIX = ".partial"  # a file being written by write_file; renamed into place when whole


def write_file(path: Path, content: str | bytes) -> None:
    """Replace ``path`` with ``content`` whole or not at all: a write that fails half-way (a full
    disk) leaves the previous report's file as it was instead of a truncated one."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(partial, 0o644)  # mkstemp's 0600 would hide the report from a web server's user
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_abandoned_partials(out_dir: Path, older_than_s: float = 600.0) -> list[Path]:
    """Delete the temporary files of writes that a killed process never finished.

    ``write_file`` removes its own on any error, but not when the process is killed outright. One
    file takes milliseconds to write, so a partial file minutes old has no writer left; younger ones
    may belong to a report being written by another process at this moment and are kept.
    """
    cutoff = datetime.now().timestamp() - older_than_s
    removed = []
    for partial in out_dir.rglob(f".*{PARTIAL_SUFFIX}"):
        try:
            if partial.is_file() and partial.stat().st_mtime < cutoff:
                partial.unlink()
                removed.append(partial)
        except FileNotFoundError:  # another report run removed it first
            continue
    return removed


def summarise(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model: n, share aligned, and per metric the mean with a 95 % interval (ratios: the ratio
    of means with a bootstrap interval, see ``eval.leaderboard.RATIO_METRICS``)."""
    ratios = ratio_summaries(table)
    summary: dict[str, dict[str, Any]] = {}
    for model, rows in table.groupby("model"):
        measured = rows[rows["aligned"]]
        metrics = {name: mean_interval(measured[name].dropna().to_numpy()) for name in METRICS if name in rows}
        metrics.update({name: by_model[str(model)] for name, by_model in ratios.items() if name in metrics})
        summary[str(model)] = {
            "n": int(len(measured)),
            "posts": int(len(rows)),
            "aligned_share": float(rows["aligned"].mean()) if len(rows) else math.nan,
            "metrics": metrics,
        }
    return summary


def mean_interval(values: np.ndarray) -> dict[str, float]:
    """Mean and its 95 % interval (normal approximation, mean ± 1.96 s/√n); NaN when undefined."""
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    half = Z_95 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


_PREPROCESSING = {
    "alignment": "human colorization registered onto the original (SIFT, RANSAC similarity, optional ECC); "
    "metrics only over the covered area, 2 px in from its edge",
    "resizing": "a machine colorization of another size is area-resized to the original's size",
    "measuring size": f"pairs above {MAX_MEASURED_PIXELS / 1e6:g} MP are measured on area-downscaled copies "
    f"of at most {MAX_MEASURED_PIXELS:,} pixels (machine, human and mask alike; a downscaled pixel counts only "
    "if every pixel it averages is valid); smaller pairs are measured as they are",
    "colour spaces": "YUV BT.601 (Y 0–1), CIE Lab D65/2° (scikit-image)",
    "colorfulness": "Hasler & Süsstrunk 2003 with signed rg and yb, RGB 0–255",
    "psnr_ssim": "RGB 0–255; SSIM Gaussian σ 1.5, population covariance; PSNR capped at 100 dB",
    "auc": "share of pixels with ab error ≤ t for t = 0…150, area / 150",
    "interval": "mean ± 1.96 s/√n; ratios (saturation_ratio) as the ratio of means with a percentile interval "
    f"from a bootstrap over posts ({RESAMPLES} resamples)",
    "leaderboard": f"headline score: mean with a {100 * CONFIDENCE:g} % percentile interval from a paired bootstrap "
    f"over posts ({RESAMPLES} resamples, the same for every model); win rates on the posts both colorized, ties half",
}


def model_labels(models: list[Model]) -> dict[int, str]:
    """How the report names each model (by id): its name, or "name version" where models share a name,
    so two versions of one model (two chroma scales of one checkpoint, say) are never merged."""
    names = [model.name for model in {model.id: model for model in models}.values()]
    return {model.id: model.name if names.count(model.name) == 1 else f"{model.name} {model.version}"
            for model in models}


def _report_order(table: pd.DataFrame) -> list[str]:
    """Model labels, the gray baseline last."""
    if not len(table):
        return []
    models = table[["model", "model_name"]].drop_duplicates()
    return [label for _, label in sorted((name == GRAY_MODEL_NAME, label) for label, name in models.itertuples(index=False))]


def _filtered(query, filters: ReportFilter):
    if filters.since is not None:
        query = query.where(Post.created_utc >= filters.since)
    if filters.models:
        query = query.where(Model.name.in_([*filters.models, GRAY_MODEL_NAME]))
    return query


def _collect(session: Session, filters: ReportFilter, image_dir: Path):
    """The per-colorization table, the gallery (writing the thumbnails it lacks) and refusals.

    Numbers come from two queries over stored rows (no image is read for them); an image is read
    only for a thumbnail that is not in ``image_dir`` yet.
    """
    rows = _frame(session.connection().execute(_filtered(
        select(Colorization.id.label("colorization_id"), Post.id.label("post_id"), Post.reddit_id,
               Post.created_utc, Post.permalink, Post.title, Model.id.label("model_id"), Model.name.label("model_name"),
               Model.version.label("model_version"), Model.identity_sha256.label("model_identity"),
               Image.id.label("image_id"), Image.sha256.label("image_sha256"),
               Alignment.accepted.label("aligned"), Alignment.reason)
        .join(Post, Colorization.post_id == Post.id)
        .join(Model, Colorization.model_id == Model.id)
        .join(Image, Colorization.image_id == Image.id)
        .join(Alignment, Alignment.post_id == Post.id)
        .order_by(Post.created_utc, Post.id, Model.name), filters)), _ROW_COLUMNS)
    labels = model_labels(session.scalars(select(Model).where(Model.id.in_(rows["model_id"].unique().tolist()))).all())
    rows["model"] = rows["model_id"].map(labels)
    rows["aligned"] = rows["aligned"].astype(bool)
    values = _metric_values(session, filters).reindex(rows["colorization_id"]).set_axis(rows.index)
    table = pd.concat([rows[["reddit_id"]].assign(created_utc=[t.isoformat() for t in rows["created_utc"]]),
                       rows[["permalink", "model", "model_name", "model_version", "model_identity", "aligned"]],
                       values], axis=1)
    refused = dict(rows.loc[~rows["aligned"], ["reddit_id", "reason"]].fillna("").itertuples(index=False))
    gallery = _Gallery.of(rows[rows["aligned"]], values[rows["aligned"]], _post_image_keys(session, filters))
    Thumbnails(image_dir).write(session, gallery)
    return table, gallery, refused


_ROW_COLUMNS = ["colorization_id", "post_id", "reddit_id", "created_utc", "permalink", "title", "model_id",
                "model_name", "model_version", "model_identity", "image_id", "image_sha256", "aligned", "reason"]


def _metric_values(session: Session, filters: ReportFilter) -> pd.DataFrame:
    """Colorizations × ``METRICS``, NaN where a colorization lacks a metric.

    Pivoted by the database (one row per colorization, not one per metric), which at thousands of
    posts takes a fifth of the time of pivoting the metric rows in pandas."""
    by_name = [func.max(case((Metric.name == name, Metric.value))).label(name) for name in METRICS]
    stored = session.connection().execute(_filtered(
        select(Metric.colorization_id, *by_name)
        .join(Colorization, Metric.colorization_id == Colorization.id)
        .join(Post, Colorization.post_id == Post.id)
        .join(Model, Colorization.model_id == Model.id), filters)
        .group_by(Metric.colorization_id))
    return _frame(stored, ["colorization_id", *METRICS]).set_index("colorization_id").astype(np.float64)


def _frame(result, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a frame. As plain tuples: pandas probes each SQLAlchemy ``Row`` for
    attributes it lacks, which took a third of a 5,000-post report's reading. The queries run on the
    session's connection: they select columns, not objects, and the ORM's row loading for them cost
    as much again."""
    return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=columns)


def _post_image_keys(session: Session, filters: ReportFilter) -> dict[int, str]:
    """Per post: a digest of its stored images and their roles, which names its original and human
    thumbnails, so a post whose images change gets new ones (and one whose images stay keeps them)."""
    query = select(PostImage.post_id, PostImage.role, Image.sha256).join(Image, PostImage.image_id == Image.id)
    if filters.since is not None:
        query = query.join(Post, PostImage.post_id == Post.id).where(Post.created_utc >= filters.since)
    images: dict[int, list[str]] = {}
    for post_id, role, sha256 in session.execute(query):
        images.setdefault(post_id, []).append(f"{role}:{sha256}")
    return {post_id: hashlib.sha256(" ".join(sorted(keys)).encode()).hexdigest()[:KEY_CHARS]
            for post_id, keys in images.items()}


KEY_CHARS = 16
"""Hex digits of a content digest in a thumbnail's name (64 bits: no two images of a report collide)."""


@dataclass
class _Gallery:
    """The gallery's posts (aligned ones, oldest first) with their thumbnails and numbers by model."""

    posts: pd.DataFrame  # post_id, reddit_id, title, permalink (Reddit's own, else None), created, key, original, human
    machines: dict[str, list[str | None]]  # model → thumbnail per post (None where it did not colorize it)
    values: dict[str, pd.DataFrame]  # model → posts × METRICS
    sources: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # thumbnail → (what, post id, image id)

    @classmethod
    def of(cls, rows: pd.DataFrame, values: pd.DataFrame, image_keys: dict[int, str]) -> _Gallery:
        first = rows.drop_duplicates("post_id")
        keys = first["post_id"].map(image_keys)
        posts = pd.DataFrame({
            "post_id": first["post_id"].to_numpy(),
            "reddit_id": first["reddit_id"].to_numpy(),
            "title": [neutralise_bidi(title or "") for title in first["title"]],
            "permalink": [permalink if reddit_link(permalink) else None for permalink in first["permalink"]],
            "created": [t.strftime("%Y-%m-%d") for t in first["created_utc"]],
            "key": [str(key) for key in keys],
            "original": [f"images/{key}-original.jpg" for key in keys],
            "human": [f"images/{key}-human.jpg" for key in keys],
        })
        gallery = cls(posts=posts, machines={}, values={})
        for post_id, original, human in posts[["post_id", "original", "human"]].itertuples(index=False):
            gallery.sources[original] = ("original", post_id, 0)
            gallery.sources[human] = ("human", post_id, 0)
        position = pd.Series(np.arange(len(posts)), index=posts["post_id"])
        for model, by_model in rows.groupby("model", sort=False):
            at = position[by_model["post_id"]].to_numpy()
            names = [f"images/{sha[:KEY_CHARS]}.jpg" for sha in by_model["image_sha256"]]
            machines = np.full(len(posts), None, dtype=object)
            machines[at] = names
            gallery.machines[str(model)] = machines.tolist()
            table = pd.DataFrame(np.nan, index=range(len(posts)), columns=list(METRICS))
            table.iloc[at] = values.loc[by_model.index].to_numpy()
            gallery.values[str(model)] = table
            for name, post_id, image_id in zip(names, by_model["post_id"], by_model["image_id"]):
                gallery.sources[name] = ("machine", int(post_id), int(image_id))
        return gallery

    def thumbnails_of(self, reddit_id: str) -> dict[str, Any]:
        """One post's thumbnails: original, human and machines by model (the ten best and worst)."""
        at = int(np.flatnonzero(self.posts["reddit_id"].to_numpy() == reddit_id)[0])
        return {"original": self.posts["original"][at], "human": self.posts["human"][at],
                "machines": {model: names[at] for model, names in self.machines.items()}}


class Thumbnails:
    """The report's ``images/`` folder: each thumbnail is named by a digest of what it shows, so
    one already there is reused without reading its image, and those no gallery post names any
    more are removed."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.written = 0

    def write(self, session: Session, gallery: _Gallery) -> None:
        present = {entry.name for entry in os.scandir(self.folder) if entry.name.endswith(".jpg")}
        wanted = {name.removeprefix("images/") for name in gallery.sources}
        by_post: dict[int, list[tuple[str, str, int]]] = {}
        for name, (what, post_id, image_id) in gallery.sources.items():
            if name.removeprefix("images/") not in present:
                by_post.setdefault(post_id, []).append((name.removeprefix("images/"), what, image_id))
        for post_id, needed in by_post.items():
            self._write_post(session, post_id, needed)
        for stale in present - wanted:
            (self.folder / stale).unlink(missing_ok=True)

    def _write_post(self, session: Session, post_id: int, needed: list[tuple[str, str, int]]) -> None:
        if any(what != "machine" for _, what, _ in needed):
            original, human = original_and_human(session.get(Post, post_id))
            for name, what, _ in needed:
                if what != "machine":
                    thumbnail(original if what == "original" else human, self.folder, name)
                    self.written += 1
        for name, what, image_id in needed:
            if what == "machine":
                thumbnail(decode(session.scalar(select(Image.data).where(Image.id == image_id))), self.folder, name)
                self.written += 1
        session.expunge_all()  # a post's decoded images are not needed again: keep memory flat


GALLERY_DATA = "gallery-data.js"
GALLERY_SCRIPT = "gallery.js"


def write_gallery(out_dir: Path, gallery: _Gallery, models: list[str]) -> None:
    """The gallery's data and the script that shows it as a sortable, filterable table a page at a time.

    The data is a script, not a JSON file, because a page opened from disk (file://) may not fetch
    files. At 50,000 posts reading that file is most of the page's opening, so it holds two base64
    strings of gzip: the texts as one JSON text, and every metric value as little-endian float32
    (``gallery_values``), which the page views as a Float32Array without parsing a number.
    Links and thumbnail paths are rebuilt by the page: a post carries its Reddit permalink and its
    thumbnails' key, a machine thumbnail its key; dates and keys come as fixed-width columns.
    """
    posts = gallery.posts
    valued = [model for model in models if model in gallery.values]
    texts = {
        "models": models,
        "metrics": [{"name": name, "label": info.label, "better": info.better} for name, info in METRICS.items()],
        "posts": {**{column: posts[column].tolist() for column in ("reddit_id", "title", "permalink")},
                  "created": _fixed_width(posts["created"], DATE_CHARS), "key": _fixed_width(posts["key"], KEY_CHARS)},
        "machines": {model: _fixed_width([_thumbnail_key(name) or "-" * KEY_CHARS for name in gallery.machines[model]],
                                         KEY_CHARS) for model in models if model in gallery.machines},
        "widths": {"created": DATE_CHARS, "key": KEY_CHARS},
        "valued": valued,
    }
    text = json.dumps(texts, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    write_file(out_dir / GALLERY_DATA, f'window.colorbotGallery = {{texts: "{_packed(text)}",\n'
                                       f'  values: "{_packed(gallery_values(gallery, valued))}"}};\n')
    write_file(out_dir / GALLERY_SCRIPT, (resources.files("eval") / "templates" / GALLERY_SCRIPT).read_bytes())


def gallery_values(gallery: _Gallery, models: list[str]) -> bytes:
    """Every model's metrics as little-endian float32, model by model, metric by metric (in the order
    of ``METRICS``), a value per post; NaN where a number is missing or not finite. float32 keeps
    7 significant digits, more than enough to sort by: the page shows 3."""
    columns = [gallery.values[model][name].to_numpy(np.float64) for model in models for name in METRICS]
    values = np.stack(columns) if columns else np.zeros((0, len(gallery.posts)))
    return np.where(np.isfinite(values), values, np.nan).astype("<f4").tobytes()


def _packed(data: bytes) -> str:
    """gzip (no timestamp: the same gallery gives the same file) in base64, which needs no escape in
    a JavaScript string; the page inflates it with the browser's own DecompressionStream."""
    return base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")


DATE_CHARS = len("2024-05-01")


def _fixed_width(texts: list[str] | pd.Series, width: int) -> str:
    """Texts of one width as one string, which the page slices (``-`` × width: none). A column of
    50,000 short strings costs the browser far more to parse than one long string."""
    joined = "".join(texts)
    if len(joined) != width * len(texts):
        raise ValueError(f"gallery texts are not all {width} characters wide")
    return joined


def _thumbnail_key(name: str | None) -> str | None:
    """``images/KEY.jpg`` → ``KEY`` (the page puts the rest back)."""
    return name.removeprefix("images/").removesuffix(".jpg") if name else None


def thumbnail(rgb: np.ndarray, image_dir: Path, name: str) -> str:
    image = PIL.Image.fromarray(rgb)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    write_file(image_dir / name, buffer.getvalue())
    return f"images/{name}"


def reddit_link(permalink: str | None) -> str | None:
    """``https://www.reddit.com`` + the permalink when it is one of Reddit's own, else None."""
    return REDDIT + permalink if permalink and _PERMALINK.fullmatch(permalink) else None


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _rankings(table: pd.DataFrame, metric: str, higher_is_better: bool) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per model other than gray: the ``RANKED`` best and worst posts by ``metric`` (the leaderboard's)."""
    rankings = {}
    measured = table[table["aligned"] & (table["model_name"] != GRAY_MODEL_NAME)].dropna(subset=[metric])
    for model, rows in measured.groupby("model"):
        ordered = rows.sort_values(metric, ascending=not higher_is_better, kind="stable")
        ordered = ordered[["reddit_id", metric]].rename(columns={metric: "value"})
        rankings[str(model)] = {
            "best": ordered.head(RANKED).to_dict("records"),
            "worst": ordered.iloc[::-1].head(RANKED).to_dict("records"),
        }
    return rankings


PLOT_MARGINS = {"left": 0.12, "right": 0.98, "top": 0.96, "bottom": 0.16}
"""Fixed room for the axis labels: constrained layout measured every label anew on every report,
a third of the plots' time (the dates' rotation makes its own room, see ``autofmt_xdate``)."""


def _plot(table: pd.DataFrame, plot_dir: Path) -> dict[str, str]:
    """Distributions of UV error and saturation ratio per model, and UV error over time."""
    measured = table[table["aligned"].astype(bool)]
    plots = {}
    for metric in ("uv_error", "saturation_ratio"):
        figure = Figure(figsize=(6, 3.2))
        axes = figure.subplots(gridspec_kw=PLOT_MARGINS)
        for model, rows in measured.groupby("model"):
            values = rows[metric].dropna()
            if len(values):
                axes.hist(values, bins=20, alpha=0.55, label=f"{model} (n={len(values)})")
        axes.set_xlabel(METRICS[metric].label)
        axes.set_ylabel("colorizations")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
        plots[metric] = _save(figure, plot_dir / f"{metric}.png")
    figure = Figure(figsize=(6, 3.2))
    axes = figure.subplots(gridspec_kw=PLOT_MARGINS)
    for model, rows in measured.groupby("model"):
        by_day = rows.assign(day=pd.to_datetime(rows["created_utc"]).dt.floor("D")).groupby("day")["uv_error"].mean()
        axes.plot(by_day.index, by_day.to_numpy(), marker="o", label=str(model))
    axes.set_ylabel("mean UV error per day")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    figure.autofmt_xdate()
    plots["trend"] = _save(figure, plot_dir / "trend.png")
    return plots


def _save(figure: Figure, path: Path) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_file(path, buffer.getvalue())
    return f"plots/{path.name}"


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def json_ready(value: Any) -> Any:
    """NaN and infinities become null, which JSON can hold."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(value: Any) -> bool:
    """False for NaN, None and a metric a colorization lacks (unstored, or measured before it existed)."""
    if value is None or isinstance(value, jinja2.Undefined):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def _percent(value: Any) -> str:
    return f"{100 * value:.0f} %" if _finite(value) else "–"


def _format(value: Any, digits: int = 3) -> str:
    if not _finite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("eval", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _format
    environment.filters["percent"] = _percent
    environment.filters["attr_number"] = lambda value: repr(float(value)) if _finite(value) else ""
    environment.filters["json_values"] = lambda values: json.dumps(json_ready(values), ensure_ascii=False)
    return environment
