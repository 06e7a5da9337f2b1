"""The database schema: SQLAlchemy 2 typed declarative models.

The database is the product's data: every post seen, every image fetched or produced, every
measurement. Uniqueness constraints carry the "never twice" guarantees, so a rerun after a crash
can insert-or-skip instead of remembering what it already did.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from db.safe_text import mask_credentials

# Named constraints make Alembic migrations reproducible on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _masked(_self: Any, _key: str, value: str | None) -> str | None:
    """Stored errors quote URLs (a model server's, a database's); none may keep its password."""
    return None if value is None else mask_credentials(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class PostState(str, enum.Enum):
    """Where a post is in the pipeline; each step picks up the posts left in the state before it."""

    NEW = "new"
    FETCHED = "fetched"
    COLORIZED = "colorized"
    EVALUATED = "evaluated"
    REPLIED = "replied"
    SKIPPED = "skipped"


class Layout(str, enum.Enum):
    """How a post presents its black-and-white original and its human colorization."""

    GALLERY = "gallery"
    COMPOSITE = "composite"
    COMMENT_LINK = "comment-link"
    SINGLE = "single"
    UNKNOWN = "unknown"


class PostSource(str, enum.Enum):
    """Where a post was first read: Reddit's API (the scraper) or a dump file (``colorbot import``)."""

    REDDIT = "reddit"
    DUMP = "dump"


class ImageRole(str, enum.Enum):
    ORIGINAL = "original"
    COLORIZATION = "colorization"
    COMPOSITE = "composite"


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    reddit_id: Mapped[str] = mapped_column(String(16), unique=True)
    subreddit: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(64))
    permalink: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    created_utc: Mapped[datetime]
    score: Mapped[int] = mapped_column(Integer, default=0)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    layout: Mapped[str] = mapped_column(String(16), default=Layout.UNKNOWN.value)
    state: Mapped[str] = mapped_column(String(16), default=PostState.NEW.value, index=True)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Imported posts are history: never replied to (bot.reply), however the age limit is set.
    source: Mapped[str] = mapped_column(String(16), default=PostSource.REDDIT.value,
                                        server_default=PostSource.REDDIT.value)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A worker's lease on the post while it works a step on it (db.claims); an expired one is free.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]

    images: Mapped[list[PostImage]] = relationship(back_populates="post")
    colorizations: Mapped[list[Colorization]] = relationship(back_populates="post")

    _mask_errors = validates("skip_reason", "last_error")(_masked)

    def __repr__(self) -> str:
        return f"Post(reddit_id={self.reddit_id!r}, state={self.state!r}, layout={self.layout!r})"


class PostComment(Base):
    """A comment by a post's own author, kept from a dump file (``colorbot import --comments``).

    The fetch step reads these before asking Reddit, so an original linked in a comment deleted
    since (or beyond what the API lists) is still found.
    """

    __tablename__ = "post_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    reddit_id: Mapped[str] = mapped_column(String(16), unique=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    created_utc: Mapped[datetime]


class Image(Base):
    """An encoded image, stored once per distinct content (SHA-256 of its bytes)."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Image(sha256={self.sha256[:12]!r}, {self.format} {self.width}x{self.height})"


class PostImage(Base):
    """Which stored image plays which role for a post, and where it came from."""

    __tablename__ = "post_images"
    __table_args__ = (UniqueConstraint("post_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    source_url: Mapped[str] = mapped_column(Text, default="")

    post: Mapped[Post] = relationship(back_populates="images")
    image: Mapped[Image] = relationship()


class Model(Base):
    """A colorization model taking part in the benchmark (the "gray" baseline is one too).

    ``identity`` is what it computes: name, version, weights SHA-256 and every setting that changes
    its output (null where unknown); ``identity_sha256`` hashes it (``db.store.identity_sha256``).
    One name and version never stands for two identities (``db.store.get_or_create_model``).
    """

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    backbone: Mapped[str] = mapped_column(String(64), default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    identity: Mapped[dict[str, Any]] = mapped_column(default=dict)
    identity_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version!r})"


class Colorization(Base):
    """One model's colorization of one post's black-and-white original."""

    __tablename__ = "colorizations"
    __table_args__ = (UniqueConstraint("post_id", "model_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post] = relationship(back_populates="colorizations")
    model: Mapped[Model] = relationship()
    image: Mapped[Image] = relationship()
    metrics: Mapped[list[Metric]] = relationship(back_populates="colorization")


class Alignment(Base):
    """How a post's human colorization was registered onto its original, or why it was refused.

    Stored once per post: every model's colorization of that post is measured over the same
    aligned area.
    """

    __tablename__ = "alignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), unique=True
    )
    accepted: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(32), default="")
    transform: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    inliers: Mapped[int | None] = mapped_column(Integer)
    inlier_ratio: Mapped[float | None] = mapped_column(Float)
    median_residual: Mapped[float | None] = mapped_column(Float)
    overlap: Mapped[float | None] = mapped_column(Float)
    correlation: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Metric(Base):
    """One measurement of a colorization against the aligned human colorization."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("colorization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    colorization_id: Mapped[int] = mapped_column(
        ForeignKey("colorizations.id", ondelete="CASCADE"), index=True
    )
    alignment_id: Mapped[int | None] = mapped_column(ForeignKey("alignments.id"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    colorization: Mapped[Colorization] = relationship(back_populates="metrics")


class ReplyStatus(str, enum.Enum):
    DRY_RUN = "dry-run"
    PENDING = "pending"  # recorded before posting: a crash here must never lead to a second comment
    POSTED = "posted"
    FAILED = "failed"
    SKIPPED = "skipped"


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    comment_id: Mapped[str | None] = mapped_column(String(16))
    image_post_id: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None]
    # The replier posting it now, until when: only the taker of a pending row posts (bot.reply).
    taken_by: Mapped[str | None] = mapped_column(String(64))
    taken_until: Mapped[datetime | None]

    _mask_reason = validates("reason")(_masked)


class OptOut(Base):
    """An author who asked, by replying the opt-out word to one of the bot's comments, never to be replied to.

    ``username`` is stored lower-case (Reddit names are case-insensitive), once per user.
    """

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    comment_id: Mapped[str | None] = mapped_column(String(16))  # the reply that said the word
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)  # when that reply was written

    @validates("username")
    def _lower(self, _key: str, value: str) -> str:
        return value.lower()

    def __repr__(self) -> str:
        return f"OptOut({self.username!r}, comment_id={self.comment_id!r})"


class JobRun(Base):
    """One run of a scheduled (or one-off) job."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    items: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    # Which process ran it, for people reading the table: a pid means nothing in another machine's
    # or container's PID namespace, so liveness is the heartbeat (db.store.job_run).
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None]

    _mask_error = validates("error")(_masked)
