"""Test-only plumbing: let PRAW's media uploads reach a plain-HTTP server on loopback.

PRAW builds the upload URL of an image post as ``"https:" + lease["action"]``. Reddit's own
endpoints are HTTPS, but the replay server (:mod:`bot.replay`) speaks plain HTTP on 127.0.0.1, so
:class:`LoopbackRequestor` rewrites ``https://<loopback>`` to ``http://<loopback>``. It is used only
when the configured Reddit endpoints are themselves loopback (see :func:`bot.client.make_reddit`);
a request to any other host is passed on unchanged.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from prawcore import Requestor

LOOPBACK_NAMES = {"localhost"}


def is_loopback_url(url: str | None) -> bool:
    """True if ``url`` names a loopback host (127.0.0.0/8, ::1 or localhost)."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackRequestor(Requestor):
    """A prawcore requestor sending ``https://`` requests for loopback hosts over plain HTTP."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) >= 2 and isinstance(args[1], str) and args[1].startswith("https://") and is_loopback_url(args[1]):
            args = (args[0], "http://" + args[1][len("https://") :], *args[2:])
        return super().request(*args, **kwargs)
