"""Read a Reddit post's JSON and decide how it presents its original and its colorization.

This module only reads data: it never fetches anything and never raises on odd input. Reddit's
JSON changes shape over the years (fields go missing, turn ``null``, or change type), so every
field is read defensively and anything unexpected becomes a plan to skip the post with a reason
instead of an exception that would stop a scrape.

The JSON may come from PRAW (which asks for ``raw_json=1``: strings as written, ``[deleted]``
authors turned into ``None``) or from older dumps (HTML-escaped strings, ``"[deleted]"`` authors);
both are read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from db.models import Layout

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MIME_EXTENSIONS = {
    "image/jpg": "jpg",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
}
DELETED = "[deleted]"
REMOVED = "[removed]"
# Reddit's media processing: an item in these states may still become "valid" (seen on galleries
# seconds after posting), so a post carrying one is looked at again later.
PROCESSING_STATUSES = ("unprocessed", "failed")
VIDEO_EXTENSIONS = (".gifv", ".mp4", ".webm", ".mov")
INT_COLUMN_MAX = 2**31 - 1  # score and num_comments go to Integer columns (32-bit on PostgreSQL)
# Never in a real URL; urlsplit drops tabs and newlines silently, so the host it reports could
# differ from the one a downloader would see.
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]|\s")


class MalformedPostError(ValueError):
    """The JSON lacks what identifies a post (its id); it cannot even be stored."""


# -- defensive field readers ------------------------------------------------------------------


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _bool(data: Mapping[str, Any], key: str) -> bool:
    return data.get(key) is True


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    """An int within the range of an Integer column (a score of 10**30 would fail the insert)."""
    value = data.get(key)
    if isinstance(value, bool):
        return default
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        value = int(value)
    if isinstance(value, int):
        return max(-INT_COLUMN_MAX, min(INT_COLUMN_MAX, value))
    return default


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


_REDDIT_ENTITY = re.compile(r"&(amp|lt|gt);")
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")
_ENTITY_TEXT = {"amp": "&", "lt": "<", "gt": ">"}


def unescape_reddit(text: str) -> str:
    """``text`` with Reddit's HTML escaping undone if, and only if, it carries that escaping.

    Without ``raw_json=1`` Reddit writes every ``&``, ``<`` and ``>`` of a string as ``&amp;``,
    ``&lt;`` and ``&gt;``, so an escaped string has no other ``&``. A string with a bare ``&`` is
    raw (PRAW asks for raw JSON) and is left alone: ``html.unescape`` would read the ``&reg`` of
    ``…&region=eu`` as ``®``. Escaped text is unescaped once: ``&amp;amp;`` becomes ``&amp;``.
    """
    if "&" not in text or _BARE_AMPERSAND.search(text):
        return text
    return _REDDIT_ENTITY.sub(lambda match: _ENTITY_TEXT[match.group(1)], text)


def _url(value: Any) -> str | None:
    """An http(s) URL, Reddit's HTML escaping (``&amp;``) undone where it has it, or None."""
    if not isinstance(value, str) or not value:
        return None
    url = unescape_reddit(value).strip()
    if _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


# -- what we store about every post ----------------------------------------------------------


@dataclass(frozen=True)
class PostInfo:
    """The fields of a post kept in the ``posts`` table."""

    reddit_id: str
    subreddit: str
    title: str
    author: str | None
    permalink: str
    url: str
    created_utc: datetime
    score: int
    nsfw: bool
    removed: bool
    num_comments: int


