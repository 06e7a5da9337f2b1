"""Many stored, measured posts in bulk for the report's scale tests and benchmark: rows are
inserted directly (no alignment or measuring), the metrics are random numbers."""

from __future__ import annotations

import hashlib
import io
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import PIL.Image
from sqlalchemy import func, insert, select

from db import make_engine, migrate, session_factory
from db.models import Alignment, Colorization, Image, Metric, Model, Post, PostImage, PostState
from eval.metrics import METRICS

SIDE = (64, 48)
START = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _png(rng: np.random.Generator, colour: bool) -> bytes:
    """A small photo-like image: a smooth gradient plus noise, gray or in colour."""
    width, height = SIDE
    ramp = np.linspace(0, 1, width)[None, :, None] * rng.uniform(60, 200, size=(1, 1, 3 if colour else 1))
    noise = rng.normal(0, 12, size=(height, width, 3 if colour else 1))
    pixels = np.clip(ramp + noise + rng.uniform(20, 60), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.repeat(pixels, 3, axis=2) if not colour else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class SyntheticPosts:
    """Adds posts to a database in bulk; ``pool`` > 0 makes posts share that many image sets."""

    def __init__(self, url: str, pool: int = 0, seed: int = 19):
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        self.pool = pool
        self._pool_ids: list[dict[str, int]] = []
        with self.sessions.begin() as session:
            self.models = {}
            for name, version in (("resenc", "bench"), ("rival", "bench"), ("gray", "baseline")):
                existing = session.scalar(select(Model.id).where(Model.name == name))
                if existing is None:
                    existing = session.scalar(insert(Model).values(name=name, version=version,
                                                                   identity_sha256=name * 4).returning(Model.id))
                self.models[name] = existing
            self.count = session.scalar(select(func.count()).select_from(Post)) or 0
        # Seeded by the posts already stored, so posts added later get images of their own.
        self.rng = np.random.default_rng([seed, self.count])
        self.random = random.Random(seed * 1_000_003 + self.count)

    def _images(self, session, colour_roles: tuple[bool, ...]) -> list[int]:
        rows = []
        for colour in colour_roles:
            data = _png(self.rng, colour)
            rows.append({"sha256": hashlib.sha256(data).hexdigest(), "data": data, "format": "png",
                         "width": SIDE[0], "height": SIDE[1]})
        return list(session.scalars(insert(Image).returning(Image.id), rows))

    def _image_set(self, session, index: int) -> dict[str, int]:
        if self.pool:
            while len(self._pool_ids) < min(self.pool, index + 1):
                original, human, resenc, rival = self._images(session, (False, True, True, True))
                self._pool_ids.append({"original": original, "human": human, "resenc": resenc, "rival": rival})
            return self._pool_ids[index % self.pool]
        original, human, resenc, rival = self._images(session, (False, True, True, index % 2 == 0))
        return {"original": original, "human": human, "resenc": resenc, "rival": rival}

    def add(self, posts: int, batch: int = 2000) -> None:
        for start in range(self.count, self.count + posts, batch):
            with self.sessions.begin() as session:
                self._add_batch(session, range(start, min(start + batch, self.count + posts)))
        self.count += posts

    def _add_batch(self, session, indices: range) -> None:
        post_rows, sets = [], []
        for index in indices:
            reddit_id = f"b{index:06x}"
            post_rows.append({
                "reddit_id": reddit_id, "subreddit": "colorization", "state": PostState.EVALUATED.value,
                "title": f"Old photo #{index} <{self.random.choice(['harbour', 'street', 'family'])}> & \"friends\"",
                "permalink": f"/r/colorization/comments/{reddit_id}/old_photo/",
                "created_utc": START + timedelta(hours=3 * index + self.random.random()),
            })
            sets.append(self._image_set(session, index))
        post_ids = list(session.scalars(insert(Post).returning(Post.id), post_rows))
        session.execute(insert(PostImage), [
            {"post_id": post_id, "image_id": images[role], "role": role_name}
            for post_id, images in zip(post_ids, sets)
            for role, role_name in (("original", "original"), ("human", "colorization"))])
        accepted = [self.random.random() >= 0.1 for _ in post_ids]
        alignment_ids = list(session.scalars(insert(Alignment).returning(Alignment.id), [
            {"post_id": post_id, "accepted": ok, "method": "sift", "reason": None if ok else "too few inliers (3 < 20)"}
            for post_id, ok in zip(post_ids, accepted)]))
        colorizations = []
        for index, post_id, images in zip(indices, post_ids, sets):
            colorizations.append({"post_id": post_id, "model_id": self.models["resenc"], "image_id": images["resenc"]})
            colorizations.append({"post_id": post_id, "model_id": self.models["gray"], "image_id": images["original"]})
            if index % 2 == 0:
                colorizations.append({"post_id": post_id, "model_id": self.models["rival"],
                                      "image_id": images["rival"]})
        colorization_ids = session.execute(insert(Colorization).returning(Colorization.id, Colorization.post_id),
                                           [{**row, "seconds": 0.1} for row in colorizations]).all()
        alignment_of = {post_id: (alignment_id, ok) for post_id, alignment_id, ok in zip(post_ids, alignment_ids, accepted)}
        metrics = []
        for colorization_id, post_id in colorization_ids:
            alignment_id, ok = alignment_of[post_id]
            if not ok:
                continue
            values = self.rng.uniform(0.0, 1.0, size=len(METRICS))
            metrics.extend({"colorization_id": colorization_id, "alignment_id": alignment_id, "name": name,
                            "value": float(value)} for name, value in zip(METRICS, values))
        session.execute(insert(Metric), metrics)
