"""What identifies a model: its name, its version and every setting that changes what it computes.

Two exports of one checkpoint with different chroma scales compute different colorizations, so
they are two models; the database keeps this identity with every model row and refuses a model
configured under a stored name and version whose identity differs (``db.store``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

IDENTITY_SETTINGS = ("weights_sha256", "chroma_scale", "upsampling", "input_size", "backbone")
"""Besides name and version, what the identity holds: every setting that changes a model's output."""


@dataclass(frozen=True)
class ModelIdentity:
    """What the database records about a model. A setting left ``None`` is not known (TensorFlow
    Serving reports no weights hash, for one)."""

    name: str
    version: str
    backbone: str | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)  # a description, not identity
    weights_sha256: str | None = None
    chroma_scale: float | None = None
    upsampling: str | None = None
    input_size: int | None = None

    def __post_init__(self) -> None:
        # 1 and 1.0 scale alike; written alike, they hash alike.
        if self.chroma_scale is not None:
            object.__setattr__(self, "chroma_scale", float(self.chroma_scale))

    def settings(self) -> dict[str, Any]:
        """The output-changing settings, by the names of ``IDENTITY_SETTINGS``."""
        return {key: getattr(self, key) for key in IDENTITY_SETTINGS}

    def settings_digest(self) -> str:
        """SHA-256 of the settings alone (not name or version): equal exactly when the outputs are."""
        canonical = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()
