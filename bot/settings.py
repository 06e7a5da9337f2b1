"""Settings for talking to Reddit and for downloading images, as read from colorbot.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class RedditSettings(_Section):
    """How to reach Reddit. Secrets belong in environment variables or a praw.ini site.

    ``site`` names a section of PRAW's own praw.ini; values set here override it.
    """

    site: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    user_agent: str | None = Field(
        None, description="full user agent; default <platform>:<app_id>:<version> (by u/<owner>)"
    )
    app_id: str = "colorbot"
    owner: str | None = Field(
        None, description="Reddit account answering for this bot, named in the user agent"
    )
    oauth_url: str | None = None
    reddit_url: str | None = None
    media_url: str = Field(
        "https://i.redd.it", description="where gallery originals live: <media_url>/<media_id>.<ext>"
    )
    timeout_s: float = Field(16.0, gt=0, description="seconds PRAW waits for Reddit's API")
    subreddits: list[str] = Field(default_factory=lambda: ["colorization"])
    listing: str = Field("new", pattern="^(new|hot|top|rising)$")
    time_filter: str = Field("all", pattern="^(all|day|hour|month|week|year)$")
    limit: int = Field(100, ge=1, le=10_000)
    allow_nsfw: bool = False
    scrape_interval_min: float = Field(15.0, gt=0, description="how often `colorbot run` scrapes")
    refresh_days: float = Field(
        3.0, ge=0, description="refresh score/removal of stored posts younger than this"
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="fetch attempts per post before it is skipped"
    )
    max_gallery_images: int = Field(6, ge=2, le=50, description="gallery images examined per post")
    comment_expansions: int = Field(
        8, ge=0, le=100,
        description="'load more comments' stubs expanded per post looking for a linked original (a request each)",
    )


class DownloadSettings(_Section):
    """Limits on fetching images from the URLs that posts carry."""

    allowed_hosts: list[str] = Field(
        default_factory=lambda: [
            "i.redd.it",
            "preview.redd.it",
            "external-preview.redd.it",
            "i.imgur.com",
            "imgur.com",
            "i.reddituploads.com",
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
    backoff_s: float = Field(1.0, ge=0, description="first retry delay, doubled on each retry")
    max_retry_after_s: float = Field(
        120.0, ge=0, description="longest Retry-After honoured; longer waits defer to the next run"
    )
    max_redirects: int = Field(5, ge=0, le=20)


REPLY_TEMPLATE_FIELDS = ("link", "model", "version", "metrics", "title", "author", "subreddit", "opt_out_word")

DEFAULT_REPLY_TEMPLATE = (
    "Here is **{title}** colorized automatically by {model} {version}: {link}\n\n"
    "{metrics}, measured against the human colorization.\n\n"
    "^(I am a bot: this is an automatic colorization. Reply \"{opt_out_word}\" and I will not "
    "reply to your posts again.)"
)


class ReplySettings(_Section):
    """Optional replies under evaluated posts (off unless ``enabled``; dry-run unless ``dry_run = false``)."""

    enabled: bool = False
    dry_run: bool = Field(True, description="record what would be posted (replies table and log), post nothing")
    interval_min: float = Field(30.0, gt=0, description="how often `colorbot run` replies")
    model: str = Field("residual-encoder", min_length=1, description="name of the model whose colorization is posted")
    subreddits: list[str] = Field(default_factory=lambda: ["colorization"], description="allow-list")
    max_age_h: float = Field(24.0, gt=0, description="posts older than this are skipped")
    allow_nsfw: bool = False
    max_per_hour: int = Field(4, ge=0, le=1000, description="replies per rolling hour")
    opt_out_word: str = Field("!nocolorbot", min_length=2, max_length=40, pattern=r"^\S+$")
    opted_out_users: list[str] = Field(default_factory=list, description="never reply to these authors")
    metrics: list[str] = Field(default_factory=lambda: ["delta_e_2000", "psnr", "ssim"])
    template: str = Field(DEFAULT_REPLY_TEMPLATE, min_length=1, max_length=5000)

    @field_validator("template")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        import string

        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        for _text, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in REPLY_TEMPLATE_FIELDS or spec or conversion:
                raise ValueError(
                    f"unknown placeholder {{{name}}}; use {', '.join('{' + f + '}' for f in REPLY_TEMPLATE_FIELDS)}"
                )
        return value
