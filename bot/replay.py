"""A stand-in for Reddit's API on 127.0.0.1, for the tests, the demo and the benchmark.

It answers what colorbot's scrape asks of Reddit, in the exact shapes Reddit uses (``Listing``
of ``t3``/``t1`` things, gallery ``media_metadata``, ``crosspost_parent_list``, deleted and
removed posts as :func:`as_deleted` / :func:`as_removed` make them):

* ``POST /api/v1/access_token`` (HTTP Basic client credentials, any grant type);
* ``GET /r/{subreddit}/{new,hot,top,rising}`` with ``limit`` (at most 100 a page) and ``after``;
* ``GET /comments/{id}``: the post and its comment tree, cut as Reddit cuts a busy thread when
  :attr:`ReplayServer.comment_limit` / :attr:`ReplayServer.comment_depth` are set: "load more
  comments" (``kind: more`` with ``children``) and "continue this thread" (``count: 0``) stubs,
  expanded by ``POST /api/morechildren`` and ``GET /comments/{id}/_/{comment_id}``;
* ``GET /api/info?id=t3_…,t3_…``;
* ``GET /i/{name}`` and ``/preview/{name}``: the images;
* for replies (:mod:`bot.reply`): the password grant, ``GET /api/v1/me``, the media upload lease
  ``POST /api/media/asset.json`` (its upload action points back at this server), the S3-style
  ``POST /upload``, ``POST /api/submit`` (an image post, announced over a one-message WebSocket at
  ``/ws/{key}`` as Reddit does), ``POST /api/comment`` and ``GET /message/comments`` (the logged-in
  account's inbox of replies to its comments, added with :meth:`ReplayServer.add_inbox_reply`; a
  client-credentials token gets 403 there, as on Reddit). What is posted is kept in
  :attr:`ReplayServer.posted_comments` / :attr:`ReplayServer.submitted`; :meth:`ReplayServer.hold`
  makes the server record a request and then hold its answer (to kill a client mid-request).

Posts, comments and images come from a snapshot directory (``posts.json`` plus ``images/``, see
:func:`write_snapshot`) or are given in memory. Any string ``{base}`` in the post JSON is replaced
by the server's own URL when served, so a snapshot works on whatever port the server gets.

A :class:`FaultPlan` makes chosen requests fail the way real servers do: 429 with
``Retry-After``, 500, 503, slow answers, truncated images, HTML where an image should be, a PNG
declaring billions of pixels, redirects to other (forbidden) addresses; or answer the way some
CDNs do, correctly but awkwardly: ``gzip`` serves the image with ``Content-Encoding: gzip`` (its
``Content-Length`` the encoded size). :func:`corrupt_exif_jpeg` makes an image that downloads
fine but whose EXIF block Pillow cannot apply.

Usage::

    with ReplayServer.from_snapshot(path) as server:
        server.faults.add(Fault("503", path="/r/colorization/new", times=3))
        reddit_settings = server.reddit_settings()   # oauth_url, reddit_url, media_url, ...
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import gzip
import hashlib
import io
import json
import logging
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import PIL.Image

log = logging.getLogger(__name__)

PAGE_CAP = 100  # Reddit never returns more than 100 things a page
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
}
FAULT_KINDS = ("429", "500", "503", "slow", "truncate", "html", "bomb", "redirect", "drop", "ratelimit", "gzip")
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- faults -----------------------------------------------------------------------------------


@dataclass
class Fault:
    """One way to fail, for requests whose path starts with ``path`` (any request if empty) and
    whose query string contains ``query`` (``"after="``: every listing page but the first).

    ``times``: how many matching requests it hits before it is used up (None: all of them).
    """

    kind: str
    path: str = ""
    query: str = ""
    times: int | None = 1
    retry_after: float = 1.0
    delay_s: float = 2.0
    location: str = "http://169.254.169.254/latest/meta-data/"
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


class FaultPlan:
    """The faults still to inject, first match wins; safe to change while the server runs."""

    def __init__(self, faults: Iterable[Fault] = ()):
        self._faults = list(faults)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str, query: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path) and fault.query in query:
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)


# -- Reddit-shaped things ---------------------------------------------------------------------


def t3(
    post_id: str,
    *,
    title: str = "Untitled, 1950",
    author: str | None = "colorist",
    subreddit: str = "colorization",
    created_utc: float = 1_700_000_000.0,
    score: int = 1,
    num_comments: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A submission's ``data`` as Reddit sends it (the fields colorbot and PRAW look at)."""
    permalink = f"/r/{subreddit}/comments/{post_id}/{re.sub(r'[^a-z0-9]+', '_', title.lower())[:40]}/"
    data: dict[str, Any] = {
        "approved_at_utc": None,
        "subreddit": subreddit,
        "selftext": "",
        "author_fullname": f"t2_{(author or 'x')[:8].lower()}" if author else None,
        "saved": False,
        "gilded": 0,
        "clicked": False,
        "title": title,
        "subreddit_name_prefixed": f"r/{subreddit}",
        "hidden": False,
        "downs": 0,
        "name": f"t3_{post_id}",
        "hide_score": False,
        "quarantine": False,
        "upvote_ratio": 1.0,
        "ups": score,
        "domain": "self." + subreddit,
        "media_embed": {},
        "is_original_content": False,
        "secure_media": None,
        "is_reddit_media_domain": False,
        "is_meta": False,
        "category": None,
        "secure_media_embed": {},
        "score": score,
        "approved_by": None,
        "thumbnail": "self",
        "edited": False,
        "gildings": {},
        "content_categories": None,
        "is_self": True,
        "subreddit_type": "public",
        "created": created_utc,
        "link_flair_type": "text",
        "removed_by_category": None,
        "banned_by": None,
        "author_flair_type": "text",
        "total_awards_received": 0,
        "allow_live_comments": False,
        "selftext_html": None,
        "likes": None,
        "suggested_sort": None,
        "banned_at_utc": None,
        "view_count": None,
        "archived": False,
        "no_follow": False,
        "is_crosspostable": True,
        "pinned": False,
        "over_18": False,
        "all_awardings": [],
        "awarders": [],
        "media_only": False,
        "can_gild": False,
        "spoiler": False,
        "locked": False,
        "author_flair_text": None,
        "treatment_tags": [],
        "visited": False,
        "removed_by": None,
        "mod_note": None,
        "distinguished": None,
        "subreddit_id": "t5_2sbq3",
        "mod_reason_by": None,
        "num_reports": None,
        "removal_reason": None,
        "link_flair_background_color": "",
        "id": post_id,
        "is_robot_indexable": True,
        "report_reasons": None,
        "author": author if author is not None else "[deleted]",
        "discussion_type": None,
        "num_comments": num_comments,
        "send_replies": True,
        "media": None,
        "contest_mode": False,
        "author_patreon_flair": False,
        "permalink": permalink,
        "stickied": False,
        "url": f"https://www.reddit.com{permalink}",
        "subreddit_subscribers": 250_000,
        "created_utc": created_utc,
        "num_crossposts": 0,
        "mod_reports": [],
        "is_video": False,
    }
    data.update(extra)
    return data