def post_info(data: Mapping[str, Any]) -> PostInfo:
    """The storable fields of a post; raises :class:`MalformedPostError` without an id."""
    if not isinstance(data, Mapping):
        raise MalformedPostError(f"not a post object: {type(data).__name__}")
    reddit_id = _str(data, "id")
    if not reddit_id or not re.fullmatch(r"[0-9a-z]{1,16}", reddit_id):
        raise MalformedPostError(f"post without a valid id: {data.get('id')!r}"[:200])
    created = data.get("created_utc")
    try:
        created_utc = datetime.fromtimestamp(float(created), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        created_utc = datetime.now(timezone.utc)
    author = _str(data, "author")
    subreddit = data.get("subreddit")
    subreddit = subreddit if isinstance(subreddit, str) else str(subreddit or "")
    return PostInfo(
        reddit_id=reddit_id,
        subreddit=subreddit[:64],
        title=_str(data, "title") or "",
        author=None if author in (None, DELETED) else author[:64],  # type: ignore[index]
        permalink=_str(data, "permalink") or "",
        url=_str(data, "url") or "",
        created_utc=created_utc,
        score=_int(data, "score"),
        nsfw=_bool(data, "over_18"),
        removed=removal(data) is not None,
        num_comments=_int(data, "num_comments"),
    )


def removal(data: Mapping[str, Any]) -> str | None:
    """Why a post is gone (deleted by its author, removed by moderators), or None if it is not.

    Reddit shows a post its author deleted as ``author: "[deleted]"`` (``None`` once PRAW has read
    it), ``selftext: "[deleted]"``, often with ``removed_by_category`` still ``null``; a removed
    one as ``selftext: "[removed]"`` and a ``removed_by_category``; both stop being
    ``is_robot_indexable``. An author of ``[deleted]`` alone is a deleted *account*: the post lives.
    """
    category = _str(data, "removed_by_category")
    if category == "deleted":
        return "deleted by its author"
    if category:
        return f"removed ({category})"
    author = data.get("author")
    author_gone = author is None or author == DELETED
    selftext = _str(data, "selftext")
    if selftext == DELETED:
        return "deleted by its author"
    if selftext == REMOVED or _bool(data, "removed"):
        return "removed by the moderators"
    if data.get("is_robot_indexable") is False:
        return "deleted by its author" if author_gone else "removed (no longer indexable)"
    return None


# -- the plan for finding a post's pair --------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """An image a post points at: the URLs to try in order, best copy first."""

    urls: tuple[str, ...]
    media_id: str | None = None


@dataclass(frozen=True)
class PostPlan:
    """What to fetch for a post, or why to skip it.

    ``layout`` is the layout as far as the JSON tells: a post with one image is provisionally
    ``single`` until the image itself is measured (it may be a composite, or have its original
    linked in a comment). ``defer_reason``: the post cannot be decided yet (Reddit is still
    processing its images); look at it again on a later run.
    """

    layout: Layout
    images: tuple[ImageRef, ...] = ()
    skip_reason: str | None = None
    notes: tuple[str, ...] = field(default=())
    defer_reason: str | None = None

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None

    @property
    def deferred(self) -> bool:
        return self.defer_reason is not None


def plan_post(
    data: Any,
    *,
    allow_nsfw: bool = False,
    media_url: str = "https://i.redd.it",
    max_gallery_images: int = 6,
    decide_unprocessed: bool = False,
) -> PostPlan:
    """Decide how to find this post's pair. Never raises: odd JSON gives a skip with a reason.

    A post whose images Reddit is still processing is deferred (``plan.deferred``) unless
    ``decide_unprocessed`` (the last look at it): then only its final images count.
    """
    try:
        return _plan(data, allow_nsfw, media_url.rstrip("/"), max_gallery_images, decide_unprocessed)
    except Exception as exc:  # noqa: BLE001 - the contract is "never crash a scrape"
        return PostPlan(Layout.UNKNOWN, skip_reason=f"unreadable post JSON: {type(exc).__name__}")


def _plan(data: Any, allow_nsfw: bool, media_url: str, max_gallery: int, decide_unprocessed: bool) -> PostPlan:
    if not isinstance(data, Mapping):
        return PostPlan(Layout.UNKNOWN, skip_reason=f"not a post object: {type(data).__name__}")
    gone = removal(data)
    if gone:
        return PostPlan(Layout.UNKNOWN, skip_reason=gone)
    parents = _list(data, "crosspost_parent_list")
    parent = _str(data, "crosspost_parent")
    if parents or parent:
        first = parents[0] if parents and isinstance(parents[0], Mapping) else {}
        where = _str(first, "subreddit_name_prefixed") or _str(first, "subreddit") or "?"
        name = parent or (f"t3_{_str(first, 'id')}" if _str(first, "id") else "?")
        return PostPlan(Layout.UNKNOWN, skip_reason=f"crosspost of {name} from {where}")
    if _bool(data, "over_18") and not allow_nsfw:
        return PostPlan(Layout.UNKNOWN, skip_reason="NSFW post (reddit.allow_nsfw is off)")
    video = _video(data)
    if video:
        return PostPlan(Layout.UNKNOWN, skip_reason=video)
    metadata = _dict(data, "media_metadata")
    if _bool(data, "is_gallery") or _dict(data, "gallery_data"):
        items = _list(_dict(data, "gallery_data"), "items")
        return _plan_media("gallery", items, metadata, media_url, max_gallery, decide_unprocessed)
    inline = _inline_media_ids(data, metadata) if _bool(data, "is_self") else []
    if inline:
        items = [{"media_id": media_id} for media_id in inline]
        return _plan_media("text post", items, metadata, media_url, max_gallery, decide_unprocessed)
    ref = _single_image(data)
    if ref is not None:
        return PostPlan(Layout.SINGLE, images=(ref,))
    url = _str(data, "url") or ""
    if _bool(data, "is_self"):
        return PostPlan(Layout.UNKNOWN, skip_reason="text post without an image")
    return PostPlan(Layout.UNKNOWN, skip_reason=f"link is not an image: {url[:200]!r}")


def _video(data: Mapping[str, Any]) -> str | None:
    """Why the post is a video ("video post ..."), or None."""
    hint = _str(data, "post_hint") or ""
    domain = _str(data, "domain") or ""
    if (
        _bool(data, "is_video")
        or hint in ("hosted:video", "rich:video")
        or domain in ("v.redd.it", "youtube.com", "youtu.be")
    ):
        return "video post"
    for key in ("url_overridden_by_dest", "url"):
        url = _url(data.get(key))
        extension = _path_extension(url) if url else ""
        if extension in VIDEO_EXTENSIONS:
            return f"video post (a {extension} link is a video)"
    return None


def _path_extension(url: str) -> str:
    """The extension of ``url``'s last path segment, lower case; ``url`` has passed :func:`_url`, so
    ``urlsplit`` cannot fail on it here."""
    path = urlsplit(url).path.lower()
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind(".") :] if "." in name else ""


