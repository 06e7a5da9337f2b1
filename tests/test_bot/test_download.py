"""The image fetcher against the replay server: SSRF, bombs, caps, retries, bad bodies."""

from __future__ import annotations

import gzip
import io
import struct
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
import urllib3

from bot.download import (
    DownloadError, Fetcher, RefusedError, TransientDownloadError, _retry_after, image_header,
)
from bot.replay import Fault, bomb_png
from bot.settings import DownloadSettings
from tests.factories import color_scene, corrupt_exif_jpeg, encoded


@pytest.fixture
def photo(server):
    data = encoded(color_scene(3))
    server.add_image("photo.png", data)
    return data


def fetcher_for(server, **overrides) -> Fetcher:
    values = server.download_settings(timeout_s=2.0, retries=2, backoff_s=0.01)
    values.update(overrides)
    return Fetcher(DownloadSettings(**values))


class Canary:
    """A listener on 127.0.0.2 (loopback too, but not allowed) that counts who reaches it."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.port = self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_fetch_keeps_the_original_bytes(server, photo):
    got = fetcher_for(server).fetch(f"{server.base_url}/i/photo.png")
    assert got.data == photo and (got.format, got.width, got.height) == ("png", 240, 180)


def test_redirect_to_another_loopback_address_is_refused_before_connecting(server, photo):
    canary = Canary()
    try:
        server.faults.add(Fault("redirect", path="/i/photo.png", location=f"http://127.0.0.2:{canary.port}/secret"))
        # The host is even on the allow-list: the address rule is what refuses it.
        fetcher = fetcher_for(server, allowed_hosts=["127.0.0.1", "127.0.0.2"])
        with pytest.raises(RefusedError) as caught:
            fetcher.fetch(f"{server.base_url}/i/photo.png")
        assert "127.0.0.2 is a loopback address" in str(caught.value)
        assert canary.hits == []
    finally:
        canary.close()


def test_redirect_to_cloud_metadata_is_refused(server, photo):
    server.faults.add(Fault("redirect", path="/i/photo.png", location="http://169.254.169.254/latest/meta-data/"))
    fetcher = fetcher_for(server, allowed_hosts=["127.0.0.1", "169.254.169.254"], allowed_networks=["127.0.0.1/32"])
    with pytest.raises(RefusedError, match="cloud metadata"):
        fetcher.fetch(f"{server.base_url}/i/photo.png")


def test_loopback_needs_allowed_networks_and_hosts_need_the_allow_list(server, photo):
    with pytest.raises(RefusedError, match="loopback"):
        fetcher_for(server, allowed_networks=[]).fetch(f"{server.base_url}/i/photo.png")
    with pytest.raises(RefusedError, match="not in download.allowed_hosts"):
        fetcher_for(server, allowed_hosts=["i.redd.it"]).fetch(f"{server.base_url}/i/photo.png")
    with pytest.raises(RefusedError, match="scheme 'file'"):
        fetcher_for(server).fetch("file:///etc/passwd")
    assert server.count("/i/photo.png") == 0


def test_pixel_bomb_refused_from_its_header_before_the_body_is_read(server):
    bomb = bomb_png()
    server.add_image("bomb.png", bomb)
    with pytest.raises(RefusedError) as caught:
        fetcher_for(server).fetch(f"{server.base_url}/i/bomb.png")
    error = caught.value
    assert error.stage == "header" and "100000x100000" in str(error)
    # Refused after the first chunk: most of the 4 MB body was never read, nothing was decoded.
    assert 0 < error.bytes_read < len(bomb) // 10


def test_byte_cap(server, photo):
    with pytest.raises(RefusedError, match="max_bytes"):
        fetcher_for(server, max_bytes=1000).fetch(f"{server.base_url}/i/photo.png")


def test_429_retry_after_is_honoured_then_succeeds(server, photo):
    server.faults.add(Fault("429", path="/i/photo.png", retry_after=0.3))
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    fetcher = Fetcher(DownloadSettings(**server.download_settings(retries=2, backoff_s=0.01)), sleep=sleep)
    assert fetcher.fetch(f"{server.base_url}/i/photo.png").data == photo
    assert waits == [0.3]


@pytest.mark.parametrize("kind", ["500", "503", "truncate", "html"])
def test_transient_faults_are_retried(server, photo, kind):
    server.faults.add(Fault(kind, path="/i/photo.png", times=2))
    assert fetcher_for(server, retries=2).fetch(f"{server.base_url}/i/photo.png").data == photo
    assert server.count("/i/photo.png") == 3


@pytest.mark.parametrize("kind, message", [
    ("truncate", "truncated|cut short"), ("html", "text/html"), ("503", "HTTP 503"), ("slow", "timed out"),
])
def test_persistent_faults_raise_a_transient_error(server, photo, kind, message):
    server.faults.add(Fault(kind, path="/i/photo.png", times=None, delay_s=1.0))
    with pytest.raises(TransientDownloadError, match=message):
        fetcher_for(server, retries=0, timeout_s=0.3).fetch(f"{server.base_url}/i/photo.png")


def test_not_found_is_not_retried(server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetcher_for(server).fetch(f"{server.base_url}/i/missing.png")
    assert server.count("/i/missing.png") == 1


def test_image_headers_of_every_accepted_format():
    scene = color_scene(1, 64, 48)
    for fmt, name in (("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif")):
        assert image_header(encoded(scene, fmt)) == (name, 64, 48)
    assert image_header(b"\x89PNG\r\n") is None  # needs more bytes
    with pytest.raises(ValueError):
        image_header(b"<!doctype html><html>")


def test_a_video_behind_an_image_link_is_refused_not_retried(server):
    # What Imgur serves for a .gifv/.mp4: an MP4 container, Content-Type video/mp4.
    server.add_image("clip.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(512))
    with pytest.raises(RefusedError, match="video/mp4: a video, not an image"):
        fetcher_for(server).fetch(f"{server.base_url}/i/clip.mp4")
    assert server.count("/i/clip.mp4") == 1


TIFF = encoded(color_scene(4, 64, 48), "TIFF")
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
HTML = b"<!doctype html><html><head><title>Imgur</title></head><body>gone</body></html>"


@pytest.mark.parametrize("data", [TIFF, SVG, HTML], ids=["tiff", "svg", "html"])
def test_a_format_the_project_refuses_is_refused_at_once_even_served_as_jpeg(server, data):
    server.add_image("photo.jpg", data)  # the replay server calls every .jpg image/jpeg
    with pytest.raises(RefusedError, match="not a JPEG, PNG, WebP or GIF"):
        fetcher_for(server, retries=2).fetch(f"{server.base_url}/i/photo.jpg")
    assert server.count("/i/photo.jpg") == 1


def test_a_corrupt_exif_block_fails_the_download_with_the_reason(server):
    server.add_image("poison.jpg", corrupt_exif_jpeg())
    with pytest.raises(DownloadError, match="EXIF block is corrupt"):
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/poison.jpg")


class GzipImageHost:
    """Serves one image gzip-encoded, its Content-Length the encoded size, as CDNs may."""

    def __init__(self, data: bytes):
        body = gzip.compress(data)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/photo.png"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_gzip_encoded_image_is_checked_against_the_bytes_on_the_wire(server, photo):
    assert len(gzip.compress(photo)) > len(photo)  # a PNG does not shrink: the decoded body is the shorter
    host = GzipImageHost(photo)
    try:
        got = fetcher_for(server, retries=0).fetch(host.url)
    finally:
        host.close()
    assert got.data == photo and got.format == "png"


def test_a_redirect_to_a_host_off_the_allow_list_is_refused_before_connecting(server, photo):
    # The canary's address is even allowed (127.0.0.0/8): only the host rule stands between us and it, and
    # it must act on the redirect's URL before any connection is made, not at the connect-time guard.
    canary = Canary()
    try:
        server.faults.add(Fault("redirect", path="/i/photo.png", location=f"http://127.0.0.2:{canary.port}/secret"))
        fetcher = fetcher_for(server, allowed_hosts=["127.0.0.1"], allowed_networks=["127.0.0.0/8"])
        with pytest.raises(RefusedError) as caught:
            fetcher.fetch(f"{server.base_url}/i/photo.png")
        assert caught.value.stage == "host"
        assert "host '127.0.0.2' is not in download.allowed_hosts" in str(caught.value)
        assert canary.hits == []
    finally:
        canary.close()


def test_a_relative_redirect_is_followed_from_the_url_that_gave_it(server, photo):
    server.add_image("moved.png", encoded(color_scene(5, 64, 48)))
    server.faults.add(Fault("redirect", path="/i/photo.png", location="moved.png"))
    got = fetcher_for(server).fetch(f"{server.base_url}/i/photo.png")
    assert (got.url, got.width, got.height) == (f"{server.base_url}/i/moved.png", 64, 48)


def test_a_redirect_loop_stops_after_max_redirects(server, photo):
    server.faults.add(Fault("redirect", path="/i/photo.png", location="/i/photo.png", times=None))
    with pytest.raises(RefusedError, match="more than 2 redirects"):
        fetcher_for(server, max_redirects=2).fetch(f"{server.base_url}/i/photo.png")
    assert server.count("/i/photo.png") == 3  # the first request and two redirects followed, not one more


def test_retries_wait_backoff_doubling_then_give_up(server, photo):
    server.faults.add(Fault("503", path="/i/photo.png", times=None))
    waits = []
    fetcher = Fetcher(DownloadSettings(**server.download_settings(retries=3, backoff_s=0.01)), sleep=waits.append)
    with pytest.raises(TransientDownloadError, match="HTTP 503"):
        fetcher.fetch(f"{server.base_url}/i/photo.png")
    assert waits == [0.01, 0.02, 0.04]
    assert server.count("/i/photo.png") == 4


def test_a_retry_after_longer_than_allowed_gives_up_at_once(server, photo):
    server.faults.add(Fault("429", path="/i/photo.png", retry_after=30))
    waits = []
    fetcher = Fetcher(
        DownloadSettings(**server.download_settings(retries=2, backoff_s=0.01, max_retry_after_s=10)), sleep=waits.append
    )
    with pytest.raises(TransientDownloadError, match="HTTP 429") as caught:
        fetcher.fetch(f"{server.base_url}/i/photo.png")
    assert caught.value.retry_after == 30 and waits == [] and server.count("/i/photo.png") == 1


def test_a_short_retry_after_does_not_shorten_the_backoff(server, photo):
    server.faults.add(Fault("429", path="/i/photo.png", retry_after=0.01))
    waits = []
    fetcher = Fetcher(DownloadSettings(**server.download_settings(retries=1, backoff_s=0.05)), sleep=waits.append)
    assert fetcher.fetch(f"{server.base_url}/i/photo.png").data == photo
    assert waits == [0.05]


def test_retry_after_in_seconds_or_as_an_http_date_in_any_zone():
    now = datetime.now(timezone.utc)
    assert _retry_after("7") == 7.0 and _retry_after(" 1.5 ") == 1.5
    assert _retry_after("-3") == 0.0  # a wait is never negative
    assert _retry_after(None) is None and _retry_after("") is None and _retry_after("soon") is None
    in_two_hours_ahead = (now + timedelta(seconds=60)).astimezone(timezone(timedelta(hours=2)))
    assert _retry_after(format_datetime(in_two_hours_ahead)) == pytest.approx(60, abs=3)
    naive_utc = (now + timedelta(seconds=60)).replace(tzinfo=None)  # "-0000": UTC, says RFC 5322
    assert _retry_after(format_datetime(naive_utc)) == pytest.approx(60, abs=3)
    assert _retry_after(format_datetime(now - timedelta(hours=1))) == 0.0


def test_error_messages_show_the_url_without_credentials_or_query():
    error = DownloadError("https://user:secret@i.redd.it:8443/a/b.png?token=abc#frag", "HTTP 404")
    assert str(error) == "HTTP 404 [fetch] https://i.redd.it:8443/a/b.png"
    assert str(DownloadError("https://i.redd.it/c.png", "HTTP 404")).endswith(" https://i.redd.it/c.png")
    long = "https://i.redd.it/" + "x" * 500
    assert str(DownloadError(long, "r")) == f"r [fetch] {long[:300]}"
    malformed = "http://[::1/" + "y" * 200  # urlsplit raises on the open bracket
    assert str(DownloadError(malformed, "r")) == f"r [fetch] {malformed[:100]!r}"


def _response(body: bytes, headers: dict[str, str]) -> requests.Response:
    """A response whose body ends after ``body`` without the HTTP layer noticing (as when a proxy or an
    HTTP/1.0 peer closes early), so only the fetcher's own length check can tell."""
    response = requests.Response()
    response.status_code = 200
    response.headers = requests.structures.CaseInsensitiveDict(headers)
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=200, preload_content=False, decode_content=True,
        enforce_content_length=False,
    )
    return response