def image_post(post_id: str, image_url: str, **kwargs: Any) -> dict[str, Any]:
    """An image post (``post_hint: image``) whose link is ``image_url``."""
    preview_id = base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")
    extra = {
        "post_hint": "image",
        "domain": "i.redd.it",
        "is_self": False,
        "thumbnail": "image",
        "url_overridden_by_dest": image_url,
        "url": image_url,
        "preview": {
            "images": [
                {
                    "source": {"url": image_url, "width": 0, "height": 0},
                    "resolutions": [],
                    "variants": {},
                    "id": preview_id,
                }
            ],
            "enabled": True,
        },
    }
    extra.update(kwargs.pop("extra", {}))
    return t3(post_id, **extra, **kwargs)


def gallery_post(
    post_id: str, media: list[tuple[str, str]], *, base: str = "{base}", **kwargs: Any
) -> dict[str, Any]:
    """A gallery post; ``media`` lists (media_id, mime type) in display order.

    ``s.u`` points at ``{base}/preview/<media_id>.<ext>`` with the query string Reddit adds; the
    original is at ``{base}/i/<media_id>.<ext>`` (colorbot derives it from ``reddit.media_url``).
    """
    metadata: dict[str, Any] = {}
    items = []
    for number, (media_id, mime) in enumerate(media):
        ext = mime.split("/")[-1].replace("jpeg", "jpg")
        preview = f"{base}/preview/{media_id}.{ext}?width=640&format={ext}&auto=webp&s={'0' * 40}"
        metadata[media_id] = {
            "status": "valid",
            "e": "Image",
            "m": mime,
            "p": [{"y": 108, "x": 108, "u": preview.replace("width=640", "width=108&crop=smart")}],
            "s": {"y": 640, "x": 640, "u": preview},
            "id": media_id,
        }
        items.append({"media_id": media_id, "id": 400_000 + number})
    extra = {
        "is_gallery": True,
        "domain": "reddit.com",
        "is_self": False,
        "thumbnail": "https://b.thumbs.redditmedia.com/x.jpg",
        "url_overridden_by_dest": f"https://www.reddit.com/gallery/{post_id}",
        "url": f"https://www.reddit.com/gallery/{post_id}",
        "media_metadata": metadata,
        "gallery_data": {"items": items},
    }
    extra.update(kwargs.pop("extra", {}))
    return t3(post_id, **extra, **kwargs)


