"""Real PRAW against the replay server over loopback, storing into a real SQLite file."""

from __future__ import annotations

import numpy as np
import prawcore
import pytest
from sqlalchemy import func, select

from bot.replay import (
    Fault, as_deleted, as_removed, build_snapshot, gallery_post, image_post, self_post_with_images, t1, t3,
)
from bot.scrape import RateLimitedError
from colorizer.images import decode
from db.models import Image, JobRun, Post, PostImage
from eval.split import split_composite

from .conftest import Harness
from tests.factories import color_scene, composite_file, encoded, exif_rotated_jpeg, gray_copy, pair


def posts(sessions) -> dict[str, Post]:
    with sessions() as session:
        return {post.reddit_id: post for post in session.scalars(select(Post))}


def roles(sessions, reddit_id: str) -> dict[str, bytes]:
    with sessions() as session:
        rows = session.execute(
            select(PostImage.role, Image.data).join(Image).join(Post).where(Post.reddit_id == reddit_id)
        ).all()
    return {role: data for role, data in rows}


def runs(sessions) -> list[JobRun]:
    with sessions() as session:
        return list(session.scalars(select(JobRun).order_by(JobRun.id)))


@pytest.fixture
def layouts_server(server):
    pairs = [pair(seed) for seed in range(4)]
    snapshot = build_snapshot(pairs, layouts=["gallery", "composite", "comment-link", "single"], compose=composite_file)
    for post in reversed(snapshot.posts):
        server.add_post(post, snapshot.comments.get(post["id"]))
    for name, data in snapshot.images.items():
        server.add_image(name, data)
    return server, pairs


def test_every_layout_and_idempotent_rerun(layouts_server, sessions):
    server, pairs = layouts_server
    harness = Harness(server, sessions)
    report = harness.scrape()
    assert (report.new, report.fetched, report.skipped) == (4, 3, 1)
    stored = posts(sessions)
    assert {rid: (p.layout, p.state) for rid, p in stored.items()} == {
        "p00000": ("gallery", "fetched"),
        "p00001": ("composite", "fetched"),
        "p00002": ("comment-link", "fetched"),
        "p00003": ("single", "skipped"),
    }
    # The gallery lists the colorization first: the tone test, not the order, decided the roles.
    assert roles(sessions, "p00000") == {"original": pairs[0][0], "colorization": pairs[0][1]}
    assert set(roles(sessions, "p00001")) == {"composite", "original", "colorization"}
    assert roles(sessions, "p00002") == {"original": pairs[2][0], "colorization": pairs[2][1]}
    assert roles(sessions, "p00003") == {"colorization": pairs[3][1]}
    assert "only the colorization" in stored["p00003"].skip_reason

    with sessions() as session:
        counts = (session.scalar(select(func.count(Image.id))), session.scalar(select(func.count(PostImage.id))))
    listing_calls = server.count("/r/colorization/new")
    server.update_post("p00003", score=42)
    again = harness.scrape()
    assert again.new == 0 and again.stopped_at_known and again.seen == 1
    with sessions() as session:
        assert (session.scalar(select(func.count(Image.id))), session.scalar(select(func.count(PostImage.id)))) == counts
    assert posts(sessions)["p00003"].score == 42  # the newest post, refreshed by the walk
    assert server.count("/r/colorization/new") == listing_calls + 1
    assert [run.status for run in runs(sessions)] == ["ok", "ok"]


def test_paging_past_100_posts(harness, sessions, server):
    for number in range(230):
        server.add_post(t3(f"t{number:04d}", created_utc=1_600_000_000 + number, title=f"Text {number}"))
    report = harness.scrape(limit=1000)
    assert report.new == 230 and len(posts(sessions)) == 230
    assert server.count("/r/colorization/new") == 3
    assert all(p.state == "skipped" and p.skip_reason == "text post without an image" for p in posts(sessions).values())


