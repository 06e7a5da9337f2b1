"""Property test of the post-layout parser (bot/layout.py) on Reddit-shaped JSON gone wrong.

Reddit's JSON changes shape over the years: fields go missing, turn null or change type. The
posts here start from the shapes Reddit really sends (galleries with ``media_metadata`` and
``gallery_data`` as in PRAW's recorded exchanges, image posts, Imgur links, crossposts,
removed, deleted, video, self and NSFW posts) and then any field at any depth may be dropped,
nulled or replaced by a value of the wrong type. Properties:

* ``plan_post`` answers a plan whose layout agrees with its images, and never needs its own
  last-resort ``except`` (that would skip a post as "unreadable" because a reader crashed); a
  deferred plan (images still processing) has neither images nor a skip reason, and the last
  look (``decide_unprocessed``) never defers;
* ``post_info`` returns fields that fit their database columns, or raises its documented
  ``MalformedPostError``; ``removal`` (called outside ``plan_post``'s guard) never raises;
* ``find_original_link`` answers None or a link from one of the author's own comments;
* every URL any of them returns is http(s), has a host, contains no whitespace or control
  characters, and was taken from the input (a URL in it, an original built from a media id in
  it on ``media_url``, or the direct Imgur link of an Imgur page in it).
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.layout import MIME_EXTENSIONS, MalformedPostError, PostInfo, find_original_link, plan_post, post_info, removal
from bot.replay import as_deleted, image_post, self_post_with_images, t1, t3
from db.models import Layout

MEDIA_URL = "https://i.redd.it"
SAFETY_NET = "unreadable post JSON"
INT32 = 2**31 - 1  # posts.score and num_comments are Integer columns (32-bit on PostgreSQL)

# -- realistic starting points (facts from PRAW's recorded gallery, crosspost and comment exchanges) --


def gallery() -> dict[str, Any]:
    """A four-item gallery as Reddit sends it: an animated item (gif/mp4, no ``u``), captions, links."""
    def still(media_id: str, mime: str, ext: str, fmt: str) -> dict[str, Any]:
        preview = f"https://preview.redd.it/{media_id}.{ext}?width=128&format={fmt}&auto=webp&s=7c2e610589cb5c8d60384b1d2a8eadc5c874d1d9"
        return {"status": "valid", "e": "Image", "m": mime, "id": media_id,
                "p": [{"y": 108, "x": 108, "u": preview.replace("width=128", "width=108&crop=smart")}],
                "s": {"y": 128, "x": 128, "u": preview}}

    animated = {"status": "valid", "e": "AnimatedImage", "m": "image/gif", "id": "vkm62gm6i3c51",
                "p": [{"y": 108, "x": 108, "u": "https://preview.redd.it/vkm62gm6i3c51.gif?width=108&crop=smart&format=png8&s=e245a8054d5e16b329af34c783de11525d284d9e"}],
                "s": {"y": 128, "x": 128, "gif": "https://i.redd.it/vkm62gm6i3c51.gif",
                      "mp4": "https://preview.redd.it/vkm62gm6i3c51.gif?format=mp4&s=262dd903019f57969cc9b13ab5b6810785c8d1a3"}}
    return t3("huw6vs", is_gallery=True, is_self=False, domain="reddit.com", post_hint=None,
              thumbnail="https://a.thumbs.redditmedia.com/eCvpSdLfaqXZ7kYxRHS5wE7Dxw1jaKKT6p3z0zdoXw8.jpg",
              url="https://www.reddit.com/gallery/huw6vs", url_overridden_by_dest="https://www.reddit.com/gallery/huw6vs",
              gallery_data={"items": [
                  {"media_id": "pb7qsvi6i3c51", "id": 199873},
                  {"caption": "test.jpg", "media_id": "14wmudl6i3c51", "id": 199874},
                  {"outbound_url": "https://example.com", "media_id": "vkm62gm6i3c51", "id": 199875},
                  {"caption": "test.png", "outbound_url": "https://example.com", "media_id": "wka18en6i3c51", "id": 199876},
              ]},
              media_metadata={
                  "pb7qsvi6i3c51": still("pb7qsvi6i3c51", "image/png", "png", "png"),
                  "vkm62gm6i3c51": animated,
                  "wka18en6i3c51": still("wka18en6i3c51", "image/png", "png", "png"),
                  "14wmudl6i3c51": still("14wmudl6i3c51", "image/jpg", "jpg", "pjpg"),
              })


def imgur_link() -> dict[str, Any]:
    return t3("im9ur1", is_self=False, domain="imgur.com", post_hint="link", url="https://imgur.com/AbCdE12",
              url_overridden_by_dest="https://imgur.com/AbCdE12",
              preview={"enabled": False, "images": [{"id": "x1", "resolutions": [], "variants": {}, "source": {
                  "url": "https://external-preview.redd.it/aBc.jpg?auto=webp&amp;s=0f9c", "width": 800, "height": 600}}]})


def crosspost() -> dict[str, Any]:
    parent = image_post("6vx01b", "https://i.redd.it/parent1.jpg", subreddit="OldSchoolCool")
    return t3("6vx8n0", crosspost_parent="t3_6vx01b", crosspost_parent_list=[parent], is_self=False,
              url="https://www.reddit.com/r/OldSchoolCool/comments/6vx01b/test_title/")


def processing_gallery() -> dict[str, Any]:
    """The gallery seconds after posting: an item still unprocessed, another failed (for now)."""
    post = gallery()
    post["media_metadata"]["14wmudl6i3c51"] = {"status": "unprocessed"}
    post["media_metadata"]["wka18en6i3c51"] = {"status": "failed"}
    return post


def inline_images() -> dict[str, Any]:
    """A text post linking its two inline images from the selftext, as ``preview.redd.it`` URLs."""
    post = self_post_with_images("inl001", [("pb7qsvi6i3c51", "image/png"), ("14wmudl6i3c51", "image/jpg")],
                                 text="Before & after", base="https://preview.redd.it")
    return json.loads(json.dumps(post).replace("https://preview.redd.it/preview/", "https://preview.redd.it/"))


def link_post(post_id: str, url: str) -> dict[str, Any]:
    return t3(post_id, is_self=False, domain=urlsplit(url).hostname, post_hint="link", url=url,
              url_overridden_by_dest=url, thumbnail="default")


def deleted_through_praw() -> dict[str, Any]:
    post = as_deleted(image_post("del002", "https://i.redd.it/d.jpg"))
    post["author"] = None  # what PRAW makes of "[deleted]"
    return post


SEEDS = [
    gallery(),
    processing_gallery(),
    inline_images(),
    link_post("imx001", "http://i.imgur.com/y33R4rW"),
    link_post("gfv001", "https://i.imgur.com/AbCdE12.gifv"),
    link_post("rup001", "https://i.reddituploads.com/2f1e4d3c2b1a49f8a7e6d5c4b3a29180?fit=max&amp;h=1536&amp;s=5b1a"),
    image_post("raw001", "https://i.redd.it/r.jpg?width=640&region=eu&lthumb=true"),
    deleted_through_praw(),
    image_post("img001", "https://i.redd.it/abc123def.jpg"),
    imgur_link(),
    crosspost(),
    t3("rem001", removed_by_category="moderator", selftext="[removed]"),
    t3("del001", author=None, removed_by_category="deleted", selftext="[deleted]"),
    t3("vid001", is_video=True, domain="v.redd.it", is_self=False, post_hint="hosted:video",
       media={"reddit_video": {"fallback_url": "https://v.redd.it/x/DASH_720.mp4", "is_gif": False}}),
    t3("self01", selftext="What era is this photo from?"),
    image_post("nsfw01", "https://i.redd.it/n.png", over_18=True),
]

IMAGE_SEED = next(seed for seed in SEEDS if seed["id"] == "img001")

# -- wrong values, in every type ------------------------------------------------------------------

TRICKY_STRINGS = [
    "", " ", "[deleted]", "[removed]", "valid", "failed", "Image", "AnimatedImage", "image/png", "image/jpg",
    "IMAGE/JPEG", "image", "hosted:video", "t3_", "t3_abc", "deleted", "moderator", "pb7qsvi6i3c51", "../../x",
    "https://i.redd.it/x.png", "http://i.imgur.com/abc.JPG", "https://imgur.com/AbCdE12", "https://imgur.com/a/album1",
    " https://i.redd.it/padded.jpg ", "https://preview.redd.it/y.png?width=640&amp;s=abc", "//i.redd.it/x.jpg",
    "ftp://i.redd.it/x.jpg", "javascript:alert(1)//x.jpg", "file:///etc/passwd.png", "data:image/png;base64,AAAA",
    "https://", "https://[::1/x.jpg", "http://[::1]/x.png", "https://user:pw@i.redd.it/x.jpg",
    "https://i.redd.it/a b.jpg", "https://i.redd.it\n.evil.example/x.jpg", "https://i.redd.it/x.jpg\x00",
    "https://i.redd.it/&#10;.jpg", "https://i.redd.it/x.jpg&#x9;", "https://exa\u00admple.com/x.png",
    "unprocessed", "http://i.imgur.com/y33R4rW", "https://i.imgur.com/x1y2z3.gifv",
    "https://i.redd.it/o.png?a=1&lthumb=2",
    "https://i.reddituploads.com/0123456789abcdef0123?x=1&amp;s=2", "https://i.redd.it/original_4k.png",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**31, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.sampled_from(TRICKY_STRINGS),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY_STRINGS)), inner,
                                            max_size=3)),
    max_leaves=8,
)
# What the parser reads at the top of a post; other top-level fields are left alone so the
# mutations land where they matter. Inside those fields every key is fair game.
READ_KEYS = ["id", "author", "title", "subreddit", "permalink", "url", "url_overridden_by_dest", "created_utc", "score",
             "num_comments", "over_18", "removed", "removed_by_category", "selftext", "crosspost_parent",
             "crosspost_parent_list", "is_video", "post_hint", "domain", "is_gallery", "gallery_data",
             "media_metadata", "preview", "is_self", "subreddit_name_prefixed", "is_robot_indexable"]
ACTIONS = ["keep"] * 5 + ["drop", "null", "junk", "deeper"]


def mutate(draw, value: Any, depth: int = 0, read_keys: list[str] = READ_KEYS) -> Any:
    """``value`` with fields dropped, nulled, replaced by junk, or changed further down."""
    if isinstance(value, dict):
        keys = [key for key in value if depth > 0 or key in read_keys]
        out = dict(value)
        for key in keys:
            action = draw(st.sampled_from(ACTIONS))
            if action == "drop":
                out.pop(key)
            elif action == "null":
                out[key] = None
            elif action == "junk":
                out[key] = draw(junk)
            elif action == "deeper":
                out[key] = mutate(draw, value[key], depth + 1)
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.sampled_from(read_keys + ["s", "u", "m", "e", "status", "items", "media_id"]))] = draw(junk)
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            action = draw(st.sampled_from(ACTIONS))
            if action in ("keep", "null"):
                out.append(item if action == "keep" else None)
            elif action == "junk":
                out.append(draw(junk))
            elif action == "deeper":
                out.append(mutate(draw, item, depth + 1))
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(junk))
        return out
    return draw(junk) if draw(st.integers(0, 3)) == 0 else value


@st.composite
def mangled_posts(draw) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(junk)  # not even an object
    return mutate(draw, copy.deepcopy(draw(st.sampled_from(SEEDS))))


@st.composite
def mangled_comments(draw) -> list[Any]:
    bodies = st.one_of(
        st.builds("{} {}".format, st.sampled_from(["Original:", "source", "B&amp;W:", "before ->", "thanks", ""]),
                  st.sampled_from(TRICKY_STRINGS)),
        st.text(max_size=40),
    )
    comments = []
    for number in range(draw(st.integers(0, 3))):
        author = draw(st.sampled_from(["colorist", "stranger", "[deleted]"]))
        comment = t1(f"c{number}", "post01", draw(bodies), author=author)
        comments.append(mutate(draw, comment, read_keys=["author", "body", "body_html", "replies"]))
    return comments


# -- what "taken from the input" means --------------------------------------------------------------


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from strings_in(key)
            yield from strings_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from strings_in(child)


def from_input(url: str, value: Any) -> bool:
    # As sent (raw JSON) or HTML-unescaped (an escaped dump): either way the URL is in the post.
    texts = [form for text in strings_in(value) for form in (text, html.unescape(text))]
    if any(url == text.strip() or url in text for text in texts):
        return True
    built = re.fullmatch(re.escape(MEDIA_URL) + r"/([0-9A-Za-z]+)\.(\w+)", url)
    if built and built.group(2) in MIME_EXTENSIONS.values() and built.group(1) in texts:
        return True
    imgur = re.fullmatch(r"https://i\.imgur\.com/([0-9A-Za-z]{5,10})\.jpg", url)
    return bool(imgur) and any(f"imgur.com/{imgur.group(1)}" in text for text in texts)


def assert_usable_url(url: str, value: Any) -> None:
    assert isinstance(url, str)
    assert not re.search(r"[\x00-\x20\x7f-\x9f]|\s", url), f"whitespace or control character in {url!r}"
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname, url
    assert from_input(url, value), f"{url!r} is not in the post"


# -- the properties ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(post=mangled_posts(), allow_nsfw=st.booleans(), max_gallery=st.integers(2, 6), last_look=st.booleans())
@example(post={**IMAGE_SEED, "url": "https://i.redd.it/a b.jpg", "url_overridden_by_dest": None}, allow_nsfw=False,
         max_gallery=6, last_look=False)
@example(post={**IMAGE_SEED, "url": "https://i.redd.it\n.evil.example/x.jpg", "url_overridden_by_dest": None},
         allow_nsfw=False, max_gallery=6, last_look=False)
@example(post={**SEEDS[0], "score": 10**30, "num_comments": -(10**20)}, allow_nsfw=False, max_gallery=6,
         last_look=False)
def test_the_parser_reads_any_post_into_a_plan_with_urls_from_the_post(post, allow_nsfw, max_gallery, last_look):
    plan = plan_post(post, allow_nsfw=allow_nsfw, media_url=MEDIA_URL, max_gallery_images=max_gallery,
                     decide_unprocessed=last_look)
    assert plan.layout in Layout
    # Shown by --hypothesis-show-statistics: the mangled posts reach every kind of plan.
    kind = "deferred" if plan.deferred else (plan.skip_reason or "planned").split(" (")[0].split(":")[0]
    event(f"{plan.layout.value}: {kind}")
    if plan.deferred:
        assert not last_look and isinstance(plan.defer_reason, str) and plan.defer_reason
        assert not plan.skipped and not plan.images
    elif plan.skipped:
        assert isinstance(plan.skip_reason, str) and plan.skip_reason
        assert not plan.skip_reason.startswith(SAFETY_NET), plan.skip_reason
        assert not plan.images
    else:
        assert plan.images and len(plan.images) <= max_gallery
        assert plan.layout in (Layout.SINGLE, Layout.GALLERY)
        assert (plan.layout is Layout.SINGLE) == (len(plan.images) == 1)
    for ref in plan.images:
        assert ref.urls and len(set(ref.urls)) == len(ref.urls)
        for url in ref.urls:
            assert_usable_url(url, post)
    assert all(isinstance(note, str) for note in plan.notes)

    gone = removal(post) if isinstance(post, dict) else None
    assert gone is None or (isinstance(gone, str) and gone)
    try:
        info = post_info(post)
    except MalformedPostError:
        return
    assert isinstance(info, PostInfo)
    assert re.fullmatch(r"[0-9a-z]{1,16}", info.reddit_id)
    assert len(info.subreddit) <= 64 and (info.author is None or len(info.author) <= 64)
    assert all(isinstance(text, str) for text in (info.title, info.permalink, info.url))
    assert info.created_utc.tzinfo is not None
    for number in (info.score, info.num_comments):
        assert type(number) is int and -INT32 <= number <= INT32
    assert info.removed == (gone is not None)


@FUZZ
@given(comments=mangled_comments(), author=st.one_of(st.none(), st.sampled_from(["colorist", "[deleted]", ""])))
@example(comments=[{"author": "colorist", "body": "Original: https://i.redd.it/x&#1;y.png"}], author="colorist")
def test_an_original_link_comes_from_the_authors_own_comment(comments, author):
    link = find_original_link(comments, author)
    if link is None:
        return
    own = [comment for comment in comments if isinstance(comment, dict) and comment.get("author") == author]
    assert author and author != "[deleted]" and own
    assert_usable_url(link, [comment.get("body") for comment in own])