def t1(
    comment_id: str,
    post_id: str,
    body: str,
    *,
    author: str = "colorist",
    created_utc: float = 1_700_000_100.0,
    parent_id: str | None = None,
    replies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A comment's ``data`` as Reddit sends it; ``replies`` nests comments (Reddit's ``""`` if none)."""
    return {
        "subreddit_id": "t5_2sbq3",
        "approved_at_utc": None,
        "author_is_blocked": False,
        "link_id": f"t3_{post_id}",
        "likes": None,
        "replies": _listing([{"kind": "t1", "data": reply} for reply in replies]) if replies else "",
        "user_reports": [],
        "saved": False,
        "id": comment_id,
        "banned_at_utc": None,
        "gilded": 0,
        "archived": False,
        "author": author,
        "parent_id": parent_id or f"t3_{post_id}",
        "score": 1,
        "approved_by": None,
        "controversiality": 0,
        "body": body,
        "edited": False,
        "downs": 0,
        "body_html": f"<div class=\"md\"><p>{body}</p>\n</div>",
        "subreddit": "colorization",
        "name": f"t1_{comment_id}",
        "score_hidden": False,
        "stickied": False,
        "created": created_utc,
        "author_flair_text": None,
        "created_utc": created_utc,
        "distinguished": None,
        "mod_reports": [],
        "num_reports": None,
        "ups": 1,
        "is_submitter": True,
        "depth": 0,
    }


def self_post_with_images(
    post_id: str, media: list[tuple[str, str]], *, text: str = "", base: str = "{base}", **kwargs: Any
) -> dict[str, Any]:
    """A text post with inline images: ``media`` (media_id, mime type) in ``media_metadata`` and
    linked from the selftext in that order, as ``https://preview.redd.it/<id>.<ext>?…`` links
    (here ``{base}/preview/…``), after ``text``. No ``gallery_data``, no ``is_gallery``."""
    gallery = gallery_post(post_id, media, base=base)
    links = [gallery["media_metadata"][media_id]["s"]["u"] for media_id, _mime in media]
    selftext = "\n\n".join([text, *links]) if text else "\n\n".join(links)
    extra = {"is_self": True, "media_metadata": gallery["media_metadata"], "selftext": selftext}
    extra.update(kwargs.pop("extra", {}))
    return t3(post_id, **extra, **kwargs)


def as_deleted(post: dict[str, Any]) -> dict[str, Any]:
    """``post`` as Reddit shows it once its author deleted it: ``author`` and ``selftext``
    ``"[deleted]"``, no ``author_fullname``, ``removed_by_category`` left ``null``, no longer
    ``is_robot_indexable`` (PRAW then reads the author as ``None``)."""
    gone = {key: value for key, value in post.items() if key != "author_fullname"}
    gone.update(author="[deleted]", selftext="[deleted]", selftext_html=None, removed_by_category=None,
                is_robot_indexable=False, author_flair_text=None)
    return gone


def as_removed(post: dict[str, Any], category: str = "moderator") -> dict[str, Any]:
    """``post`` as Reddit shows it once removed (``category``: moderator, reddit, automod_filtered,
    anti_evil_ops, copyright_takedown …): ``selftext: "[removed]"``, not ``is_robot_indexable``."""
    gone = dict(post)
    gone.update(selftext="[removed]", selftext_html=None, removed_by_category=category, is_robot_indexable=False)
    return gone


def _replies_of(comment: Mapping[str, Any]) -> list[dict[str, Any]]:
    replies = comment.get("replies")
    if not isinstance(replies, Mapping):
        return []  # Reddit's "" for a comment without replies
    children = replies.get("data", {}).get("children", [])
    return [child["data"] for child in children if child.get("kind") == "t1"]


def _subtree(comments: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """The comments and all their replies, parents before children."""
    for comment in comments:
        yield comment
        yield from _subtree(_replies_of(comment))


def _more(parent_name: str, depth: int, hidden: list[dict[str, Any]]) -> dict[str, Any]:
    """A "load more comments" stub for the sibling comments ``hidden`` (and their replies), or with
    none a "continue this thread" stub (``count: 0``, id ``_``, fetched through the parent)."""
    if not hidden:
        return {"kind": "more", "data": {"count": 0, "name": "t1__", "id": "_", "parent_id": parent_name,
                                         "depth": depth, "children": []}}
    first = hidden[0]["id"]
    return {"kind": "more", "data": {"count": sum(1 for _ in _subtree(hidden)), "name": f"t1_{first}", "id": first,
                                     "parent_id": parent_name, "depth": depth,
                                     "children": [comment["id"] for comment in hidden]}}


def _listing(children: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {
            "after": after,
            "dist": len(children),
            "modhash": None,
            "geo_filter": "",
            "children": children,
            "before": None,
        },
    }


def inbox_reply(
    comment_id: str,
    parent: dict[str, Any],
    body: str,
    *,
    author: str | None = "colorist",
    dest: str = "colorbot-tests",
    link_title: str = "",
    created_utc: float = 1_700_000_200.0,
    new: bool = True,
) -> dict[str, Any]:
    """A reply to the comment ``parent`` (its t1 ``data``) as ``/message/comments`` lists it.

    The inbox's shape, not a comment tree's: ``was_comment``, ``type``, ``subject``, ``dest``,
    ``context``, ``new``, ``link_title``, and no ``link_id``.
    """
    post_id = str(parent.get("link_id", "t3_x"))[3:]
    subreddit = str(parent.get("subreddit", "colorization"))
    slug = re.sub(r"[^a-z0-9]+", "_", link_title.lower())[:40] or "_"
    return {
        "first_message": None,
        "first_message_name": None,
        "subreddit": subreddit,
        "likes": None,
        "replies": "",
        "author_fullname": f"t2_{author[:8].lower()}" if author else None,
        "id": comment_id,
        "subject": "comment reply",
        "associated_awarding_id": None,
        "score": 1,
        "author": author if author is not None else "[deleted]",
        "num_comments": 1,
        "parent_id": parent.get("name") or f"t1_{parent['id']}",
        "subreddit_name_prefixed": f"r/{subreddit}",
        "new": new,
        "type": "comment_reply",
        "body": body,
        "link_title": link_title,
        "dest": dest,
        "was_comment": True,
        "body_html": f"<!-- SC_OFF --><div class=\"md\"><p>{body}</p>\n</div><!-- SC_ON -->",
        "name": f"t1_{comment_id}",
        "created": created_utc,
        "created_utc": created_utc,
        "context": f"/r/{subreddit}/comments/{post_id}/{slug}/{comment_id}/?context=3",
        "distinguished": None,
    }


def bomb_png(width: int = 100_000, height: int = 100_000, padding: int = 4 * 1024 * 1024) -> bytes:
    """A PNG whose header declares ``width × height`` pixels, padded to a few megabytes.

    Decoding it would need tens of gigabytes; its header alone must be enough to refuse it.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 65536) + bytes(padding)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def corrupt_exif_jpeg(pixels: Any) -> bytes:
    """A JPEG of ``pixels`` (a uint8 array) with orientation 6 and an XResolution tag whose type says
    UNDEFINED instead of RATIONAL: the pixels decode, but Pillow's ``exif_transpose`` raises
    ``TypeError`` when it rewrites the block (the poison post of a camera with buggy firmware)."""
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate to display, so exif_transpose must rewrite the block
    exif[0x011A] = 72.0  # XResolution
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    data = bytearray(buffer.getvalue())
    tiff = data.index(b"Exif\x00\x00") + 6
    order = ">" if data[tiff:tiff + 2] == b"MM" else "<"
    first_ifd = tiff + struct.unpack(order + "I", data[tiff + 4:tiff + 8])[0]
    count = struct.unpack(order + "H", data[first_ifd:first_ifd + 2])[0]
    for entry in range(first_ifd + 2, first_ifd + 2 + 12 * count, 12):
        if struct.unpack(order + "H", data[entry:entry + 2])[0] == 0x011A:
            data[entry + 2:entry + 4] = struct.pack(order + "H", 7)  # UNDEFINED
            return bytes(data)
    raise AssertionError("Pillow wrote an EXIF block with no XResolution tag to damage")


