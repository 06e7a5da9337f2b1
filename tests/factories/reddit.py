"""Reddit dump files as Pushshift and Arctic Shift publish them, for tests and benchmarks.

zstandard-compressed NDJSON, one object per line, written as ``zstd --long=31`` writes them (a
frame declaring a 2 GiB window, with a checksum), so a reader that forgets
``max_window_size=2**31`` fails on them as it would on the real files. Objects come in two
shapes: today's API JSON (``bot.replay``'s factories, with ``gallery_data``, ``media_metadata``,
``removed_by_category``) and the 2013-era Pushshift one, which lacks those fields, writes
``created_utc`` as a string and leaves ``&amp;`` in URLs.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import zstandard

from bot.replay import gallery_post, image_post, t1, t3

__all__ = ["write_dump", "new_post", "new_gallery", "new_comment", "old_post", "old_comment",
           "filler_objects", "gallery_post", "image_post", "t1", "t3"]


def _compressor(window_log: int, level: int) -> zstandard.ZstdCompressor:
    params = zstandard.ZstdCompressionParameters.from_level(
        level, window_log=window_log, enable_ldm=window_log > 27, write_checksum=1
    )
    return zstandard.ZstdCompressor(compression_params=params)


def _lines(objects: Iterable[Mapping[str, Any] | bytes]) -> Iterator[bytes]:
    for value in objects:
        yield value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode() + b"\n"


def write_dump(path: Path, objects: Iterable[Mapping[str, Any] | bytes], *, window_log: int = 31, level: int = 3,
               frames: int = 1) -> Path:
    """Write ``objects`` (dicts, or raw lines as bytes) as a zstd NDJSON dump; ``frames`` > 1 splits
    the lines over that many frames, back to back, as concatenated files are."""
    items = list(objects) if frames > 1 else objects
    path = Path(path)
    with open(path, "wb") as out:
        if frames == 1:
            with _compressor(window_log, level).stream_writer(out, closefd=False) as writer:
                for line in _lines(items):
                    writer.write(line)
            return path
        share = -(-len(items) // frames)  # type: ignore[arg-type]
        for start in range(0, len(items), share):  # type: ignore[arg-type]
            with _compressor(window_log, level).stream_writer(out, closefd=False) as writer:
                for line in _lines(items[start : start + share]):  # type: ignore[index]
                    writer.write(line)
    return path


# -- objects --------------------------------------------------------------------------------------


def _real_urls(data: dict[str, Any], base: str) -> dict[str, Any]:
    """The replay factories write ``{base}`` for the server's address; a dump has real URLs."""
    return json.loads(json.dumps(data).replace("{base}", base))


def new_post(post_id: str, image_url: str, *, base: str = "https://i.redd.it", **kwargs: Any) -> dict[str, Any]:
    """A 2020s image post as the API (and so Arctic Shift) writes it."""
    return _real_urls(image_post(post_id, image_url, **kwargs), base)


def new_gallery(post_id: str, media: list[tuple[str, str]], *, base: str = "https://preview.redd.it",
                **kwargs: Any) -> dict[str, Any]:
    return _real_urls(gallery_post(post_id, media, **kwargs), base)


def new_comment(comment_id: str, post_id: str, body: str, *, author: str = "colorist",
                created_utc: float = 1_700_000_100.0) -> dict[str, Any]:
    return t1(comment_id, post_id, body, author=author, created_utc=created_utc)