def test_skipped_kinds_are_stored_with_reasons(harness, sessions, server):
    url = server.add_image("c.png", encoded(color_scene(5)))
    server.add_post(t3("rm1", removed_by_category="moderator", selftext="[removed]"))
    server.add_post(t3("dl1", author=None, removed_by_category="deleted", selftext="[deleted]"))
    server.add_post(t3("xp1", crosspost_parent="t3_zz9", crosspost_parent_list=[t3("zz9", subreddit="pics")]))
    server.add_post(t3("vd1", is_video=True, domain="v.redd.it", is_self=False))
    server.add_post(image_post("ns1", url, over_18=True))
    server.add_post({"id": None, "subreddit": "colorization", "created_utc": 1.8e9})  # malformed: logged, not stored
    report = harness.scrape()
    stored = posts(sessions)
    assert report.malformed == 1
    reasons = {rid: p.skip_reason for rid, p in stored.items()}
    assert reasons == {
        "rm1": "removed (moderator)",
        "dl1": "deleted by its author",
        "xp1": "crosspost of t3_zz9 from r/pics",
        "vd1": "video post",
        "ns1": "NSFW post (reddit.allow_nsfw is off)",
    }
    assert stored["rm1"].removed and stored["dl1"].author is None and stored["ns1"].nsfw


def test_removal_after_storing_is_picked_up(layouts_server, sessions):
    server, _pairs = layouts_server
    harness = Harness(server, sessions, refresh_days=100_000)
    harness.scrape()
    server.update_post("p00000", removed_by_category="moderator", selftext="[removed]", score=7)
    harness.scrape()  # p00000 is not the newest: /api/info refreshes it
    post = posts(sessions)["p00000"]
    assert post.removed and post.score == 7 and post.state == "skipped"
    assert post.skip_reason == "removed (moderator) after it was stored"
    assert set(roles(sessions, "p00000")) == {"original", "colorization"}  # nothing lost


def _one_image_post(server, name="g1"):
    original, colorized = pair(11)
    server.add_image(f"{name}c.png", colorized)
    server.add_image(f"{name}o.png", original)
    server.add_post(gallery_post(name, [(f"{name}c", "image/png"), (f"{name}o", "image/png")]))
    return f"/i/{name}c.png"


@pytest.mark.parametrize("kind", ["500", "503", "429", "truncate", "html", "slow"])
def test_image_faults_defer_the_post_and_the_next_run_fetches_it(harness, sessions, server, kind):
    path = _one_image_post(server)
    # Both the original and the preview copy fail, for longer than the fetcher retries.
    server.faults.add(Fault(kind, path=path, times=2 if kind != "slow" else 2, retry_after=0.01, delay_s=2.5))
    server.faults.add(Fault(kind, path=path.replace("/i/", "/preview/"), times=2, retry_after=0.01, delay_s=2.5))
    report = harness.scrape()
    post = posts(sessions)["g1"]
    assert report.deferred == 1 and post.state == "new" and post.attempts == 1
    assert post.last_error and post.layout == "gallery"
    assert runs(sessions)[-1].status == "ok"
    report = harness.scrape()
    post = posts(sessions)["g1"]
    assert report.retried == 1 and post.state == "fetched" and post.last_error is None


@pytest.mark.parametrize("kind, reason", [
    ("bomb", "declares 100000x100000"),
    ("redirect", "169.254.169.254 is a cloud metadata address"),
])
def test_refused_images_skip_the_post_with_the_reason(harness, sessions, server, kind, reason):
    path = _one_image_post(server)
    server.faults.add(Fault(kind, path=path, times=None))
    server.faults.add(Fault(kind, path=path.replace("/i/", "/preview/"), times=None))
    harness.download_settings = harness.download_settings.model_copy(
        update={"allowed_hosts": ["127.0.0.1", "169.254.169.254"]}
    )
    harness.scrape()
    post = posts(sessions)["g1"]
    assert post.state == "skipped" and reason in post.skip_reason


def test_gives_up_after_max_attempts(sessions, server):
    harness = Harness(server, sessions, max_attempts=2)
    path = _one_image_post(server)
    server.faults.add(Fault("html", path="/i/", times=None))
    server.faults.add(Fault("html", path="/preview/", times=None))
    harness.scrape()
    harness.scrape()
    post = posts(sessions)["g1"]
    assert post.state == "skipped" and post.skip_reason.startswith("gave up after 2 attempts")
    assert path


