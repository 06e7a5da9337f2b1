"""Build the PRAW client from colorbot's Reddit settings.

Reddit identifies API users by their user agent and asks for the form
``<platform>:<app id>:<version> (by u/<username>)``; a vague one gets throttled. Without a
username and password the client is read-only (OAuth ``client_credentials``), which is all
scraping needs.
"""

from __future__ import annotations

import logging
from importlib import metadata

import praw

from bot.loopback import LoopbackRequestor, is_loopback_url
from bot.settings import RedditSettings

log = logging.getLogger(__name__)

PLATFORM = "python"


def _version() -> str:
    try:
        return metadata.version("colorbot")
    except metadata.PackageNotFoundError:  # running from a bare checkout
        return "0.0.0"


def user_agent(settings: RedditSettings) -> str:
    """The user agent Reddit asks for, unless the settings give one verbatim.

    It names ``reddit.owner`` only, never the login name: the agent also goes to image hosts and
    into the log, and the login is a credential.
    """
    if settings.user_agent:
        return settings.user_agent
    return f"{PLATFORM}:{settings.app_id}:{_version()} (by u/{settings.owner or 'unknown'})"


def make_reddit(settings: RedditSettings) -> praw.Reddit:
    """A PRAW ``Reddit`` for these settings, read-only when no username/password are set.

    Values left unset fall through to the praw.ini site named by ``settings.site``; the
    endpoints are passed as keyword arguments (PRAW warns about them only in praw.ini).
    """
    kwargs: dict[str, object] = {
        "user_agent": user_agent(settings),
        "check_for_updates": False,
        "check_for_async": False,
    }
    if settings.client_id:
        kwargs["client_id"] = settings.client_id
    if settings.client_secret is not None:
        kwargs["client_secret"] = settings.client_secret.get_secret_value()
    logged_in = bool(settings.username and settings.password is not None)
    if logged_in:
        kwargs["username"] = settings.username
        kwargs["password"] = settings.password.get_secret_value()  # type: ignore[union-attr]
    if settings.oauth_url:
        kwargs["oauth_url"] = settings.oauth_url.rstrip("/")
    if settings.reddit_url:
        kwargs["reddit_url"] = settings.reddit_url.rstrip("/")
    if is_loopback_url(settings.oauth_url) and is_loopback_url(settings.reddit_url):
        kwargs["requestor_class"] = LoopbackRequestor  # test plumbing: media uploads over plain HTTP
    reddit = praw.Reddit(
        settings.site,
        requestor_kwargs={"timeout": settings.timeout_s},
        **kwargs,
    )
    if not logged_in:
        reddit.read_only = True
    log.debug("reddit client: %s, read_only=%s", kwargs["user_agent"], reddit.read_only)
    return reddit
