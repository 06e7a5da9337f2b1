"""colorbot's configuration: one TOML file plus ``COLORBOT_*`` environment variables.

An environment variable ``COLORBOT_<SECTION>__<KEY>`` overrides ``[section] key`` of the file
(``COLORBOT_REDDIT__CLIENT_SECRET``, ``COLORBOT_DATABASE__URL``); values are parsed as TOML
values where they can be (``42``, ``true``, ``["a", "b"]``), else taken as strings. Everything is
validated at start, and the first problem is reported with the key that caused it.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.settings import DownloadSettings, RedditSettings, ReplySettings
from colorizer.settings import ColorizerSettings
from eval.settings import EvalSettings

DEFAULT_PATH = Path("colorbot.toml")
ENV_PREFIX = "COLORBOT_"
ENV_CONFIG_PATH = "COLORBOT_CONFIG"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the source."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DatabaseSettings(_Section):
    url: str = "sqlite:///colorbot.db"


class LoggingSettings(_Section):
    level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class PipelineSettings(_Section):
    """How often ``colorbot run`` runs the steps after scraping, and where the report goes."""

    colorize_interval_min: float = Field(5.0, gt=0)
    evaluate_interval_min: float = Field(5.0, gt=0)
    report_interval_h: float = Field(24.0, gt=0)
    report_dir: str = "report"


class Config(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    reddit: RedditSettings = Field(default_factory=RedditSettings)
    download: DownloadSettings = Field(default_factory=DownloadSettings)
    colorizer: ColorizerSettings = Field(default_factory=ColorizerSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    reply: ReplySettings = Field(default_factory=ReplySettings)


def load_config(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration.

    ``path`` None means ``$COLORBOT_CONFIG`` or else ``./colorbot.toml`` if it exists; a path
    given explicitly must exist.
    """
    environ = dict(os.environ if environ is None else environ)
    explicit = path is not None or ENV_CONFIG_PATH in environ
    file = Path(path if path is not None else environ.get(ENV_CONFIG_PATH, DEFAULT_PATH))
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
        except OSError as exc:  # a directory, no permission, an I/O error
            raise ConfigError(f"{file}: cannot read the configuration file: {exc.strerror or exc}") from None
    elif explicit:
        raise ConfigError(f"{file}: no such configuration file")
    source = {key: str(file) for key in _flatten(data)}

    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_PATH:
            continue
        section, sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not sep or not section or not key:
            raise ConfigError(
                f"{name}: not a configuration variable (expected COLORBOT_<SECTION>__<KEY>)"
            )
        if not isinstance(data.setdefault(section, {}), dict):
            raise ConfigError(f"{name}: [{section}] is not a section")
        data[section][key] = _parse_env_value(raw, text=_is_text_setting(section, key))
        source[f"{section}.{key}"] = f"environment variable {name}"

    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise ConfigError(f"{key}: {message} (from {_source_of(key, source)})") from None


def _source_of(key: str, source: dict[str, str]) -> str:
    """Where ``key`` was set: itself, else the nearest enclosing key (``colorizer.models`` for
    ``colorizer.models.0.path``), else a key inside it (an unknown section set only through
    ``COLORBOT_NOSECTION__X``)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        if (where := source.get(".".join(parts[:end]))) is not None:
            return where
    inside = [where for name, where in source.items() if name.startswith(key + ".")]
    return inside[0] if inside else "defaults"


def _is_text_setting(section: str, key: str) -> bool:
    """Whether ``[section] key`` holds text (a name, a URL, a password)."""
    section_field = Config.model_fields.get(section)
    fields = getattr(section_field.annotation, "model_fields", {}) if section_field else {}
    if key not in fields:
        return False
    annotation = fields[key].annotation
    kinds = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) or typing.get_origin(
        annotation) is typing.Union else {annotation}
    return bool(kinds & {str, SecretStr}) and kinds <= {str, SecretStr, type(None)}


def _parse_env_value(raw: str, *, text: bool = False) -> Any:
    """The TOML value of ``raw``, else ``raw`` itself. A text setting keeps ``raw`` verbatim unless
    it is a quoted TOML string, so a password ``12345678`` or a user name ``true`` stays text."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    return raw if text and not isinstance(value, str) else value


def _flatten(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_flatten(value, f"{dotted}."))
    return keys