@pytest.mark.parametrize("kind, error", [("503", "ServerError"), ("429", "RateLimitedError")])
def test_listing_faults_fail_the_run_keep_what_was_stored_and_the_next_run_succeeds(
    harness, sessions, server, kind, error
):
    for number in range(150):
        server.add_post(t3(f"t{number:04d}", created_utc=1_600_000_000 + number))
    # Every page after the first fails (prawcore retries a 503 twice itself, then gives up).
    server.faults.add(Fault(kind, path="/r/colorization/new", query="after=", times=None))
    with pytest.raises((prawcore.PrawcoreException, RateLimitedError)):
        harness.scrape(limit=1000)
    assert runs(sessions)[-1].status == "failed" and error in runs(sessions)[-1].error
    assert len(posts(sessions)) == 100  # the first page is kept

    server.faults.clear()
    for number in range(150, 160):
        server.add_post(t3(f"t{number:04d}", created_utc=1_600_000_000 + number))
    # The posts the failed run stored do not stop the walk: the older 50 are not left behind.
    report = harness.scrape(limit=1000)
    assert len(posts(sessions)) == 160 and report.new == 60
    assert [run.status for run in runs(sessions)] == ["failed", "ok"]
    assert harness.scrape(limit=1000).seen == 1


def test_private_and_banned_subreddits_fail_the_run_with_a_reason(harness, sessions, server):
    server.subreddit_status["colorization"] = "private"
    with pytest.raises(prawcore.Forbidden):
        harness.scrape()
    server.subreddit_status["colorization"] = "banned"
    with pytest.raises(prawcore.NotFound):
        harness.scrape()
    assert [run.status for run in runs(sessions)] == ["failed", "failed"]
    assert "Forbidden" in runs(sessions)[0].error


def test_comment_link_needs_the_authors_comment(harness, sessions, server):
    original, colorized = encoded(gray_copy(color_scene(7))), encoded(color_scene(7))
    server.add_image("cl.png", colorized)
    server.add_image("cl-bw.png", original)
    server.add_post(
        image_post("cl1", "{base}/i/cl.png", author="op", num_comments=2),
        [t1("k1", "cl1", "original: {base}/i/cl-bw.png", author="someone"),
         t1("k2", "cl1", "Thanks, the b&w is here: {base}/i/cl-bw.png", author="op")],
    )
    harness.scrape()
    assert posts(sessions)["cl1"].layout == "comment-link"
    assert roles(sessions, "cl1") == {"original": original, "colorization": colorized}


def test_a_fault_plan_given_empty_is_the_one_the_server_uses():
    from bot.replay import FaultPlan, ReplayServer, Snapshot

    plan = FaultPlan()  # faults are added while the server runs; empty, the plan is falsy
    server = ReplayServer(Snapshot(), faults=plan)
    assert server.faults is plan


# -- issue 17: Reddit JSON as the real API sends it, read through real PRAW --------------------


def source_urls(sessions, reddit_id: str) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(
            select(PostImage.role, PostImage.source_url).join(Post).where(Post.reddit_id == reddit_id)
        ).all()
    return {role: url for role, url in rows}


def test_deleted_and_removed_posts_as_praw_reads_them_are_skipped_without_a_download(harness, sessions, server):
    server.add_image("live.png", encoded(color_scene(21)))
    # How Reddit shows a post its author deleted: removed_by_category is null; PRAW makes the author None.
    server.add_post(as_deleted(image_post("dl2", "{base}/i/live.png")))
    server.add_post(as_deleted(image_post("dl3", "{base}/i/live.png", extra={"selftext": ""})) | {"selftext": ""})
    server.add_post(as_removed(image_post("rm2", "{base}/i/live.png"), "reddit"))
    report = harness.scrape()
    stored = posts(sessions)
    assert {rid: p.skip_reason for rid, p in stored.items()} == {
        "dl2": "deleted by its author", "dl3": "deleted by its author", "rm2": "removed (reddit)",
    }
    assert report.fetched == 0 and server.count("/i/") == 0
    assert stored["dl2"].removed and stored["dl2"].author is None