def test_a_body_shorter_than_its_content_length_is_truncated(server, photo):
    fetcher = fetcher_for(server)
    cut = _response(photo[: len(photo) // 2], {"Content-Type": "image/png", "Content-Length": str(len(photo))})
    with pytest.raises(TransientDownloadError, match=f"truncated: {len(photo) // 2} of {len(photo)} bytes"):
        fetcher._read("http://127.0.0.1/i/photo.png", cut, deadline=time.monotonic() + 60)
    whole = _response(photo, {"Content-Type": "image/png", "Content-Length": str(len(photo))})
    assert fetcher._read("http://127.0.0.1/i/photo.png", whole, deadline=time.monotonic() + 60).data == photo


def test_a_gzip_body_is_checked_by_its_bytes_on_the_wire_not_its_decoded_length(server):
    # An uncompressed PNG shrinks a lot under gzip, so its decoded body is longer than the Content-Length:
    # comparing decoded bytes with it would pass a cut-off transfer.
    photo = encoded(np.full((180, 240, 3), 90, np.uint8), compress_level=0)
    wire = gzip.compress(photo)
    assert len(wire) * 10 < len(photo)
    headers = {"Content-Type": "image/png", "Content-Encoding": "gzip", "Content-Length": str(len(wire))}
    fetcher = fetcher_for(server)
    cut = len(wire) * 3 // 4
    with pytest.raises(TransientDownloadError, match=f"truncated: {cut} of {len(wire)} bytes"):
        fetcher._read("http://127.0.0.1/i/p.png", _response(wire[:cut], headers), deadline=time.monotonic() + 60)
    got = fetcher._read("http://127.0.0.1/i/p.png", _response(wire, headers), deadline=time.monotonic() + 60)
    assert got.data == photo


def test_a_content_length_over_the_byte_cap_is_refused_before_the_body(server, photo):
    response = _response(photo, {"Content-Type": "image/png", "Content-Length": str(len(photo))})
    with pytest.raises(RefusedError, match=f"{len(photo)} bytes > download.max_bytes {len(photo) - 1}") as caught:
        fetcher_for(server, max_bytes=len(photo) - 1)._read("http://127.0.0.1/p.png", response, time.monotonic() + 60)
    assert caught.value.stage == "content-length"
    exact = _response(photo, {"Content-Type": "image/png", "Content-Length": str(len(photo))})
    assert fetcher_for(server, max_bytes=len(photo))._read("http://127.0.0.1/p.png", exact, time.monotonic() + 60)


def test_a_body_too_short_to_hold_an_image_header_is_transient(server):
    server.add_image("stub.png", b"\x89PNG\r\n\x1a\n")  # the signature and nothing more
    with pytest.raises(TransientDownloadError, match="no image header in the body"):
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/stub.png")


def test_a_body_that_does_not_decode_is_the_fetchers_own_transient_error(server, photo):
    # The header is a real PNG's, the rest is noise: the decoder's failure comes back as a DownloadError.
    server.add_image("noise.png", photo[:33] + bytes(range(256)) * 8)
    with pytest.raises(TransientDownloadError, match="does not decode") as caught:
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/noise.png")
    assert caught.value.stage == "decode"


@pytest.mark.parametrize("width, height", [(0, 10), (10, 0)])
def test_an_image_header_of_no_pixels_is_transient(server, width, height):
    empty = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + bytes(40)
    server.add_image("empty.png", empty)
    with pytest.raises(TransientDownloadError, match=f"png of {width}x{height}"):
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/empty.png")


def test_the_pixel_cap_is_inclusive(server, photo):
    assert fetcher_for(server, max_pixels=240 * 180).fetch(f"{server.base_url}/i/photo.png").data == photo
    with pytest.raises(RefusedError, match="43200 pixels > download.max_pixels 43199"):
        fetcher_for(server, max_pixels=240 * 180 - 1).fetch(f"{server.base_url}/i/photo.png")