# -- snapshots --------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Posts (newest first), their comments, and the images their URLs point at."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)

    def add(self, post: dict[str, Any], comments: list[dict[str, Any]] | None = None) -> None:
        self.posts.append(post)
        if comments:
            self.comments[post["id"]] = comments


def write_snapshot(snapshot: Snapshot, folder: str | Path) -> Path:
    """Write ``posts.json`` and ``images/`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = [{"data": post, "comments": snapshot.comments.get(post["id"], [])} for post in snapshot.posts]
    (folder / "posts.json").write_text(json.dumps({"posts": entries}, indent=1), encoding="utf-8")
    for name, data in snapshot.images.items():
        (folder / "images" / name).write_bytes(data)
    return folder


def read_snapshot(folder: str | Path) -> Snapshot:
    """Load what :func:`write_snapshot` wrote; a clear ValueError if it is not a snapshot."""
    folder = Path(folder)
    index = folder / "posts.json"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["posts"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{index}: not a replay snapshot ({exc})") from exc
    snapshot = Snapshot()
    for entry in entries:
        snapshot.add(entry["data"], entry.get("comments") or [])
    image_dir = folder / "images"
    if image_dir.is_dir():
        for path in sorted(image_dir.iterdir()):
            if path.is_file():
                snapshot.images[path.name] = path.read_bytes()
    return snapshot


def build_snapshot(
    pairs: Iterable[tuple[bytes, bytes]],
    *,
    layouts: Iterable[str] = ("gallery", "composite", "comment-link"),
    subreddit: str = "colorization",
    start_utc: float = 1_700_000_000.0,
    compose: Any = None,
) -> Snapshot:
    """A snapshot of posts made from (original, colorization) encoded image pairs.

    Layouts cycle through ``layouts``: ``gallery`` (colorization first, so that order cannot be
    what decides), ``composite`` (both side by side in one PNG; needs ``compose``, a function
    from the two encoded images to the composite's bytes), ``comment-link`` (the colorization
    posted, the original linked by the author in a comment) and ``single`` (the colorization
    alone). Post ids are base-36 counters; the newest post comes first.
    """
    snapshot = Snapshot()
    layouts = list(layouts)
    made = []
    for number, (original, colorized) in enumerate(pairs):
        layout = layouts[number % len(layouts)]
        post_id = f"p{number:05x}"
        created = start_utc + number * 60
        common = {"subreddit": subreddit, "created_utc": created, "title": f"Photo {number}, {1900 + number % 100}"}
        ext_o, ext_c = _ext(original), _ext(colorized)
        if layout == "gallery":
            first, second = f"{post_id}c", f"{post_id}o"
            snapshot.images[f"{first}.{ext_c}"] = colorized
            snapshot.images[f"{second}.{ext_o}"] = original
            post = gallery_post(
                post_id, [(first, _mime(ext_c)), (second, _mime(ext_o))], num_comments=0, **common
            )
            made.append((post, None))
        elif layout == "composite":
            if compose is None:
                raise ValueError("the composite layout needs compose=")
            name = f"{post_id}.png"
            snapshot.images[name] = compose(original, colorized)
            made.append((image_post(post_id, "{base}/i/" + name, **common), None))
        elif layout in ("comment-link", "single"):
            name = f"{post_id}.{ext_c}"
            snapshot.images[name] = colorized
            comments = []
            if layout == "comment-link":
                original_name = f"{post_id}-bw.{ext_o}"
                snapshot.images[original_name] = original
                comments = [
                    t1(f"c{post_id}", post_id, f"Original: {{base}}/i/{original_name}", author="colorist")
                ]
            post = image_post(post_id, "{base}/i/" + name, num_comments=len(comments), **common)
            made.append((post, comments))
        else:
            raise ValueError(f"unknown layout {layout!r}")
    for post, comments in reversed(made):
        snapshot.add(post, comments)
    return snapshot


def _ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF":
        return "webp"
    return "gif"


def _mime(ext: str) -> str:
    return {"jpg": "image/jpg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}[ext]


# -- the server -------------------------------------------------------------------------------


class ReplayServer:
    """Reddit's API on ``127.0.0.1``; start/stop it, or use it as a context manager."""

    def __init__(
        self,
        snapshot: Snapshot | None = None,
        *,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.snapshot = snapshot or Snapshot()
        self.faults = faults if faults is not None else FaultPlan()  # an empty plan is falsy (len 0)
        self.subreddit_status: dict[str, str] = {}  # name -> "private" | "banned"
        # A busy thread as Reddit cuts it: at most comment_limit comments an answer, replies at most
        # comment_depth deep; the rest behind "load more" / "continue this thread" stubs. None: all.
        self.comment_limit: int | None = None
        self.comment_depth: int | None = None
        self.requests: list[tuple[str, str]] = []
        self.user_agents: set[str] = set()
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._token = "replay-token"
        self._user_token = "replay-user-token"  # what a password grant gets: the inbox needs a user
        self.inbox: list[dict[str, Any]] = []  # /message/comments, newest first (inbox_reply data)
        self.me = "colorbot-tests"  # the account a password grant logs in as
        self.posted_comments: list[dict[str, Any]] = []  # t1 data of every POST /api/comment
        self.submitted: list[dict[str, Any]] = []  # t3 data of every POST /api/submit
        self.uploads: dict[str, bytes] = {}  # upload key -> file bytes
        self._holds: dict[str, Hold] = {}
        self._websockets: dict[str, dict[str, Any]] = {}  # upload key -> the post it became
        self._serial = 0
        self._index()

    @classmethod
    def from_snapshot(cls, folder: str | Path, **kwargs: Any) -> ReplayServer:
        return cls(read_snapshot(folder), **kwargs)

    # -- content, changeable while running ----------------------------------------------------

    def _index(self) -> None:
        with self._lock:
            self._posts = {post["id"]: post for post in self.snapshot.posts if isinstance(post, Mapping) and "id" in post}

    def add_post(self, post: dict[str, Any], comments: list[dict[str, Any]] | None = None) -> None:
        """Publish a post (it becomes the newest)."""
        with self._lock:
            self.snapshot.posts.insert(0, post)
            self._posts[post["id"]] = post
            if comments:
                self.snapshot.comments[post["id"]] = comments

    def update_post(self, post_id: str, **fields: Any) -> None:
        """Change a published post (its score, its removal ...)."""
        with self._lock:
            self._posts[post_id].update(fields)

    def delete_post(self, post_id: str) -> None:
        """The author deletes a published post: it is shown as :func:`as_deleted` makes it."""
        self._replace_post(post_id, as_deleted)

    def remove_post(self, post_id: str, category: str = "moderator") -> None:
        """A moderator (or Reddit: ``category``) removes a published post, as :func:`as_removed`."""
        self._replace_post(post_id, lambda post: as_removed(post, category))

    def _replace_post(self, post_id: str, change: Any) -> None:
        with self._lock:
            post = self._posts[post_id]
            changed = change(post)
            post.clear()  # in place: the snapshot's listing holds the same dict
            post.update(changed)

    def add_image(self, name: str, data: bytes) -> str:
        """Serve ``data`` at ``/i/<name>``; returns that URL's ``{base}`` form."""
        with self._lock:
            self.snapshot.images[name] = data
        return "{base}/i/" + name

    def add_inbox_reply(self, parent_id: str, body: str, *, author: str | None = "colorist",
                        created_utc: float | None = None, new: bool = True) -> dict[str, Any]:
        """Someone replies ``body`` to the bot's comment ``parent_id`` (an id from
        :attr:`posted_comments`, or any comment in the snapshot): it lands in the bot's inbox, newest
        first, and under that comment. Returns the inbox item's data."""
        with self._lock:
            candidates = self.posted_comments + [c for cs in self.snapshot.comments.values() for c in cs]
            parent = next((c for c in candidates if c.get("id") == parent_id), None)
            if parent is None:
                raise KeyError(f"no comment {parent_id!r} to reply to")
            post = self._posts.get(str(parent.get("link_id", ""))[3:], {})
            self._serial += 1
            comment_id = f"r{self._serial:05x}"
        created = time.time() if created_utc is None else created_utc
        item = inbox_reply(comment_id, parent, body, author=author, dest=self.me,
                           link_title=str(post.get("title", "")), created_utc=created, new=new)
        child = t1(comment_id, str(parent.get("link_id", "t3_x"))[3:], body, author=author or "[deleted]",
                   created_utc=created, parent_id=item["parent_id"])
        child["depth"] = int(parent.get("depth", 0)) + 1
        with self._lock:
            self.inbox.insert(0, item)
            replies = parent.get("replies") or _listing([])
            replies["data"]["children"].append({"kind": "t1", "data": child})
            parent["replies"] = replies
        return item

    def inbox_comments(self, query: dict[str, str]) -> tuple[int, Any]:
        """``/message/comments``: the inbox's comment replies, ``limit``/``after`` paged."""
        with self._lock:
            items = list(self.inbox)
        try:
            limit = max(1, min(PAGE_CAP, int(query.get("limit", "25"))))
        except ValueError:
            limit = 25
        start = 0
        if after := query.get("after"):
            names = [item["name"] for item in items]
            start = names.index(after) + 1 if after in names else len(items)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return 200, _listing([{"kind": "t1", "data": item} for item in page],
                             after=page[-1]["name"] if page and more else None)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> ReplayServer:
        handler = type("Handler", (_Handler,), {"replay": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        # serve_forever's poll interval bounds how long shutdown() waits: 0.5 s by default, on every stop
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="reddit-replay", daemon=True)
        self._thread.start()
        log.info("replaying Reddit at %s (%d posts)", self.base_url, len(self.snapshot.posts))
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the replay server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def media_url(self) -> str:
        return f"{self.base_url}/i"

    def reddit_settings(self, **overrides: Any) -> dict[str, Any]:
        """``[reddit]`` settings pointing PRAW at this server (read-only client credentials)."""
        settings = {
            "client_id": "replay-client",
            "client_secret": "replay-secret",
            "oauth_url": self.base_url,
            "reddit_url": self.base_url,
            "media_url": self.media_url,
            "owner": "colorbot-tests",
        }
        settings.update(overrides)
        return settings

    def download_settings(self, **overrides: Any) -> dict[str, Any]:
        """``[download]`` settings allowing this server (and only it) although it is loopback."""
        settings = {"allowed_hosts": [self._host], "allowed_networks": [f"{self._host}/32"]}
        settings.update(overrides)
        return settings

    def reply_settings(self, username: str = "colorbot-tests", **overrides: Any) -> dict[str, Any]:
        """``[reddit]`` settings for a logged-in client (password grant) on this server."""
        return self.reddit_settings(username=username, password="replay-password", **overrides)

    def hold(self, path: str, timeout_s: float = 60.0) -> Hold:
        """Record the next request to ``path`` as usual, then hold its answer until released."""
        hold = Hold(timeout_s=timeout_s)
        with self._lock:
            self._holds[path] = hold
        return hold

    def _take_hold(self, path: str) -> Hold | None:
        with self._lock:
            return self._holds.pop(path, None)

    def comments_by(self, post_id: str, author: str) -> list[dict[str, Any]]:
        """Comments on ``post_id`` posted through ``/api/comment`` by ``author``."""
        with self._lock:
            return [c for c in self.posted_comments if c["link_id"] == f"t3_{post_id}" and c["author"] == author]

    def count(self, path_prefix: str) -> int:
        """How many requests so far had a path starting with ``path_prefix``."""
        with self._lock:
            return sum(1 for _method, path in self.requests if path.startswith(path_prefix))

    # -- answers ----------------------------------------------------------------------------

    def _render(self, value: Any) -> bytes:
        return json.dumps(value).replace("{base}", self.base_url).encode()

    def _post(self, post_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._posts.get(post_id)

    def listing(self, subreddit: str, sort: str, query: dict[str, str]) -> tuple[int, Any]:
        status = self.subreddit_status.get(subreddit.lower())
        if status == "private":
            return 403, {"reason": "private", "message": "Forbidden", "error": 403}
        if status == "banned":
            return 404, {"reason": "banned", "message": "Not Found", "error": 404}
        with self._lock:
            posts = [post for post in self.snapshot.posts if str(post.get("subreddit", "")).lower() == subreddit.lower()]
        if not posts and subreddit.lower() not in {"all", "colorization"} and not subreddit.lower().startswith("u_"):
            return 302, {"location": f"/subreddits/search.json?q={subreddit}"}
        if sort == "new":
            posts.sort(key=lambda post: _number(post.get("created_utc")), reverse=True)
        elif sort == "top":
            posts.sort(key=lambda post: _number(post.get("score")), reverse=True)
        try:
            limit = max(1, min(PAGE_CAP, int(query.get("limit", "25"))))
        except ValueError:
            limit = 25
        start = 0
        after = query.get("after")
        if after:
            names = [post.get("name") for post in posts]
            start = names.index(after) + 1 if after in names else len(posts)
        page = posts[start : start + limit]
        more = start + limit < len(posts)
        return 200, _listing(
            [{"kind": "t3", "data": post} for post in page],
            after=page[-1].get("name") if page and more else None,
        )

    def comments(self, post_id: str) -> tuple[int, Any]:
        post = self._post(post_id)
        if post is None:
            return 404, {"message": "Not Found", "error": 404}
        with self._lock:
            comments = list(self.snapshot.comments.get(post_id, []))
            things = self._cut_thread(comments, f"t3_{post_id}", 0, [self.comment_limit])
        return 200, [_listing([{"kind": "t3", "data": post}]), _listing(things)]

    def _cut_thread(
        self, comments: list[dict[str, Any]], parent_name: str, depth: int, budget: list[int | None]
    ) -> list[dict[str, Any]]:
        """``comments`` as things, cut by :attr:`comment_depth` and the shared ``budget`` (what is
        left of :attr:`comment_limit`) into "load more" and "continue this thread" stubs."""
        if comments and self.comment_depth is not None and depth >= self.comment_depth:
            return [_more(parent_name, depth, [])]
        things = []
        for index, comment in enumerate(comments):
            if budget[0] is not None and budget[0] <= 0:
                things.append(_more(parent_name, depth, comments[index:]))
                break
            if budget[0] is not None:
                budget[0] -= 1
            shown = dict(comment, depth=depth)
            replies = self._cut_thread(_replies_of(comment), f"t1_{comment['id']}", depth + 1, budget)
            shown["replies"] = _listing(replies) if replies else ""
            things.append({"kind": "t1", "data": shown})
        return things

    def comment_thread(self, post_id: str, comment_id: str) -> tuple[int, Any]:
        """``/comments/{post}/_/{comment}``: the post, and that one comment with its replies."""
        post = self._post(post_id)
        with self._lock:
            thread = _subtree(self.snapshot.comments.get(post_id, []))
            comment = next((c for c in thread if c.get("id") == comment_id), None)
            if post is None or comment is None:
                return 404, {"message": "Not Found", "error": 404}
            parent = str(comment.get("parent_id", f"t3_{post_id}"))
            things = self._cut_thread([comment], parent, 0, [self.comment_limit])
        return 200, [_listing([{"kind": "t3", "data": post}]), _listing(things)]

    def more_children(self, form: dict[str, str]) -> tuple[int, Any]:
        """``/api/morechildren``: the comments named in ``children`` with their replies, flat (each
        with ``replies: ""``, parents before children), as Reddit answers it; replies deeper than
        :attr:`comment_depth` stay behind "continue this thread" stubs."""
        post_id = form.get("link_id", "")[3:]
        wanted = {name for name in form.get("children", "").split(",") if name}
        with self._lock:
            top = list(self.snapshot.comments.get(post_id, []))
        things: list[dict[str, Any]] = []

        def visit(comments: list[dict[str, Any]], depth: int) -> None:
            for comment in comments:
                if comment.get("id") in wanted:
                    flatten(comment, depth)
                else:
                    visit(_replies_of(comment), depth + 1)

        def flatten(comment: dict[str, Any], depth: int) -> None:
            things.append({"kind": "t1", "data": dict(comment, depth=depth, replies="")})
            replies = _replies_of(comment)
            if replies and self.comment_depth is not None and depth + 1 >= self.comment_depth:
                things.append(_more(f"t1_{comment['id']}", depth + 1, []))
                return
            for reply in replies:
                flatten(reply, depth + 1)

        visit(top, 0)
        return 200, {"json": {"errors": [], "data": {"things": things}}}

    def info(self, query: dict[str, str]) -> tuple[int, Any]:
        found = []
        for name in query.get("id", "").split(","):
            if name.startswith("t3_") and (post := self._post(name[3:])) is not None:
                found.append({"kind": "t3", "data": post})
        return 200, _listing(found[:PAGE_CAP])

    def image(self, name: str) -> bytes | None:
        with self._lock:
            return self.snapshot.images.get(name)


    # -- posting (bot.reply) ---------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._serial += 1
            return f"{prefix}{self._serial:05x}"

    def media_lease(self, form: dict[str, str]) -> dict[str, Any]:
        key = self._next_id("up")
        ext = form.get("filepath", "x.png").rsplit(".", 1)[-1]
        return {
            "args": {
                "action": f"//{self._host}:{self.port}/upload",
                "fields": [
                    {"name": "key", "value": key},
                    {"name": "success_action_status", "value": "201"},
                    {"name": "acl", "value": "private"},
                    {"name": "x-amz-meta-ext", "value": ext},
                    {"name": "Content-Type", "value": form.get("mimetype", "image/png")},
                ],
            },
            "asset": {"asset_id": key, "processing_state": "incomplete", "payload": {"filepath": form.get("filepath", "")}, "websocket_url": ""},
        }

    def upload(self, key: str, data: bytes) -> str:
        with self._lock:
            self.uploads[key] = data
            self.snapshot.images[key] = data
        return f"https://{self._host}:{self.port}/{key}"

    def submit(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("kind") != "image" or not form.get("title"):
            return 200, {"json": {"errors": [["NO_TEXT", "we need something here", "title"]]}}
        key = form.get("url", "").rstrip("/").rsplit("/", 1)[-1]
        if key not in self.uploads:
            return 200, {"json": {"errors": [["BAD_URL", "upload not found", "url"]]}}
        post_id = self._next_id("s")
        post = image_post(post_id, "{base}/i/" + key, title=form["title"], author=self.me,
                          subreddit=form.get("sr", ""), created_utc=time.time(),
                          extra={"over_18": form.get("nsfw") == "True"})
        with self._lock:
            self.submitted.append(post)
            self.snapshot.posts.insert(0, post)
            self._posts[post_id] = post
            self._websockets[key] = post
        return 200, {"json": {"errors": [], "data": {
            "user_submitted_page": f"{self.base_url}/user/{self.me}/submitted/",
            "websocket_url": f"ws://{self._host}:{self.port}/ws/{key}",
        }}}

    def websocket_message(self, key: str) -> dict[str, Any]:
        with self._lock:
            post = self._websockets.get(key)
        if post is None:
            return {"type": "failed", "payload": {}}
        return {"type": "success", "payload": {"redirect": self.base_url + post["permalink"]}}

    def comment(self, form: dict[str, str]) -> tuple[int, Any]:
        thing = form.get("thing_id", "")
        post = self._post(thing[3:]) if thing.startswith("t3_") else None
        if post is None:
            return 200, {"json": {"errors": [["DELETED_LINK", "the link you are commenting on has been deleted", "parent"]]}}
        if post.get("locked") or post.get("archived"):
            return 200, {"json": {"errors": [["THREAD_LOCKED", "Comments are locked.", "parent"]]}}
        comment = t1(self._next_id("c"), post["id"], form.get("text", ""), author=self.me, created_utc=time.time())
        comment["subreddit"] = post.get("subreddit", "")
        comment["is_submitter"] = False
        with self._lock:
            self.posted_comments.append(comment)
            self.snapshot.comments.setdefault(post["id"], []).append(comment)
        return 200, {"json": {"errors": [], "data": {"things": [{"kind": "t1", "data": comment}]}}}


@dataclass
class Hold:
    """A held answer: ``arrived`` is set once the request is recorded; ``release()`` lets it go."""

    timeout_s: float = 60.0
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


_LISTING = re.compile(r"^/r/([^/]+)(?:/(new|hot|top|rising|controversial))?(?:\.json)?$")
_COMMENTS = re.compile(r"^/comments/([0-9a-z]+)(?:/.*)?$")
_COMMENT_THREAD = re.compile(r"^/comments/([0-9a-z]+)/[^/]+/([0-9a-z]+)$")
_IMAGE = re.compile(r"^/(?:i|preview)/([^/]+)$")
_WEBSOCKET = re.compile(r"^/ws/([^/]+)$")


class _Handler(BaseHTTPRequestHandler):
    replay: ReplayServer
    server_version = "snooserv"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        log.debug("replay: " + format, *args)

    _form: dict[str, str] = {}
    _files: dict[str, bytes] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self._form, self._files = _parse_body(self.headers.get("Content-Type", ""), body)
        self._dispatch("POST")

    def do_GET(self) -> None:  # noqa: N802
        match = _WEBSOCKET.match(urlsplit(self.path).path)
        if match is not None and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket(match.group(1))
        self._dispatch("GET")

    def _websocket(self, key: str) -> None:
        """Reddit's media-post WebSocket: the handshake, one text message, a close frame."""
        with self.replay._lock:
            self.replay.requests.append(("GET", f"/ws/{key}"))
        accept = base64.b64encode(
            hashlib.sha1((self.headers.get("Sec-WebSocket-Key", "") + WEBSOCKET_GUID).encode()).digest()
        ).decode()
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        payload = json.dumps(self.replay.websocket_message(key)).encode()
        header = bytes([0x81, len(payload)]) if len(payload) < 126 else bytes([0x81, 126]) + struct.pack(">H", len(payload))
        self.wfile.write(header + payload + bytes([0x88, 0x00]))
        self.wfile.flush()
        self.close_connection = True

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        replay = self.replay
        with replay._lock:
            replay.requests.append((method, path))
            replay.user_agents.add(self.headers.get("User-Agent", ""))
        try:
            fault = replay.faults.take(path, parts.query)
            if fault is not None and self._inject(fault, path):
                return
            if method == "POST" and path == "/api/v1/access_token":
                if not self.headers.get("Authorization", "").lower().startswith("basic "):
                    return self._json(401, {"message": "Unauthorized", "error": 401})
                return self._json(
                    200,
                    {"access_token": replay._user_token if self._form.get("grant_type") == "password" else replay._token,
                     "token_type": "bearer", "expires_in": 3600, "scope": "*"},
                )
            if method == "POST" and path == "/upload":
                key, data = self._form.get("key"), self._files.get("file")
                if not key or data is None:
                    return self._send(400, b"<Error><Code>InvalidArgument</Code></Error>", "application/xml")
                location = replay.upload(key, data)
                return self._send(201, f"<PostResponse><Location>{location}</Location><Key>{key}</Key></PostResponse>".encode(),
                                  "application/xml", {"Location": location})
            if (match := _IMAGE.match(path)) is not None:
                data = replay.image(match.group(1))
                if data is None:
                    return self._send(404, b"Not Found", "text/plain")
                return self._send(200, data, CONTENT_TYPES.get(Path(match.group(1)).suffix.lower(), "application/octet-stream"))
            authorization = self.headers.get("Authorization")
            if authorization not in (f"bearer {replay._token}", f"bearer {replay._user_token}"):
                return self._json(401, {"message": "Unauthorized", "error": 401})
            if method == "GET" and path in ("/message/comments", "/message/comments.json"):
                if authorization != f"bearer {replay._user_token}":  # an app-only token has no inbox
                    return self._json(403, {"message": "Forbidden", "error": 403})
                return self._json(*replay.inbox_comments(query))
            if method == "GET" and (match := _LISTING.match(path)) is not None:
                status, body = replay.listing(match.group(1), match.group(2) or "hot", query)
                if status == 302:
                    return self._send(302, b"", "text/plain", {"Location": replay.base_url + body["location"]})
                return self._json(status, body)
            if method == "GET" and (match := _COMMENT_THREAD.match(path)) is not None:
                return self._json(*replay.comment_thread(match.group(1), match.group(2)))
            if method == "GET" and (match := _COMMENTS.match(path)) is not None:
                return self._json(*replay.comments(match.group(1)))
            if path == "/api/morechildren":
                return self._json(*replay.more_children(self._form if method == "POST" else query))
            if method == "GET" and path == "/api/info":
                status, body = replay.info(query)
                if (hold := replay._take_hold(path)) is not None:
                    hold.arrived.set()
                    hold.released.wait(hold.timeout_s)
                return self._json(status, body)
            if method == "GET" and path == "/api/v1/me":
                return self._json(200, {"name": replay.me, "id": "b0t", "is_suspended": False, "created_utc": 1.6e9})
            if method == "POST" and path == "/api/media/asset.json":
                return self._json(200, replay.media_lease(self._form))
            if method == "POST" and path == "/api/submit":
                status, body = replay.submit(self._form)
                if (hold := replay._take_hold(path)) is not None:
                    hold.arrived.set()
                    hold.released.wait(hold.timeout_s)
                return self._json(status, body)
            if method == "POST" and path == "/api/comment":
                status, body = replay.comment(self._form)
                if (hold := replay._take_hold(path)) is not None:
                    hold.arrived.set()
                    hold.released.wait(hold.timeout_s)
                return self._json(status, body)
            return self._json(404, {"message": "Not Found", "error": 404})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up, as a fetcher refusing a body does

    def _inject(self, fault: Fault, path: str) -> bool:
        """Answer with the fault; False when the fault only delays the real answer."""
        kind = fault.kind
        if kind == "slow":
            time.sleep(fault.delay_s)
            return False
        if kind == "429":
            self._json(429, {"message": "Too Many Requests", "error": 429}, {"Retry-After": f"{fault.retry_after:g}"})
        elif kind in ("500", "503"):
            self._send(int(kind), f"<html><body>{kind} error</body></html>".encode(), "text/html")
        elif kind == "html":
            self._send(200, b"<!doctype html><html><head><title>Imgur</title></head><body>gone</body></html>", "text/html")
        elif kind == "bomb":
            self._send(200, bomb_png(), "image/png")
        elif kind == "redirect":
            self._send(302, b"", "text/plain", {"Location": fault.location})
        elif kind == "truncate":
            match = _IMAGE.match(path)
            data = self.replay.image(match.group(1)) if match else None
            data = data or bomb_png(10, 10, 0)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(Path(path).suffix.lower(), "image/png"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "drop":
            self.close_connection = True
        elif kind == "gzip":
            match = _IMAGE.match(path)
            data = self.replay.image(match.group(1)) if match else None
            if data is None:
                self._send(404, b"Not Found", "text/plain")
            else:
                self._send(200, gzip.compress(data), CONTENT_TYPES.get(Path(path).suffix.lower(), "image/png"),
                           {"Content-Encoding": "gzip"})
        elif kind == "ratelimit":  # Reddit's API-level rate limit: 200 with a RATELIMIT error
            minutes = max(1, round(fault.retry_after / 60))
            self._json(200, {"json": {"ratelimit": fault.retry_after, "errors": [[
                "RATELIMIT",
                f"Looks like you've been doing that a lot. Take a break for {minutes} minutes before trying again.",
                "ratelimit",
            ]]}})
        return True

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, self.replay._render(body), "application/json; charset=UTF-8", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ratelimit-remaining", "600.0")
        self.send_header("x-ratelimit-used", "0")
        self.send_header("x-ratelimit-reset", "600")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)



def _parse_body(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """A POST body's form fields and uploaded files (url-encoded or multipart)."""
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        form: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename():
                files[str(name)] = data
            elif name:
                form[str(name)] = data.decode("utf-8", "replace")
        return form, files
    if content_type.startswith("application/json"):
        return {}, {}
    return {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}, {}