def test_a_post_deleted_after_it_was_stored_is_picked_up(layouts_server, sessions):
    server, _pairs = layouts_server
    harness = Harness(server, sessions, refresh_days=100_000)
    harness.scrape()
    server.delete_post("p00001")  # not the newest: /api/info refreshes it
    harness.scrape()
    post = posts(sessions)["p00001"]
    assert post.removed and post.state == "skipped"
    assert post.skip_reason == "deleted by its author after it was stored"


def _processing_gallery(server, name: str) -> dict:
    """A gallery seconds after posting: colorization and original processed, a third item not yet."""
    original, colorized = pair(13)
    server.add_image(f"{name}c.png", colorized)
    server.add_image(f"{name}o.png", original)
    server.add_image(f"{name}x.png", colorized)
    post = gallery_post(name, [(f"{name}c", "image/png"), (f"{name}o", "image/png"), (f"{name}x", "image/png")])
    final = dict(post["media_metadata"])
    post["media_metadata"][f"{name}x"] = {"status": "unprocessed"}
    server.add_post(post)
    return final


def test_a_gallery_still_processing_is_deferred_and_decided_on_a_later_run(harness, sessions, server):
    final = _processing_gallery(server, "pg1")
    report = harness.scrape()
    post = posts(sessions)["pg1"]
    assert report.deferred == 1 and report.skipped == 0
    assert post.state == "new" and post.attempts == 1 and post.layout == "gallery"
    assert post.last_error == "deferred: gallery: images still processing on Reddit (item 2 'unprocessed')"
    assert server.count("/i/") == 0 and server.count("/preview/") == 0

    server.update_post("pg1", media_metadata=final)
    report = harness.scrape()
    post = posts(sessions)["pg1"]
    assert report.retried == 1 and post.state == "fetched" and post.layout == "gallery" and post.last_error is None
    assert set(roles(sessions, "pg1")) == {"original", "colorization"}


def test_a_gallery_never_done_processing_is_decided_from_its_final_items_on_the_last_attempt(sessions, server):
    harness = Harness(server, sessions, max_attempts=2)
    _processing_gallery(server, "pg2")
    assert harness.scrape().deferred == 1
    harness.scrape()
    post = posts(sessions)["pg2"]
    assert post.state == "fetched" and post.layout == "gallery"
    assert set(roles(sessions, "pg2")) == {"original", "colorization"}


def test_raw_json_urls_reach_the_fetcher_and_the_database_as_sent(harness, sessions, server):
    original, colorized = encoded(gray_copy(color_scene(17))), encoded(color_scene(17))
    server.add_image("rj.png", colorized)
    server.add_image("rj-bw.png", original)
    image = "{base}/i/rj.png?width=640&region=eu&format=png"
    linked = "{base}/i/rj-bw.png?width=960&lthumb=true"
    server.add_post(image_post("rj1", image, author="op", num_comments=1),
                    [t1("rk1", "rj1", f"Original: {linked}", author="op")])
    harness.scrape()
    assert posts(sessions)["rj1"].layout == "comment-link"
    assert source_urls(sessions, "rj1") == {
        "colorization": image.replace("{base}", server.base_url),
        "original": linked.replace("{base}", server.base_url),
    }


def test_a_text_post_with_inline_images_is_read_like_a_gallery(harness, sessions, server):
    original, colorized = pair(19)
    server.add_image("ti1c.png", colorized)
    server.add_image("ti1o.png", original)
    server.add_post(self_post_with_images("ti1", [("ti1c", "image/png"), ("ti1o", "image/png")],
                                          text="Colorized my grandmother's photo. Before and after:"))
    report = harness.scrape()
    post = posts(sessions)["ti1"]
    assert report.fetched == 1 and post.state == "fetched" and post.layout == "gallery"
    assert roles(sessions, "ti1") == {"original": original, "colorization": colorized}


