"""Text made safe to show: credentials in URLs masked, bidirectional controls neutralised.

It lives in ``db``, the package every other one may import, and needs nothing but ``re``: the
database layer masks the errors it stores, the command line masks every log line, the colorizer
client masks the server URLs it names, and reports and replies neutralise Reddit's titles.
"""

from __future__ import annotations

import re

MASK = "***"

# ``scheme://user:password@host`` and typos of it that drop the colon (``postgresql+psycopg//u:p@h``),
# which URL parsers reject and would otherwise echo whole. The password runs to the last ``@`` of
# the URL, since an unencoded ``@`` in a password is the likeliest typo of all.
_USERINFO = re.compile(
    r"(?P<lead>(?:[A-Za-z][A-Za-z0-9+.\-]*:?)?//)(?P<user>[^\s/:@'\"<>]*):(?P<password>[^\s'\"<>]*)@"
    r"(?=[^\s'\"<>@]*(?:[\s'\"<>]|$))"
)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api_key)=)"
    r"[^&;#\s'\"<>]*",
    re.IGNORECASE,
)
# Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they reorder the text that
# follows them, so a title can show other words than it holds ("Trojan Source").
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def mask_credentials(text: str) -> str:
    """``text`` with the password of every URL in it (and secret query parameters) replaced by ***."""
    if "@" in text:
        text = _USERINFO.sub(lambda match: f"{match['lead']}{match['user']}:{MASK}@", text)
    if "=" in text:
        text = _SECRET_QUERY.sub(lambda match: f"{match['key']}{MASK}", text)
    return text


def neutralise_bidi(text: str) -> str:
    """``text`` without the controls that reorder how it is displayed; right-to-left letters stay."""
    return _BIDI_CONTROLS.sub("", text)
