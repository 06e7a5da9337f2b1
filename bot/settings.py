"""Settings for talking to Reddit and for downloading images, as read from colorbot.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RedditSettings(_Section):
    """How to reach Reddit. Secrets belong in environment variables or a praw.ini site.

    ``site`` names a section of PRAW's own praw.ini; values set here override it.
    """

    site: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    user_agent: str | None = None
    app_id: str = "colorbot"
    oauth_url: str | None = None
    reddit_url: str | None = None
    subreddits: list[str] = Field(default_factory=lambda: ["colorization"])
    listing: str = Field("new", pattern="^(new|hot|top|rising)$")
    time_filter: str = Field("all", pattern="^(all|day|hour|month|week|year)$")
    limit: int = Field(100, ge=1, le=10_000)
    allow_nsfw: bool = False


class DownloadSettings(_Section):
    """Limits on fetching images from the URLs that posts carry."""

    allowed_hosts: list[str] = Field(
        default_factory=lambda: [
            "i.redd.it",
            "preview.redd.it",
            "external-preview.redd.it",
            "i.imgur.com",
            "imgur.com",
        ]
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDR ranges that may be fetched although private or loopback (tests use 127.0.0.1/32)",
    )
    max_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_pixels: int = Field(80_000_000, gt=0)
    timeout_s: float = Field(20.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
