"""Posts stored in the database as the scrape and colorize jobs leave them."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from colorizer.images import examine
from db.models import Colorization, ImageRole, Post, PostImage, PostState
from db.store import get_or_create_model, store_image
from eval.evaluate import GRAY_MODEL_NAME, GRAY_MODEL_VERSION

from .images import png

CREATED = datetime(2024, 5, 1, tzinfo=timezone.utc)


def add_encoded_post(session, reddit_id: str, original: bytes, human: bytes) -> int:
    """A colorized post whose original and human colorization are these files, as downloaded, with
    the gray baseline's colorization (the original's own image, as the colorize step stores it)."""
    post = Post(reddit_id=reddit_id, subreddit="colorization", created_utc=CREATED)
    post.state = PostState.COLORIZED.value
    session.add(post)
    session.flush()
    images = {role: store_image(session, examine(data)).id
              for role, data in ((ImageRole.ORIGINAL, original), (ImageRole.COLORIZATION, human))}
    for role, image_id in images.items():
        session.add(PostImage(post_id=post.id, image_id=image_id, role=role.value))
    gray = get_or_create_model(session, name=GRAY_MODEL_NAME, version=GRAY_MODEL_VERSION, backbone="none")
    session.add(Colorization(post_id=post.id, model_id=gray.id, image_id=images[ImageRole.ORIGINAL], seconds=0.0))
    return post.id


def add_post(session, reddit_id: str, original: np.ndarray, human: np.ndarray, machine: np.ndarray | None,
             model_name: str = "resenc") -> int:
    """A colorized post with its original, its human colorization and (optionally) ``model_name``'s."""
    post_id = add_encoded_post(session, reddit_id, png(original), png(human))
    if machine is not None:
        model = get_or_create_model(session, name=model_name, version="test")
        image = store_image(session, examine(png(machine)))
        session.add(Colorization(post_id=post_id, model_id=model.id, image_id=image.id, seconds=1.5))
    return post_id
