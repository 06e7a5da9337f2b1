"""The post-layout parser: Reddit's shapes, and never a crash on odd JSON."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.download import AddressPolicy
from bot.layout import find_original_link, normalize_image_url, plan_post, post_info
from bot.replay import gallery_post, image_post, self_post_with_images, t3
from bot.settings import DownloadSettings
from db.models import Layout


def test_gallery_uses_display_order_and_original_urls_with_unescaped_preview():
    post = gallery_post("g1", [("aaa111", "image/jpg"), ("bbb222", "image/png")], base="https://x")
    post["media_metadata"]["aaa111"]["s"]["u"] = "https://preview.redd.it/aaa111.jpg?width=640&amp;s=abc"
    plan = plan_post(post, media_url="https://i.redd.it")
    assert plan.layout is Layout.GALLERY and not plan.skipped
    assert [ref.media_id for ref in plan.images] == ["aaa111", "bbb222"]
    assert plan.images[0].urls == ("https://i.redd.it/aaa111.jpg", "https://preview.redd.it/aaa111.jpg?width=640&s=abc")
    assert plan.images[1].urls[0] == "https://i.redd.it/bbb222.png"


def test_gallery_skips_failed_and_animated_items_on_its_last_look():
    post = gallery_post("g2", [("a1", "image/png"), ("b2", "image/gif"), ("c3", "image/png")])
    post["media_metadata"]["a1"] = {"status": "failed"}
    post["media_metadata"]["b2"]["e"] = "AnimatedImage"
    plan = plan_post(post, decide_unprocessed=True)
    assert plan.layout is Layout.SINGLE and [ref.media_id for ref in plan.images] == ["c3"]
    assert "item 0: status 'failed'" in plan.notes
    del post["media_metadata"]["c3"]
    plan = plan_post(post, decide_unprocessed=True)
    assert plan.skipped and "gallery without a usable image" in plan.skip_reason


def test_a_gallery_still_processing_is_deferred_until_every_item_is_final():
    # Seconds after posting, Reddit lists every item but has processed only some of them.
    post = gallery_post("g3", [("u1", "image/png"), ("v2", "image/png"), ("w3", "image/jpg")])
    valid = dict(post["media_metadata"])
    post["media_metadata"]["u1"] = {"status": "unprocessed"}
    post["media_metadata"]["w3"] = {"status": "failed"}
    plan = plan_post(post)
    assert plan.deferred and not plan.skipped and not plan.images
    assert plan.defer_reason == "gallery: images still processing on Reddit (item 0 'unprocessed', item 2 'failed')"
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
        "NSFW post": image_post("n1", "https://i.redd.it/n.jpg", over_18=True),
        "text post without an image": t3("s1"),
    }
    for expected, post in cases.items():
        plan = plan_post(post)
        assert plan.skipped and expected in plan.skip_reason, (expected, plan)
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