def old_post(post_id: str, url: str, *, title: str = "Abraham Lincoln, 1865", author: str = "colorist",
             subreddit: str = "colorization", created_utc: int = 1_372_670_000, score: int = 12,
             num_comments: int = 3, **extra: Any) -> dict[str, Any]:
    """A 2013 submission as Pushshift's early dumps hold it: no gallery or removal fields,
    ``created_utc`` a string, URLs HTML-escaped as the old API sent them."""
    permalink = f"/r/{subreddit}/comments/{post_id}/{title.lower().replace(' ', '_')[:30]}/"
    data = {
        "approved_by": None, "author": author, "author_flair_css_class": None, "author_flair_text": None,
        "banned_by": None, "clicked": False, "created": created_utc + 28_800, "created_utc": str(created_utc),
        "distinguished": None, "domain": url.split("/")[2] if "://" in url else "self." + subreddit,
        "downs": 0, "edited": False, "gilded": 0, "hidden": False, "id": post_id, "is_self": False,
        "likes": None, "link_flair_css_class": None, "link_flair_text": None, "media": None, "media_embed": {},
        "name": f"t3_{post_id}", "num_comments": num_comments, "num_reports": None, "over_18": False,
        "permalink": permalink, "retrieved_on": 1_413_200_000, "saved": False, "score": score,
        "secure_media": None, "secure_media_embed": {}, "selftext": "", "selftext_html": None,
        "stickied": False, "subreddit": subreddit, "subreddit_id": "t5_2sbq3",
        "thumbnail": "http://b.thumbs.redditmedia.com/Vd1zfnrm7mQtO4Ak.jpg", "title": title, "ups": score,
        "url": url,
    }
    data.update(extra)
    return data


def old_comment(comment_id: str, post_id: str, body: str, *, author: str = "colorist",
                created_utc: int = 1_372_670_500, subreddit: str = "colorization") -> dict[str, Any]:
    return {
        "author": author, "author_flair_css_class": None, "author_flair_text": None, "body": body,
        "controversiality": 0, "created_utc": str(created_utc), "distinguished": None, "edited": False,
        "gilded": 0, "id": comment_id, "link_id": f"t3_{post_id}", "parent_id": f"t3_{post_id}",
        "retrieved_on": 1_425_000_000, "score": 3, "stickied": False, "subreddit": subreddit,
        "subreddit_id": "t5_2sbq3", "ups": 3,
    }


# -- many varied objects, quickly (benchmarks, kill tests) -----------------------------------------


def _base36(number: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def filler_objects(count: int, *, seed: int = 0, share: float = 0.0, subreddit: str = "colorization",
                   first_id: int = 36**5) -> Iterator[dict[str, Any]]:
    """``count`` varied submissions of many subreddits, ``share`` of them (by chance) in ``subreddit``
    as image posts; ids, authors, titles, text and links all differ, so the file compresses about
    as a real month does rather than to nothing."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    words = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(20_000)]
    names = ["".join(rng.choices(letters + string.digits + "_-", k=rng.randint(4, 18))) for _ in range(50_000)]
    subreddits = ["".join(rng.choices(letters, k=rng.randint(3, 16))) for _ in range(3_000)]
    created = 1_672_531_200
    for number in range(count):
        post_id = _base36(first_id + number)
        created += rng.randint(0, 3)
        ours = rng.random() < share
        title = " ".join(rng.choices(words, k=rng.randint(3, 14))).capitalize()
        author = rng.choice(names)
        if ours:
            image = "".join(rng.choices(letters + string.digits, k=13))
            yield image_post(post_id, f"https://i.redd.it/{image}.jpg", title=title, author=author,
                             subreddit=subreddit, created_utc=created, score=rng.randint(0, 5_000),
                             num_comments=rng.randint(0, 40))
            continue
        data = t3(post_id, title=title, author=author, subreddit=rng.choice(subreddits), created_utc=created,
                  score=rng.randint(0, 20_000), num_comments=rng.randint(0, 300))
        if rng.random() < 0.4:
            data["selftext"] = " ".join(rng.choices(words, k=rng.randint(5, 120)))
        else:
            data.update(is_self=False, domain="i.imgur.com", post_hint="image",
                        url=f"https://i.imgur.com/{''.join(rng.choices(letters + string.digits, k=7))}.jpg")
        data["upvote_ratio"] = round(rng.random(), 2)
        data["author_fullname"] = f"t2_{_base36(rng.randint(36**6, 36**8))}"
        data["retrieved_utc"] = created + rng.randint(30, 90_000)
        yield data
