"""The post-layout parser: Reddit's shapes, and never a crash on odd JSON."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.layout import find_original_link, normalize_image_url, plan_post, post_info
from bot.replay import gallery_post, image_post, t3
from db.models import Layout


def test_gallery_uses_display_order_and_original_urls_with_unescaped_preview():
    post = gallery_post("g1", [("aaa111", "image/jpg"), ("bbb222", "image/png")], base="https://x")
    post["media_metadata"]["aaa111"]["s"]["u"] = "https://preview.redd.it/aaa111.jpg?width=640&amp;s=abc"
    plan = plan_post(post, media_url="https://i.redd.it")
    assert plan.layout is Layout.GALLERY and not plan.skipped
    assert [ref.media_id for ref in plan.images] == ["aaa111", "bbb222"]
    assert plan.images[0].urls == ("https://i.redd.it/aaa111.jpg", "https://preview.redd.it/aaa111.jpg?width=640&s=abc")
    assert plan.images[1].urls[0] == "https://i.redd.it/bbb222.png"


def test_gallery_skips_failed_and_animated_items():
    post = gallery_post("g2", [("a1", "image/png"), ("b2", "image/gif"), ("c3", "image/png")])
    post["media_metadata"]["a1"]["status"] = "failed"
    post["media_metadata"]["b2"]["e"] = "AnimatedImage"
    plan = plan_post(post)
    assert plan.layout is Layout.SINGLE and [ref.media_id for ref in plan.images] == ["c3"]
    del post["media_metadata"]["c3"]
    plan = plan_post(post)
    assert plan.skipped and "gallery without a usable image" in plan.skip_reason


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


def test_original_link_only_from_the_author():
    comments = [
        {"author": "stranger", "body": "original: https://i.imgur.com/fake123.jpg"},
        {"author": "op", "body": "Thanks! [Original](https://imgur.com/AbCd123) from the archive."},
    ]
    assert find_original_link(comments, "op") == "https://i.imgur.com/AbCd123.jpg"
    assert find_original_link(comments, None) is None
    assert find_original_link([{"author": "op", "body": "nice https://i.redd.it/x.png"}], "op") is None
    assert normalize_image_url("https://imgur.com/a/album1") is None


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
    assert plan.skipped or plan.images
    if plan.skipped:
        assert isinstance(plan.skip_reason, str) and plan.skip_reason
    for ref in plan.images:
        assert ref.urls and all(url.startswith(("http://", "https://")) for url in ref.urls)
    try:
        post_info(post)
    except ValueError:
        pass  # MalformedPostError: logged and skipped by the scrape
    find_original_link([post] if isinstance(post, dict) else [], "colorist")
