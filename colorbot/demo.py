"""``colorbot demo``: the whole chain, offline, on made-up posts built from scikit-image's photos.

The colour photos that ship inside scikit-image play the human colorizations; each one's
luminance plays the black-and-white original. As on r/colorization, the "human" version is not
a pixel copy: its hue is shifted, its contrast changed, and it is cropped, rescaled and slightly
rotated, so alignment has real work to do. The posts come as galleries, side-by-side composites
and colorizations whose original the author links in a comment. A Reddit-API replay server on
127.0.0.1 serves them to PRAW; scrape, colorize, evaluate and report then run once, exactly as
``colorbot run --once`` does, into a fresh SQLite file.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageEnhance
import skimage.data
from sqlalchemy.orm import Session, sessionmaker

from bot.replay import ReplayServer, build_snapshot
from bot.settings import DownloadSettings, RedditSettings
from colorbot.config import Config, DatabaseSettings, PipelineSettings
from colorbot.schedule import JobContext, default_jobs, run_once
from colorizer.settings import ColorizerSettings, ModelSpec
from db import make_engine, migrate, session_factory

DEMO_NOTICE = (
    "Demo data: these posts were made up by `colorbot demo` from photos that ship with scikit-image; "
    "the \"human\" colorizations are the real colour photos, hue-edited, cropped and rescaled. "
    "No real Reddit post or colorist is involved."
)

DEMO_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
}


def _encode(image: PIL.Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def human_version(photo: np.ndarray, rng: np.random.Generator) -> PIL.Image.Image:
    """What a colorist might post: other hues, other contrast, another crop and size, a slight tilt."""
    image = PIL.Image.fromarray(photo).convert("RGB")
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(-12, 13))) % 256
    image = PIL.Image.fromarray(hsv, "HSV").convert("RGB")
    image = PIL.ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.85, 1.2)))
    image = image.rotate(float(rng.uniform(-2.5, 2.5)), resample=PIL.Image.Resampling.BICUBIC)
    width, height = image.size
    left, top = (int(rng.uniform(0.04, 0.1) * side) for side in (width, height))
    image = image.crop((left, top, width - left, height - top))
    scale = float(rng.uniform(0.7, 1.3))
    return image.resize((round(image.width * scale), round(image.height * scale)), PIL.Image.Resampling.LANCZOS)


def demo_pairs(seed: int = 0) -> list[tuple[bytes, bytes]]:
    """(black-and-white original, "human" colorization) encoded pairs, one per demo photo."""
    rng = np.random.default_rng(seed)
    pairs = []
    for load in DEMO_PHOTOS.values():
        photo = load()[..., :3]
        original = PIL.Image.fromarray(photo).convert("L")
        pairs.append((_encode(original, "PNG"), _encode(human_version(photo, rng), "JPEG")))
    return pairs


def side_by_side(original: bytes, colorized: bytes) -> bytes:
    """The composite layout: original left, colorization right, same height, a white gutter."""
    left = PIL.Image.open(io.BytesIO(original)).convert("RGB")
    right = PIL.Image.open(io.BytesIO(colorized)).convert("RGB")
    right = right.resize((round(right.width * left.height / right.height), left.height), PIL.Image.Resampling.LANCZOS)
    gutter = 12
    canvas = PIL.Image.new("RGB", (left.width + gutter + right.width, left.height), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gutter, 0))
    return _encode(canvas, "PNG")


def demo_config(folder: Path, server: ReplayServer, models: list[ModelSpec]) -> Config:
    return Config(
        database=DatabaseSettings(url=f"sqlite:///{folder / 'colorbot-demo.db'}"),
        reddit=RedditSettings(**server.reddit_settings(owner="colorbot-demo")),
        download=DownloadSettings(**server.download_settings()),
        colorizer=ColorizerSettings(models=models),
        pipeline=PipelineSettings(report_dir=str(folder / "report")),
    )


def run_demo(folder: Path, models: list[ModelSpec] | None = None, seed: int = 0) -> tuple[Path, dict[str, bool]]:
    """Build the demo posts, run the chain once into ``folder``; returns (report index, job outcomes)."""
    from colorizer.client import open_colorizers

    colorizers = open_colorizers(models or [])  # before anything else: a model that cannot be used stops here
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("colorbot-demo.db*"):
        stale.unlink()  # every demo starts from an empty database
    snapshot = build_snapshot(demo_pairs(seed), layouts=("gallery", "composite", "comment-link"), compose=side_by_side)
    with ReplayServer(snapshot) as server:
        config = demo_config(folder, server, models or [])
        engine = make_engine(config.database.url)
        migrate.upgrade(engine)
        sessions: sessionmaker[Session] = session_factory(engine)
        context = JobContext(config=config, sessions=sessions, stop=threading.Event(),
                             cache={"report_notice": DEMO_NOTICE, "colorizers": colorizers})
        outcomes = run_once(default_jobs(config), context)
    engine.dispose()
    return Path(config.pipeline.report_dir) / "index.html", outcomes
