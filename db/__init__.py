"""colorbot's database: SQLAlchemy models, engine set-up, migrations and small storage helpers.

Knows nothing of Reddit, the network or evaluation: the other packages store through it.
"""

from db.engine import DatabaseURLError, make_engine, reading, session_factory
from db.models import (
    Alignment,
    Base,
    Colorization,
    Image,
    ImageRole,
    JobRun,
    Layout,
    Metric,
    Model,
    OptOut,
    Post,
    PostImage,
    PostState,
    Reply,
    ReplyStatus,
)

__all__ = [
    "Alignment",
    "Base",
    "Colorization",
    "DatabaseURLError",
    "Image",
    "ImageRole",
    "JobRun",
    "Layout",
    "Metric",
    "Model",
    "OptOut",
    "Post",
    "PostImage",
    "PostState",
    "Reply",
    "ReplyStatus",
    "make_engine",
    "reading",
    "session_factory",
]