def _inline_media_ids(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """The media ids a text post's selftext links (``https://preview.redd.it/<id>.png?…``), in
    the order it links them; images of ``media_metadata`` the text does not link are left out."""
    selftext = _str(data, "selftext") or ""
    found: list[tuple[int, str]] = []
    for media_id in metadata:
        if not isinstance(media_id, str) or not re.fullmatch(r"[0-9A-Za-z]+", media_id):
            continue
        match = re.search(rf"(?<![0-9A-Za-z]){media_id}(?![0-9A-Za-z])", selftext)
        if match:
            found.append((match.start(), media_id))
    return [media_id for _start, media_id in sorted(found)]


def _item_status(metadata: Mapping[str, Any], item: Any) -> str | None:
    media_id = item.get("media_id") if isinstance(item, Mapping) else None
    return _str(_dict(metadata, media_id), "status") if isinstance(media_id, str) else None


def _plan_media(
    what: str,
    items: list[Any],
    metadata: Mapping[str, Any],
    media_url: str,
    max_gallery: int,
    decide_unprocessed: bool,
) -> PostPlan:
    """The plan for a post's ``media_metadata`` images, ``items`` (``{media_id: …}``) in display
    order; ``what`` names the post in reasons ("gallery", "text post")."""
    statuses = [_item_status(metadata, item) for item in items]
    processing = [
        f"item {position} {status!r}" for position, status in enumerate(statuses) if status in PROCESSING_STATUSES
    ]
    if processing and not decide_unprocessed:
        return PostPlan(
            Layout.GALLERY, defer_reason=f"{what}: images still processing on Reddit ({', '.join(processing[:3])})"
        )
    refs: list[ImageRef] = []
    notes: list[str] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            notes.append(f"item {position}: not an object")
            continue
        media_id = _str(item, "media_id")
        meta = _dict(metadata, media_id) if media_id else {}
        if not media_id or not meta:
            notes.append(f"item {position}: no media metadata")
            continue
        if _str(meta, "status") != "valid":
            notes.append(f"item {position}: status {meta.get('status')!r}")
            continue
        if _str(meta, "e") != "Image":
            notes.append(f"item {position}: {meta.get('e')!r}, not a still image")
            continue
        urls: list[str] = []
        ext = MIME_EXTENSIONS.get((_str(meta, "m") or "").lower())
        if ext and re.fullmatch(r"[0-9A-Za-z]+", media_id):
            urls.append(f"{media_url}/{media_id}.{ext}")
        source = _url(_dict(meta, "s").get("u"))
        if source:
            urls.append(source)
        if not urls:
            notes.append(f"item {position}: no usable URL")
            continue
        refs.append(ImageRef(urls=tuple(urls), media_id=media_id))
        if len(refs) >= max_gallery:
            break
    if not refs:
        why = "; ".join(notes[:3]) or "no items"
        return PostPlan(Layout.GALLERY, skip_reason=f"{what} without a usable image ({why})")
    if len(refs) == 1:
        # One image is a single image post in disguise (possibly a composite).
        return PostPlan(Layout.SINGLE, images=tuple(refs), notes=tuple(notes))
    return PostPlan(Layout.GALLERY, images=tuple(refs), notes=tuple(notes))


def _single_image(data: Mapping[str, Any]) -> ImageRef | None:
    urls: list[str] = []
    for key in ("url_overridden_by_dest", "url"):
        url = _url(data.get(key))
        if url and (image_url := normalize_image_url(url)) and image_url not in urls:
            urls.append(image_url)
    hint = _str(data, "post_hint")
    preview = _list(_dict(data, "preview"), "images")
    if preview and isinstance(preview[0], Mapping):
        source = _url(_dict(preview[0], "source").get("url"))
        if source and source not in urls and (urls or hint == "image"):
            urls.append(source)
    return ImageRef(urls=tuple(urls)) if urls else None


def normalize_image_url(url: str) -> str | None:
    """The direct image URL for a link, or None if it is not a link to one image.

    ``https://imgur.com/abc`` (an Imgur page for one image) and ``http://i.imgur.com/abc`` (Imgur's
    direct link without an extension) become ``https://i.imgur.com/abc.jpg`` (Imgur serves any
    format under ``.jpg``); ``i.reddituploads.com/<hash>?…`` (Reddit's image host of 2016–2017)
    is an image as it is, its signed query kept; albums and other pages give None.
    """
    if _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    path = parts.path
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return url
    if host in ("imgur.com", "www.imgur.com", "m.imgur.com", "i.imgur.com"):
        match = re.fullmatch(r"/([0-9A-Za-z]{5,10})", path)
        if match:
            return f"https://i.imgur.com/{match.group(1)}.jpg"
    if host == "i.reddituploads.com" and re.fullmatch(r"/[0-9A-Za-z]{16,64}", path):
        return url
    return None


# -- comment links ------------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_ORIGINAL_RE = re.compile(
    r"\b(original|source|before|b\s*&\s*w|b\s*/\s*w|black[\s-]*(and|&)[\s-]*white|uncolou?ri[sz]ed)",
    re.IGNORECASE,
)


def find_original_link(comments: Iterable[Mapping[str, Any]], author: str | None) -> str | None:
    """The original's URL as linked by the post's author in a comment ("original: …"), or None.

    Only the author's own comments count; a stranger's link may be any photo. The first link
    after a word like "original" wins; a comment with one link and such a word anywhere counts too.
    The word counts in the comment's text and a Markdown link's text, never inside a URL
    (``…/original_colorized.png`` says nothing about what the image is).
    """
    if not author or author == DELETED:
        return None
    for comment in comments:
        if not isinstance(comment, Mapping) or comment.get("author") != author:
            continue
        body = comment.get("body")
        if not isinstance(body, str):
            continue
        body = unescape_reddit(body)
        words = _URL_RE.sub(lambda match: " " * len(match.group()), body)
        keyword = _ORIGINAL_RE.search(words)
        if not keyword:
            continue
        after = _URL_RE.findall(body[keyword.start() :]) or _URL_RE.findall(body)
        for raw in after:
            url = normalize_image_url(raw.rstrip(".,;:!?*_"))
            if url:
                return url
    return None
