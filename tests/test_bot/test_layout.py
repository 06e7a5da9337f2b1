"""The post-layout parser: Reddit's shapes, and never a crash on odd JSON."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import layout
from bot.download import AddressPolicy
from bot.layout import (
    MalformedPostError, find_original_link, normalize_image_url, plan_post, post_info, removal, unescape_reddit,
)
from bot.replay import self_post_with_images
from bot.settings import DownloadSettings, RedditSettings
from db.models import Layout
from tests.factories import gallery_post, image_post, t3


def test_gallery_uses_display_order_and_original_urls_with_unescaped_preview():
    post = gallery_post("g1", [("aaa111", "image/jpg"), ("bbb222", "image/png")], base="https://x")
    post["media_metadata"]["aaa111"]["s"]["u"] = "https://preview.redd.it/aaa111.jpg?width=640&amp;s=abc"
    plan = plan_post(post, media_url="https://i.redd.it")
    assert plan.layout is Layout.GALLERY and not plan.skipped
    assert [ref.media_id for ref in plan.images] == ["aaa111", "bbb222"]
    assert plan.images[0].urls == ("https://i.redd.it/aaa111.jpg", "https://preview.redd.it/aaa111.jpg?width=640&s=abc")
    assert plan.images[1].urls[0] == "https://i.redd.it/bbb222.png"
    # Only trailing slashes go from reddit.media_url; a path of its own is kept whole.
    assert plan_post(post, media_url="https://i.redd.it/").images[1].urls[0] == "https://i.redd.it/bbb222.png"
    assert plan_post(post, media_url="https://cdn.example/MAX//").images[1].urls[0] == (
        "https://cdn.example/MAX/bbb222.png"
    )


def test_gallery_skips_failed_and_animated_items_on_its_last_look():
    post = gallery_post("g2", [("a1", "image/png"), ("b2", "image/gif"), ("c3", "image/png")])
    post["media_metadata"]["a1"] = {"status": "failed"}
    post["media_metadata"]["b2"]["e"] = "AnimatedImage"
    plan = plan_post(post, decide_unprocessed=True)
    assert plan.layout is Layout.SINGLE and [ref.media_id for ref in plan.images] == ["c3"]
    assert "item 0: status 'failed'" in plan.notes
    post["gallery_data"]["items"].insert(0, {"media_id": "gone0"})  # listed, but absent from media_metadata
    plan = plan_post(post, decide_unprocessed=True)
    assert [ref.media_id for ref in plan.images] == ["c3"] and plan.notes[0] == "item 0: no media metadata"
    del post["media_metadata"]["c3"]
    plan = plan_post(post, decide_unprocessed=True)
    # The first three reasons only, so a long gallery gives a readable skip.
    assert plan.layout is Layout.GALLERY and plan.skip_reason == (
        "gallery without a usable image (item 0: no media metadata; item 1: status 'failed'; "
        "item 2: 'AnimatedImage', not a still image)"
    )


def test_a_gallery_still_processing_is_deferred_until_every_item_is_final():
    # Seconds after posting, Reddit lists every item but has processed only some of them.
    post = gallery_post("g3", [("u1", "image/png"), ("v2", "image/png"), ("w3", "image/jpg")])
    valid = dict(post["media_metadata"])
    post["media_metadata"]["u1"] = {"status": "unprocessed"}
    post["media_metadata"]["w3"] = {"status": "failed"}
    plan = plan_post(post)
    assert plan.deferred and not plan.skipped and not plan.images and plan.layout is Layout.GALLERY
    assert plan.defer_reason == "gallery: images still processing on Reddit (item 0 'unprocessed', item 2 'failed')"
    many = gallery_post("g3b", [(f"p{n}", "image/png") for n in range(5)])
    many["media_metadata"] = {media_id: {"status": "unprocessed"} for media_id in many["media_metadata"]}
    assert plan_post(many).defer_reason == (
        "gallery: images still processing on Reddit (item 0 'unprocessed', item 1 'unprocessed', item 2 'unprocessed')"
    )
    post["media_metadata"] = valid
    plan = plan_post(post)
    assert not plan.deferred and plan.layout is Layout.GALLERY
    assert [ref.media_id for ref in plan.images] == ["u1", "v2", "w3"]


def test_image_post_is_provisionally_single():
    plan = plan_post(image_post("i1", "https://i.redd.it/abc.jpg"))
    assert plan.layout is Layout.SINGLE and plan.images[0].urls[0] == "https://i.redd.it/abc.jpg"


def test_states_with_reasons():
    cases = {
        "removed (moderator)": t3("r1", removed_by_category="moderator", selftext="[removed]"),
        "deleted by its author": t3("d1", author=None, removed_by_category="deleted", selftext="[deleted]"),
        "crosspost of t3_par from r/OldSchoolCool": t3(
            "x1", crosspost_parent="t3_par",
            crosspost_parent_list=[t3("par", subreddit="OldSchoolCool", subreddit_name_prefixed="r/OldSchoolCool")],
        ),
        "video post": t3("v1", is_video=True, domain="v.redd.it", is_self=False),
        "NSFW post (reddit.allow_nsfw is off)": image_post("n1", "https://i.redd.it/n.jpg", over_18=True),
        "text post without an image": t3("s1"),
        "not a post object: list": [t3("l1")],
    }
    for expected, post in cases.items():
        plan = plan_post(post)
        # The skip is stored with the plan's layout (scrape writes plan.layout.value).
        assert plan.skip_reason == expected and plan.layout is Layout.UNKNOWN, (expected, plan)
    assert not plan_post(image_post("n2", "https://i.redd.it/n.jpg", over_18=True), allow_nsfw=True).skipped
    assert post_info(cases["removed (moderator)"]).removed
    assert post_info(cases["deleted by its author"]).author is None


def test_deletion_and_removal_as_praw_presents_them():
    # PRAW reads an author of "[deleted]" as None; Reddit often leaves removed_by_category null.
    deleted = image_post("d2", "https://i.redd.it/d2.jpg", author=None, selftext="[deleted]",
                         removed_by_category=None, is_robot_indexable=False)
    deleted["author"] = None
    assert plan_post(deleted).skip_reason == "deleted by its author"
    assert post_info(deleted).removed and post_info(deleted).author is None
    deleted_link = dict(deleted, selftext="")  # a link post's text was empty before, and stays so
    assert plan_post(deleted_link).skip_reason == "deleted by its author"
    filtered = image_post("f1", "https://i.redd.it/f1.jpg", removed_by_category=None, is_robot_indexable=False)
    assert plan_post(filtered).skip_reason == "removed (no longer indexable)"
    removed = image_post("r2", "https://i.redd.it/r2.jpg", selftext="[removed]", removed_by_category=None)
    assert plan_post(removed).skip_reason == "removed by the moderators"
    # A deleted *account*: the post itself is live.
    orphan = image_post("o1", "https://i.redd.it/o1.jpg")
    orphan["author"] = None
    assert not plan_post(orphan).skipped and not post_info(orphan).removed


def test_raw_json_is_not_unescaped_and_escaped_json_is_unescaped_once():
    raw = "https://i.redd.it/x.jpg?width=640&region=eu&lthumb=true"
    plan = plan_post(image_post("rj1", raw))
    assert plan.images[0].urls == (raw,)
    escaped = image_post("rj2", raw.replace("&", "&amp;"))  # an old dump without raw_json
    assert plan_post(escaped).images[0].urls == (raw,)
    twice = image_post("rj3", "https://i.redd.it/y.jpg?a=1&amp;amp;b=2")
    assert plan_post(twice).images[0].urls == ("https://i.redd.it/y.jpg?a=1&amp;b=2",)
    comments = [{"author": "op", "body": "B&W original: https://i.redd.it/bw.png?width=960&lthumb=true"}]
    assert find_original_link(comments, "op") == "https://i.redd.it/bw.png?width=960&lthumb=true"
    escaped_comments = [{"author": "op", "body": "B&amp;W original: https://i.redd.it/bw.png?a=1&amp;b=2"}]
    assert find_original_link(escaped_comments, "op") == "https://i.redd.it/bw.png?a=1&b=2"


def _link_post(post_id: str, url: str) -> dict:
    """A link post as Reddit sent them in 2016-2017: no preview, no image hint."""
    domain = url.split("/")[2]
    return t3(post_id, is_self=False, domain=domain, post_hint="link", url=url, url_overridden_by_dest=url,
              thumbnail="default")


def test_imgur_without_extension_gifv_and_reddituploads():
    plan = plan_post(_link_post("im1", "http://i.imgur.com/y33R4rW"))
    assert plan.layout is Layout.SINGLE and plan.images[0].urls == ("https://i.imgur.com/y33R4rW.jpg",)
    assert plan_post(_link_post("im2", "https://i.imgur.com/AbCdE12.gifv")).skip_reason == (
        "video post (a .gifv link is a video)"
    )
    signed = "https://i.reddituploads.com/2f1e4d3c2b1a49f8a7e6d5c4b3a29180?fit=max&h=1536&w=1536&s=5b1a8e2c9d7f3b4a"
    plan = plan_post(_link_post("ru1", signed.replace("&", "&amp;")))
    assert plan.layout is Layout.SINGLE and plan.images[0].urls == (signed,)
    assert AddressPolicy(DownloadSettings().allowed_hosts, []).host_allowed("i.reddituploads.com")


def test_a_text_posts_inline_images_are_a_gallery_in_the_order_the_text_links_them():
    post = self_post_with_images("tp1", [("zz9", "image/png"), ("aa1", "image/jpg")], text="Before and after:")
    post["media_metadata"] = dict(reversed(post["media_metadata"].items()))  # JSON key order decides nothing
    post["media_metadata"]["unlinked7"] = dict(post["media_metadata"]["aa1"], id="unlinked7")
    plan = plan_post(post, media_url="https://i.redd.it")
    assert plan.layout is Layout.GALLERY and not plan.skipped
    assert [ref.media_id for ref in plan.images] == ["zz9", "aa1"]
    assert plan.images[0].urls[0] == "https://i.redd.it/zz9.png"
    post["media_metadata"]["zz9"] = {"status": "unprocessed"}
    assert plan_post(post).defer_reason == "text post: images still processing on Reddit (item 0 'unprocessed')"
    last_look = plan_post(post, decide_unprocessed=True)
    assert not last_look.deferred and [ref.media_id for ref in last_look.images] == ["aa1"]


def test_original_link_only_from_the_author():
    comments = [
        {"author": "stranger", "body": "original: https://i.imgur.com/fake123.jpg"},
        {"author": "op", "body": "Thanks! [Original](https://imgur.com/AbCd123) from the archive."},
    ]
    assert find_original_link(comments, "op") == "https://i.imgur.com/AbCd123.jpg"
    assert find_original_link(comments, None) is None
    assert find_original_link([{"author": "op", "body": "nice https://i.redd.it/x.png"}], "op") is None
    assert normalize_image_url("https://imgur.com/a/album1") is None


def test_the_word_original_counts_in_words_and_link_text_not_in_a_url():
    in_url = {"author": "op", "body": "Full size: https://i.redd.it/original_colorized_4k.png"}
    assert find_original_link([in_url], "op") is None
    before_in_url = {"author": "op", "body": "https://i.imgur.com/before2after.jpg"}
    assert find_original_link([before_in_url], "op") is None
    link_text = {"author": "op", "body": "[Original scan](https://i.redd.it/bw1.png) from the archive"}
    assert find_original_link([in_url, link_text], "op") == "https://i.redd.it/bw1.png"


# -- property: Reddit-shaped JSON with missing, null or wrongly typed fields ------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["https://i.redd.it/a.png", "[deleted]", "image", "t3_abc", "Image", "valid", "image/png"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=12)
KEYS = ["id", "author", "title", "url", "url_overridden_by_dest", "is_gallery", "gallery_data", "media_metadata",
        "crosspost_parent_list", "crosspost_parent", "removed_by_category", "selftext", "over_18", "is_video",
        "post_hint", "preview", "created_utc", "score", "num_comments", "subreddit", "domain", "is_self"]


@st.composite
def mangled_posts(draw):
    base = draw(st.sampled_from([
        t3("p1"),
        image_post("p2", "https://i.redd.it/p2.jpg"),
        gallery_post("p3", [("m1", "image/png"), ("m2", "image/jpg")]),
    ]))
    post = dict(base)
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=6)):
        action = draw(st.sampled_from(["drop", "null", "replace"]))
        if action == "drop":
            post.pop(key, None)
        elif action == "null":
            post[key] = None
        else:
            post[key] = draw(json_values)
    if draw(st.booleans()) and isinstance(post.get("media_metadata"), dict):
        for meta_key in list(post["media_metadata"]):
            post["media_metadata"][meta_key] = draw(json_values)
    return post


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post=st.one_of(mangled_posts(), json_values))
def test_parser_never_crashes(post):
    plan = plan_post(post)
    assert plan.layout in Layout
    assert plan.skipped or plan.images or plan.deferred
    assert not (plan.deferred and (plan.skipped or plan.images))
    if plan.skipped:
        assert isinstance(plan.skip_reason, str) and plan.skip_reason
    for ref in plan.images:
        assert ref.urls and all(url.startswith(("http://", "https://")) for url in ref.urls)
    try:
        post_info(post)
    except ValueError:
        pass  # MalformedPostError: logged and skipped by the scrape
    find_original_link([post] if isinstance(post, dict) else [], "colorist")


def test_a_crash_inside_the_parser_becomes_a_skip_naming_the_error(monkeypatch):
    # The safety net itself: whatever the planner raises, the scrape gets a skip, never the exception.
    def crash(*args):
        raise KeyError("media_metadata")

    monkeypatch.setattr(layout, "_plan", crash)
    plan = plan_post(image_post("c1", "https://i.redd.it/c1.jpg"))
    assert plan.layout is Layout.UNKNOWN and plan.skip_reason == "unreadable post JSON: KeyError"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post=st.one_of(mangled_posts(), json_values))
def test_odd_json_is_read_not_caught(post):
    # test_parser_never_crashes would pass with a planner that raises on everything (its safety net turns
    # the crash into a skip): every odd post must be decided by the readers themselves.
    plan = plan_post(post)
    assert not (plan.skip_reason or "").startswith("unreadable post JSON"), plan.skip_reason


@pytest.mark.parametrize("value, stored", [
    (7, 7), (-7, -7), (3.9, 3), (-3.9, -3), (2**31 - 1, 2**31 - 1), (2**31, 2**31 - 1), (10**30, 2**31 - 1),
    (-(10**30), -(2**31 - 1)), (1e300, 2**31 - 1), (float("nan"), 0), (float("inf"), 0), (True, 0), ("12", 0),
    (None, 0),
])
def test_score_and_comment_counts_fit_a_32_bit_column(value, stored):
    info = post_info(t3("s1", score=value, num_comments=value))
    assert (info.score, info.num_comments) == (stored, stored)


def test_stored_fields_of_a_post():
    info = post_info(t3("abc123", title="Lincoln, 1865", author="a" * 80, subreddit="s" * 80, created_utc=1_700_000_000))
    assert info.reddit_id == "abc123" and info.title == "Lincoln, 1865"
    assert info.author == "a" * 64 and info.subreddit == "s" * 64
    assert info.created_utc == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert not info.nsfw and not info.removed
    assert post_info(t3("n1", over_18=True)).nsfw
    assert post_info(t3("o1", created_utc="1372670000")).created_utc == datetime(2013, 7, 1, 9, 13, 20,
                                                                                 tzinfo=timezone.utc)
    link = post_info(image_post("l1", "https://i.redd.it/l1.jpg"))
    assert (link.permalink, link.url) == ("/r/colorization/comments/l1/untitled_1950/", "https://i.redd.it/l1.jpg")
    odd = post_info(dict(t3("o2", author="[deleted]"), subreddit=None, title=None, permalink=7, url=None))
    assert (odd.author, odd.subreddit, odd.title, odd.permalink, odd.url) == (None, "", "", "", "")
    before = datetime.now(timezone.utc)
    assert post_info(t3("o3", created_utc="yesterday")).created_utc >= before  # unreadable: taken as now


@pytest.mark.parametrize("reddit_id", ["", "ABC", "a-b", "a" * 17, None, 12])
def test_a_post_without_a_valid_id_cannot_be_stored(reddit_id):
    # The scrape logs the message and counts the entry as malformed: it must show the id it got.
    with pytest.raises(MalformedPostError, match=f"^post without a valid id: {re.escape(repr(reddit_id))}$"):
        post_info(dict(t3("x"), id=reddit_id))
    assert post_info(t3("a" * 16)).reddit_id == "a" * 16


def test_a_malformed_post_is_reported_in_one_line_of_at_most_200_characters():
    with pytest.raises(MalformedPostError, match="^not a post object: list$"):
        post_info([t3("l1")])
    with pytest.raises(MalformedPostError) as caught:
        post_info(dict(t3("x"), id="A" * 500))
    assert str(caught.value) == ("post without a valid id: '" + "A" * 500)[:200]


@pytest.mark.parametrize("text, unescaped", [
    ("no entities", "no entities"),
    ("B&amp;W &lt;1920&gt;", "B&W <1920>"),
    ("&amp;lt;", "&lt;"),  # once, not twice
    ("a=1&region=eu&amp;", "a=1&region=eu&amp;"),  # a bare & says the text is raw
])
def test_reddit_escaping_is_undone_only_where_it_is(text, unescaped):
    assert unescape_reddit(text) == unescaped


@pytest.mark.parametrize("url", [
    "https://i.redd.it/a b.jpg", "https://i.redd.it/a\tb.jpg", "https://i.redd.it/a\x00.jpg", "ftp://i.redd.it/a.jpg",
    "https:///a.jpg", "javascript:alert(1)//a.jpg", "http://[::1/a.jpg",
])
def test_a_link_that_is_no_plain_http_url_is_not_an_image(url):
    plan = plan_post(_link_post("u1", url) | {"post_hint": "image"})
    assert plan.skipped and plan.skip_reason.startswith("link is not an image"), plan


@pytest.mark.parametrize("changes, reason", [
    ({"domain": "youtube.com"}, "video post"),
    ({"domain": "youtu.be"}, "video post"),
    ({"post_hint": "rich:video"}, "video post"),
    ({"post_hint": "hosted:video"}, "video post"),
    ({"url_overridden_by_dest": "https://i.imgur.com/Clip123.MP4"}, "video post (a .mp4 link is a video)"),
    ({"url": "https://v.example/c.webm?x=1"}, "video post (a .webm link is a video)"),
    ({"url": "https://v.example/clip.v2.MOV"}, "video post (a .mov link is a video)"),
    ({"is_video": True}, "video post"),
    ({"domain": "v.redd.it"}, "video post"),
])
def test_videos_are_recognised_by_flag_host_hint_or_extension(changes, reason):
    assert plan_post(image_post("v1", "https://i.redd.it/v1.jpg") | changes).skip_reason == reason


def test_a_gallery_is_known_by_its_flag_or_its_gallery_data_alone():
    post = gallery_post("g6", [("ab1", "image/png"), ("cd2", "image/png")])
    unflagged = {key: value for key, value in post.items() if key != "is_gallery"}
    assert [ref.media_id for ref in plan_post(unflagged).images] == ["ab1", "cd2"]
    # Reddit sends gallery_data null once a gallery's items are gone; its link is no image either way.
    emptied = post | {"gallery_data": None}
    assert plan_post(emptied).skip_reason == "gallery without a usable image (no items)"


def test_the_default_gallery_limit_is_the_settings_default():
    post = gallery_post("g7", [(f"m{n}", "image/jpeg") for n in range(9)])
    assert len(plan_post(post).images) == RedditSettings().max_gallery_images


def test_a_gallery_item_whose_media_id_is_no_string_is_noted_not_looked_up():
    post = gallery_post("g8", [("ok1", "image/png"), ("ok2", "image/png")])
    post["gallery_data"]["items"].insert(0, {"media_id": ["ok1"]})  # unhashable: a lookup would raise
    plan = plan_post(post)
    assert plan.notes == ("item 0: no media metadata",) and [ref.media_id for ref in plan.images] == ["ok1", "ok2"]


def test_a_gallery_stops_at_max_gallery_images_and_notes_what_it_passed_over():
    post = gallery_post("g4", [(f"m{n}", "image/jpeg") for n in range(5)], base="https://x")
    post["gallery_data"]["items"].insert(1, "not an item")
    post["media_metadata"]["m1"]["e"] = "AnimatedImage"
    plan = plan_post(post, max_gallery_images=3)
    assert [ref.media_id for ref in plan.images] == ["m0", "m2", "m3"]
    assert plan.notes == ("item 1: not an object", "item 2: 'AnimatedImage', not a still image")
    assert plan.images[0].urls == ("https://i.redd.it/m0.jpg", post["media_metadata"]["m0"]["s"]["u"])


def test_a_gallery_item_with_an_odd_id_or_type_keeps_only_its_preview_url():
    post = gallery_post("g5", [("ok1", "image/png"), ("two", "image/png")], base="https://x")
    post["media_metadata"]["ok1"]["m"] = "image/tiff"  # no direct URL can be built for it
    plan = plan_post(post)
    assert plan.images[0].urls == (post["media_metadata"]["ok1"]["s"]["u"],)
    del post["media_metadata"]["ok1"]["s"]
    plan = plan_post(post)
    assert plan.layout is Layout.SINGLE and plan.notes == ("item 0: no usable URL",)
    assert plan_post(post | {"gallery_data": {"items": []}, "is_gallery": True}).skip_reason == (
        "gallery without a usable image (no items)"
    )


def test_media_ids_in_mixed_case_are_linked_and_get_a_direct_url():
    post = self_post_with_images("tp3", [("Ab9Cd", "image/png"), ("xY7z", "image/jpg")], base="https://x")
    plan = plan_post(post, media_url="https://i.redd.it")
    assert [ref.urls[0] for ref in plan.images] == ["https://i.redd.it/Ab9Cd.png", "https://i.redd.it/xY7z.jpg"]


def test_a_metadata_key_that_is_no_media_id_is_passed_over_not_read_as_a_pattern():
    post = self_post_with_images("tp4", [("abc", "image/png"), ("def", "image/png")], base="https://x")
    metadata = post["media_metadata"]
    # "a(c" would be a broken regular expression, "d.f" one that matches "def" in the text.
    post["media_metadata"] = {"a(c": metadata["abc"], "d.f": metadata["def"], **metadata}
    assert [ref.media_id for ref in plan_post(post).images] == ["abc", "def"]


def test_only_a_text_posts_body_links_inline_images():
    post = self_post_with_images("tp5", [("abc", "image/png"), ("def", "image/png")], base="https://x")
    link_post = post | {"is_self": False, "url": "https://i.redd.it/tp5.jpg", "url_overridden_by_dest": None}
    plan = plan_post(link_post)
    assert plan.layout is Layout.SINGLE and plan.images[0].urls == ("https://i.redd.it/tp5.jpg",)


def test_a_text_post_links_an_image_by_its_whole_id_only():
    post = self_post_with_images("tp2", [("abc", "image/png"), ("def", "image/png")], base="https://x")
    post["selftext"] = "see https://preview.redd.it/xabc.png and https://preview.redd.it/def.png"
    assert [ref.media_id for ref in plan_post(post).images] == ["def"]


def test_the_preview_is_a_second_copy_or_the_image_of_an_image_hint_only():
    post = image_post("p1", "https://i.redd.it/p1.jpg")
    post["preview"]["images"][0]["source"]["url"] = "https://preview.redd.it/p1.jpg?s=1&amp;w=2"
    assert plan_post(post).images[0].urls == ("https://i.redd.it/p1.jpg", "https://preview.redd.it/p1.jpg?s=1&w=2")
    page = dict(post, url="https://example.com/page", url_overridden_by_dest="https://example.com/page")
    assert plan_post(page).images[0].urls == ("https://preview.redd.it/p1.jpg?s=1&w=2",)  # post_hint is image
    assert plan_post(page | {"post_hint": "link"}).skip_reason == "link is not an image: 'https://example.com/page'"
    same = image_post("p2", "https://i.redd.it/p2.jpg")
    assert plan_post(same).images[0].urls == ("https://i.redd.it/p2.jpg",)  # the same URL is not tried twice


def test_a_link_post_tries_its_destination_first_and_reads_url_alone_in_older_json():
    both = _link_post("d1", "https://i.redd.it/dest.png") | {"url": "https://i.redd.it/url.png"}
    assert plan_post(both).images[0].urls == ("https://i.redd.it/dest.png", "https://i.redd.it/url.png")
    only_dest = both | {"url": "https://www.reddit.com/r/colorization/comments/d1/"}
    assert plan_post(only_dest).images[0].urls == ("https://i.redd.it/dest.png",)
    older = {key: value for key, value in both.items() if key != "url_overridden_by_dest"}
    assert plan_post(older).images[0].urls == ("https://i.redd.it/url.png",)


@pytest.mark.parametrize("url, shown", [
    ("https://example.com", "'https://example.com'"),  # no path at all
    (None, "''"),
    ("https://example.com/" + "p" * 300, repr(("https://example.com/" + "p" * 300)[:200])),  # its first 200
])
def test_a_link_that_is_no_image_is_named_in_the_skip(url, shown):
    post = _link_post("n1", "https://example.com/x") | {"url": url, "url_overridden_by_dest": url}
    assert plan_post(post).skip_reason == f"link is not an image: {shown}"


@pytest.mark.parametrize("url, direct", [
    ("https://imgur.com/abcde", "https://i.imgur.com/abcde.jpg"),  # 5 characters: the shortest id
    ("https://m.imgur.com/abcdefghij", "https://i.imgur.com/abcdefghij.jpg"),  # 10: the longest
    ("https://www.imgur.com/abcd", None),
    ("https://www.imgur.com/AbCdE", "https://i.imgur.com/AbCdE.jpg"),
    ("https://imgur.com/abcdefghijk", None),
    ("https://imgur.com/gallery/abcdef", None),
    ("https://example.com/abcdef", None),
    ("https://i.redd.it/x.PNG", "https://i.redd.it/x.PNG"),
    ("https://i.redd.it/x.png?width=960", "https://i.redd.it/x.png?width=960"),
    ("https://i.reddituploads.com/" + "a" * 16, "https://i.reddituploads.com/" + "a" * 16),
    ("https://i.reddituploads.com/" + "a" * 64, "https://i.reddituploads.com/" + "a" * 64),
    ("https://i.reddituploads.com/" + "aB3" * 6, "https://i.reddituploads.com/" + "aB3" * 6),
    ("https://i.reddituploads.com/" + "a" * 15, None),
    ("https://i.reddituploads.com/" + "a" * 65, None),
    ("https://i.redd.it/a b.png", None),
])
def test_direct_image_urls(url, direct):
    assert normalize_image_url(url) == direct


@pytest.mark.parametrize("body, found", [
    ("Original: https://i.redd.it/o1.png.", "https://i.redd.it/o1.png"),
    ("source -> https://i.redd.it/o2.jpg!", "https://i.redd.it/o2.jpg"),
    ("B/W https://i.redd.it/o3.png", "https://i.redd.it/o3.png"),
    ("black and white: https://i.redd.it/o4.png", "https://i.redd.it/o4.png"),
    ("the uncolorised scan https://i.redd.it/o5.png", "https://i.redd.it/o5.png"),
    ("colour https://i.redd.it/c.png, original https://i.redd.it/o6.png", "https://i.redd.it/o6.png"),
    ("colours https://i.redd.it/c1.png https://i.redd.it/c2.png, original https://i.redd.it/o10.png",
     "https://i.redd.it/o10.png"),
    ("original: https://imgur.com/AbC12X.", "https://i.imgur.com/AbC12X.jpg"),  # punctuation off, the id kept
    ("https://i.redd.it/o7.png is the original", "https://i.redd.it/o7.png"),
    ("original: https://imgur.com/a/album1 https://i.redd.it/o8.png", "https://i.redd.it/o8.png"),
    ("originally https://i.redd.it/o9.png", "https://i.redd.it/o9.png"),
    ("unoriginal joke https://i.redd.it/x.png", None),
])
def test_the_originals_link_in_the_authors_comment(body, found):
    assert find_original_link([{"author": "op", "body": body}], "op") == found


def test_only_the_authors_readable_comments_count():
    comments = ["not a comment", {"author": "op", "body": None}, {"author": "op", "body": "original https://i.redd.it/1.png"}]
    assert find_original_link(comments, "op") == "https://i.redd.it/1.png"
    assert find_original_link(comments, "[deleted]") is None
    # Every deleted account shows as "[deleted]" (None through PRAW): such a comment is nobody's in particular.
    for gone in ("[deleted]", None, ""):
        assert find_original_link([{"author": gone, "body": "original https://i.redd.it/2.png"}], gone) is None


@pytest.mark.parametrize("post, reason", [
    (t3("x2", crosspost_parent_list=[t3("par2", subreddit="pics")]), "crosspost of t3_par2 from r/pics"),
    (t3("x3", crosspost_parent_list=[{"subreddit": "pics", "id": "par3"}]), "crosspost of t3_par3 from pics"),
    (t3("x4", crosspost_parent="t3_par4"), "crosspost of t3_par4 from ?"),
    (t3("x5", crosspost_parent_list=["odd"]), "crosspost of ? from ?"),
])
def test_a_crosspost_names_its_parent_and_where_it_is_from(post, reason):
    assert plan_post(post).skip_reason == reason


@pytest.mark.parametrize("changes, reason", [
    ({"removed_by_category": "copyright_takedown"}, "removed (copyright_takedown)"),
    ({"removed": True}, "removed by the moderators"),
    ({"author": "[deleted]", "is_robot_indexable": False}, "deleted by its author"),
    ({"author": "[deleted]"}, None),  # a deleted account: the post lives
    ({"is_robot_indexable": True}, None),
])
def test_why_a_post_is_gone(changes, reason):
    assert removal(image_post("r1", "https://i.redd.it/r1.jpg") | changes) == reason