def _busy_thread(server, post_id: str, original_name: str) -> None:
    """Forty strangers' comments, then the poster's "thanks" with the original in a reply to a reply."""
    original, colorized = encoded(gray_copy(color_scene(23))), encoded(color_scene(23))
    server.add_image(f"{post_id}.png", colorized)
    server.add_image(original_name, original)
    chatter = [t1(f"s{number:02d}", post_id, f"Great work #{number}", author=f"fan{number}") for number in range(40)]
    link = t1("op2", post_id, f"Sure, the original: {{base}}/i/{original_name}", author="op", parent_id="t1_q01")
    question = t1("q01", post_id, "Do you have the original?", author="curious", parent_id="t1_op1", replies=[link])
    thanks = t1("op1", post_id, "Thanks everyone!", author="op", replies=[question])
    server.add_post(image_post(post_id, f"{{base}}/i/{post_id}.png", author="op", num_comments=43),
                    chatter + [thanks])


def test_an_original_linked_deep_in_a_busy_thread_is_found_behind_load_more(harness, sessions, server):
    server.comment_limit, server.comment_depth = 20, 2  # Reddit's cut: "load more", "continue this thread"
    _busy_thread(server, "bt1", "bt1-bw.png")
    harness.scrape()
    post = posts(sessions)["bt1"]
    assert post.layout == "comment-link" and post.state == "fetched"
    assert set(roles(sessions, "bt1")) == {"original", "colorization"}
    assert server.count("/api/morechildren") >= 1 and server.count("/comments/bt1/_/") >= 1


def test_comment_expansions_are_bounded_and_skipped_when_the_link_is_in_sight(sessions, server):
    harness = Harness(server, sessions, comment_expansions=1)
    server.comment_limit, server.comment_depth = 20, 2
    _busy_thread(server, "bt2", "bt2-bw.png")  # needs two expansions: more than allowed
    visible = encoded(gray_copy(color_scene(29)))
    server.add_image("bt3.png", encoded(color_scene(29)))
    server.add_image("bt3-bw.png", visible)
    chatter = [t1(f"v{number:02d}", "bt3", "Nice", author=f"fan{number}") for number in range(40)]
    server.add_post(image_post("bt3", "{base}/i/bt3.png", author="op", num_comments=41),
                    [t1("vop", "bt3", "B&W original: {base}/i/bt3-bw.png", author="op"), *chatter])
    harness.scrape()
    stored = posts(sessions)
    assert stored["bt2"].state == "skipped" and "only the colorization" in stored["bt2"].skip_reason
    assert stored["bt3"].layout == "comment-link"
    expansions = server.count("/api/morechildren") + server.count("/comments/bt2/_/") + server.count("/comments/bt3/_/")
    assert expansions == 1  # bt2's one allowed expansion; bt3's link was in the first answer


def test_a_tiff_served_as_an_image_skips_the_post_at_once_with_the_reason(harness, sessions, server):
    path = _one_image_post(server)
    server.add_image(path.removeprefix("/i/"), encoded(color_scene(4, 64, 48), "TIFF"))  # as image/png
    report = harness.scrape()
    post = posts(sessions)["g1"]
    assert (post.state, post.attempts, report.skipped) == ("skipped", 0, 1)
    assert "not a JPEG, PNG, WebP or GIF" in post.skip_reason


def test_a_composite_with_an_exif_orientation_is_split_upright(harness, sessions, server):
    original, colorized = pair(12)
    upright = decode(composite_file(original, colorized))  # 480 wide, 180 high: gray left, colour right
    server.add_image("turned.jpg", exif_rotated_jpeg(upright))
    server.add_post(image_post("turned", f"{server.base_url}/i/turned.jpg"))
    harness.scrape()
    assert posts(sessions)["turned"].layout == "composite"
    halves = {role: decode(data) for role, data in roles(sessions, "turned").items()}
    assert halves["composite"].shape == upright.shape
    expected = split_composite(upright)  # the split of the same composite stored upright, losslessly
    assert expected.orientation == "side-by-side"
    for role, half in (("original", expected.original), ("colorization", expected.colorization)):
        assert np.abs(np.subtract(halves[role].shape[:2], half.shape[:2])).max() <= 3, role
        rows, cols = np.minimum(halves[role].shape[:2], half.shape[:2])
        assert np.abs(halves[role][:rows, :cols].astype(int) - half[:rows, :cols]).mean() < 12, role
