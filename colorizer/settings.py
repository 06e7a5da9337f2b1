"""Settings for colorizing, as read from colorbot.toml's [colorizer] section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelSpec(_Section):
    """One model taking part in the benchmark: an exported folder here, or a served one."""

    name: str = Field(min_length=1, max_length=64)
    path: str | None = Field(None, description="an exported model folder (colorbot export)")
    url: str | None = Field(None, description="a TensorFlow Serving REST endpoint, e.g. http://host:8501")
    version: str | None = Field(
        None, description="for url: the version to use; predict calls are pinned to it [default: the newest served]"
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        return self


class ColorizerSettings(_Section):
    models: list[ModelSpec] = Field(
        default_factory=list,
        description="every model colorizes every post; empty means the default model that ships with colorbot",
    )
    batch_size: int = Field(8, ge=1, le=256)

    @model_validator(mode="after")
    def _unique_names(self) -> ColorizerSettings:
        names = [model.name for model in self.models]
        if len(names) != len(set(names)):
            raise ValueError(f"model names must be unique: {names}")
        return self
