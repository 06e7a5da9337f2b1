"""Settings for colorizing, as read from colorbot.toml's [colorizer] section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ColorizerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model_dir: str | None = Field(None, description="an exported model folder (colorbot export)")
    batch_size: int = Field(8, ge=1, le=256)
