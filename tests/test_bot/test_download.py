"""The image fetcher against the replay server: SSRF, bombs, caps, retries, bad bodies."""

from __future__ import annotations

import gzip
import io
import logging
import socket
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
    CHUNK, HEADER_PROBE_LIMIT, AddressPolicy, DownloadError, Fetcher, RefusedError, TransientDownloadError, _retry_after, image_header,
)
from bot.replay import Fault, bomb_png
from bot.settings import DownloadSettings
from colorizer.images import read_image
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


URL = "http://127.0.0.1/i/p.png"  # where the tests that hand _read a response say it came from


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
    assert np.array_equal(got.pixels, color_scene(3))  # the decoded pixels come with them, for pairing


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


def test_a_body_over_the_byte_cap_is_refused_without_reading_the_rest(server):
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), np.uint8)  # a PNG of about 3 MB
    server.add_image("large.png", encoded(noise))
    with pytest.raises(RefusedError, match="max_bytes") as caught:
        fetcher_for(server, max_bytes=1000).fetch(f"{server.base_url}/i/large.png")
    assert caught.value.bytes_read <= CHUNK  # stopped within the first chunk, not after the whole body


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
        requests_seen = self.requests_seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                requests_seen.append(dict(self.headers))
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


def test_a_relative_redirect_is_followed_from_the_url_that_gave_it(server, photo, caplog):
    server.add_image("moved.png", encoded(color_scene(5, 64, 48)))
    server.faults.add(Fault("redirect", path="/i/photo.png", location="moved.png"))
    caplog.set_level(logging.DEBUG, logger="bot.download")
    got = fetcher_for(server).fetch(f"{server.base_url}/i/photo.png")
    assert (got.url, got.width, got.height) == (f"{server.base_url}/i/moved.png", 64, 48)
    assert f"redirected to {server.base_url}/i/moved.png" in caplog.messages


def test_a_redirect_loop_stops_after_max_redirects(server, photo):
    server.faults.add(Fault("redirect", path="/i/photo.png", location="/i/photo.png", times=None))
    url = f"{server.base_url}/i/photo.png"
    with pytest.raises(RefusedError) as caught:
        fetcher_for(server, max_redirects=2).fetch(url)
    assert str(caught.value) == f"more than 2 redirects [redirect] {url}"
    assert server.count("/i/photo.png") == 3  # the first request and two redirects followed, not one more


def test_retries_wait_backoff_doubling_then_give_up(server, photo, caplog):
    server.faults.add(Fault("503", path="/i/photo.png", times=None))
    waits = []
    fetcher = Fetcher(DownloadSettings(**server.download_settings(retries=3, backoff_s=0.1)), sleep=waits.append)
    url = f"{server.base_url}/i/photo.png"
    caplog.set_level(logging.INFO, logger="bot.download")
    with pytest.raises(TransientDownloadError, match="HTTP 503"):
        fetcher.fetch(url)
    assert waits == [0.1, 0.2, 0.4]
    assert caplog.messages == [f"retrying in {wait}s ({n}/3): HTTP 503 [fetch] {url}"
                               for n, wait in ((1, 0.1), (2, 0.2), (3, 0.4))]
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
    with pytest.raises(TransientDownloadError) as caught:
        fetcher._read(URL, cut, deadline=time.monotonic() + 60)
    assert str(caught.value) == f"truncated: {len(photo) // 2} of {len(photo)} bytes [body] {URL}"
    assert caught.value.bytes_read == len(photo) // 2
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
    with pytest.raises(RefusedError) as caught:
        fetcher_for(server, max_bytes=len(photo) - 1)._read(URL, response, time.monotonic() + 60)
    assert str(caught.value) == f"{len(photo)} bytes > download.max_bytes {len(photo) - 1} [content-length] {URL}"
    exact = _response(photo, {"Content-Type": "image/png", "Content-Length": str(len(photo))})
    assert fetcher_for(server, max_bytes=len(photo))._read("http://127.0.0.1/p.png", exact, time.monotonic() + 60)


def test_a_body_too_short_to_hold_an_image_header_is_transient(server):
    server.add_image("stub.png", b"\x89PNG\r\n\x1a\n")  # the signature and nothing more
    with pytest.raises(TransientDownloadError, match="no image header in the body"):
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/stub.png")


def test_a_body_that_does_not_decode_is_the_fetchers_own_transient_error(server, photo):
    # The header is a real PNG's, the rest is noise: the decoder's failure comes back as a DownloadError.
    noise = photo[:33] + bytes(range(256)) * 8
    server.add_image("noise.png", noise)
    url = f"{server.base_url}/i/noise.png"
    with pytest.raises(TransientDownloadError) as caught:
        fetcher_for(server, retries=0).fetch(url)
    assert str(caught.value).startswith("does not decode: cannot read image")
    assert str(caught.value).endswith(f" [decode] {url}") and caught.value.bytes_read == len(noise)


@pytest.mark.parametrize("width, height", [(0, 10), (10, 0)])
def test_an_image_header_of_no_pixels_is_transient(server, width, height):
    empty = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + bytes(40)
    server.add_image("empty.png", empty)
    with pytest.raises(TransientDownloadError, match=f"png of {width}x{height}"):
        fetcher_for(server, retries=0).fetch(f"{server.base_url}/i/empty.png")


def test_the_pixel_cap_is_inclusive(server, photo):
    assert fetcher_for(server, max_pixels=240 * 180).fetch(f"{server.base_url}/i/photo.png").data == photo
    url = f"{server.base_url}/i/photo.png"
    with pytest.raises(RefusedError) as caught:
        fetcher_for(server, max_pixels=240 * 180 - 1).fetch(url)
    assert str(caught.value) == f"png declares 240x180 = 43200 pixels > download.max_pixels 43199 [header] {url}"


# -- image headers read from the first bytes, byte for byte -------------------------------------------------



def _jpeg_with(extra: bytes, scene: np.ndarray) -> bytes:
    """A JPEG of ``scene`` with ``extra`` (markers, segments) between its SOI and its first segment."""
    data = encoded(scene, "JPEG")
    return data[:2] + extra + data[2:]


def _sof_end(data: bytes) -> int:
    """Where a baseline JPEG's frame header has given its height and width (the SOF marker + 9 bytes)."""
    return data.index(b"\xff\xc0") + 9


def test_every_format_s_header_is_read_from_the_shortest_prefix_that_holds_it():
    scene = color_scene(1, 64, 48)
    alpha = np.dstack([scene, np.full((48, 64), 128, np.uint8)])
    gif89 = b"GIF89a" + encoded(scene, "GIF")[6:]
    jpeg = encoded(scene, "JPEG")
    cases = [  # (bytes, how many of them hold the header as this parser reads it)
        (encoded(scene, "PNG"), 24), (gif89, 12), (encoded(scene, "GIF"), 12), (jpeg, _sof_end(jpeg)),
        (encoded(scene, "WEBP"), 30),  # lossy: a VP8 chunk
        (encoded(scene, "WEBP", lossless=True), 30),  # a VP8L chunk, sizes packed in 14-bit fields
        (encoded(alpha, "WEBP"), 30),  # with alpha: a VP8X chunk, 24-bit sizes
    ]
    for data, needed in cases:
        assert image_header(data[:needed]) == (image_header(data)[0], 64, 48), data[:16]
        assert image_header(data[: needed - 1]) is None, data[:16]
    assert [image_header(data)[0] for data, _ in cases] == ["png", "gif", "gif", "jpeg", "webp", "webp", "webp"]


def test_webp_sizes_are_read_from_each_chunk_kind_s_own_fields():
    # Sizes whose bit patterns differ across the 14-bit VP8L fields and the 24-bit VP8X ones.
    scene = color_scene(2, 301, 257)
    alpha = np.dstack([scene, np.full((257, 301), 200, np.uint8)])
    for data in (encoded(scene, "WEBP", lossless=True), encoded(alpha, "WEBP"), encoded(scene, "WEBP")):
        assert image_header(data) == ("webp", 301, 257), data[12:16]


def test_a_jpeg_header_is_found_past_fill_bytes_restart_markers_and_long_or_empty_segments():
    scene = color_scene(3, 64, 48)
    extras = {
        "fill bytes": b"\xff\xff\xff",
        "a restart marker (no length)": b"\xff\xd0\xff\xd7",
        "an empty APP segment": b"\xff\xef\x00\x02",
        "an ICC-sized APP segment": b"\xff\xe2" + struct.pack(">H", 40_000) + bytes(39_998),
    }
    for name, extra in extras.items():
        data = _jpeg_with(extra, scene)
        assert image_header(data) == ("jpeg", 64, 48), name
        assert read_image(data).width == 64, name  # the decoder agrees that it is a valid JPEG


def test_header_sizes_are_unsigned_so_a_huge_declared_size_is_a_bomb_not_a_negative_one():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 2**31 + 5, 3) + bytes(20)
    gif = b"GIF89a" + struct.pack("<HH", 40_000, 50_000) + bytes(10)
    jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 50_000, 40_000) + bytes(12)
    assert image_header(png) == ("png", 2**31 + 5, 3)
    assert image_header(gif) == ("gif", 40_000, 50_000)
    assert image_header(jpeg) == ("jpeg", 40_000, 50_000)


def _read_error(fetcher: Fetcher, body: bytes, headers: dict[str, str] | None = None, status: int = 200):
    """The DownloadError that reading ``body`` as the response to ``URL`` raises."""
    response = _response(body, {"Content-Type": "image/jpeg", **(headers or {})})
    response.status_code = status
    with pytest.raises(DownloadError) as caught:
        fetcher._read(URL, response, deadline=time.monotonic() + 60)
    return caught.value


SOI_APP0 = b"\xff\xd8\xff\xe0\x00\x06JFIF"  # a JPEG's start and a 6-byte APP0 segment: the next marker is at 10
DAMAGED_HEADERS = {
    "PNG without IHDR": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIDAT" + bytes(40),
    "corrupt JPEG marker": SOI_APP0 + b"\x00\xc0" + bytes(40),
    # A segment declaring a length of 0, its 4 bytes the last of the body: judged, not waited on.
    "JPEG without a frame header": SOI_APP0 + b"\xff\xe1\x00\x00",
    "unknown WebP chunk b'ALPH'": b"RIFF\x40\x00\x00\x00WEBPALPH" + bytes(40),
    "png of 0x7": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 0, 7) + bytes(40),
    "gif of 9x0": b"GIF89a" + struct.pack("<HH", 9, 0) + bytes(40),
}


@pytest.mark.parametrize("reason", DAMAGED_HEADERS)
def test_a_damaged_header_is_transient_and_says_what_is_wrong_where(server, reason):
    body = DAMAGED_HEADERS[reason]
    error = _read_error(fetcher_for(server), body)
    assert isinstance(error, TransientDownloadError)
    prefix = "" if " of " in reason else "not an image: "
    assert str(error) == f"{prefix}{reason} [header] {URL}"
    assert error.bytes_read == len(body)


def test_a_jpeg_that_ends_before_any_frame_header_is_named_so():
    # An EOI marker before any SOF: there is no frame to wait for.
    with pytest.raises(ValueError, match="JPEG without a frame header"):
        image_header(b"\xff\xd8\xff\xd9\x00\x10" + bytes(20))


@pytest.mark.parametrize("body, shown", [
    (b"hello", "b'hello'"),  # shorter than any header: refused without waiting for more bytes
    (HTML, "b'<!doctyp'"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), "b'RIFF$\\x00\\x00\\x00'"),  # RIFF, but audio, not WebP
])
def test_bytes_of_no_accepted_format_are_refused_showing_how_they_start(server, body, shown):
    error = _read_error(fetcher_for(server), body)
    assert isinstance(error, RefusedError)
    assert str(error) == f"not a JPEG, PNG, WebP or GIF (starts with {shown}) [header] {URL}"
    assert error.bytes_read == len(body)


def test_a_body_that_never_reaches_an_image_header_is_given_up_after_the_probe_limit(server):
    # JPEG segments of the largest size, one after another, without a frame header: a valid start that
    # never ends. The fetcher stops waiting for a header at HEADER_PROBE_LIMIT, not at the end of the body.
    segment = b"\xff\xe1\xff\xff" + bytes(0xFFFF - 2)
    body = b"\xff\xd8" + segment * (3 * HEADER_PROBE_LIMIT // len(segment))
    error = _read_error(fetcher_for(server), body)
    assert isinstance(error, TransientDownloadError)
    assert str(error) == f"no image header [header] {URL}"
    assert error.bytes_read == HEADER_PROBE_LIMIT


@pytest.mark.parametrize("width, height", [(1, 7), (7, 1)])
def test_an_image_one_pixel_wide_or_high_is_accepted(server, width, height):
    strip = color_scene(6)[:height, :width]
    data = encoded(strip)
    got = fetcher_for(server)._read(URL, _response(data, {"Content-Type": "image/png"}), time.monotonic() + 60)
    assert (got.width, got.height) == (width, height) and np.array_equal(got.pixels, strip)


def test_the_decoder_caps_the_pixels_it_finds_not_only_those_the_header_declares(server):
    # A GIF whose logical screen (what the header check reads) is 8x8 but whose frame is 64x48.
    gif = bytearray(encoded(color_scene(7, 64, 48), "GIF"))
    gif[6:10] = struct.pack("<HH", 8, 8)
    error = _read_error(fetcher_for(server, max_pixels=1000), bytes(gif), {"Content-Type": "image/gif"})
    assert isinstance(error, RefusedError)
    assert str(error) == f"64x48 is over the limit of 1,000 pixels [decode] {URL}"
    assert error.bytes_read == len(gif)


def test_a_format_outside_the_accepted_ones_is_refused_even_if_it_decodes(server):
    # The header check refuses TIFF first; the decode step holds the same line on its own.
    with pytest.raises(RefusedError) as caught:
        fetcher_for(server)._decode(URL, TIFF)
    assert str(caught.value) == f"format 'tiff' not accepted [decode] {URL}"


def test_http_errors_name_the_status_and_the_url(server):
    retried = _read_error(fetcher_for(server), b"", {"Retry-After": "4"}, status=503)
    assert isinstance(retried, TransientDownloadError) and retried.retry_after == 4.0
    assert str(retried) == f"HTTP 503 [fetch] {URL}"
    final = _read_error(fetcher_for(server), b"", status=404)
    assert not isinstance(final, TransientDownloadError)
    assert str(final) == f"HTTP 404 [status] {URL}"
    assert (final.url, final.reason, final.bytes_read) == (URL, "HTTP 404", 0)


def test_the_content_type_is_judged_without_its_parameters_and_may_be_absent(server, photo):
    error = _read_error(fetcher_for(server), HTML, {"Content-Type": "text/html; charset=utf-8"})
    assert isinstance(error, TransientDownloadError)
    assert str(error) == f"got text/html, not an image [content-type] {URL}"
    untyped = _response(photo, {})
    assert fetcher_for(server)._read(URL, untyped, time.monotonic() + 60).data == photo


class _CutRaw:
    """A response body that breaks off after ``head``, the way a dropped connection does inside urllib3."""

    def __init__(self, head: bytes):
        self.head = head

    def stream(self, _amount, decode_content=True):
        yield self.head
        raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")


def test_body_failures_say_why_at_which_stage_and_how_much_was_read(server, photo):
    over = _read_error(fetcher_for(server, max_bytes=1000), photo, {"Content-Type": "image/png"})
    assert isinstance(over, RefusedError) and over.bytes_read == len(photo)
    assert str(over) == f"more than download.max_bytes 1000 [body] {URL}"

    response = _response(photo, {"Content-Type": "image/png"})
    with pytest.raises(TransientDownloadError) as caught:
        fetcher_for(server)._read(URL, response, deadline=time.monotonic() - 1)
    assert str(caught.value) == f"download took too long [body] {URL}" and caught.value.bytes_read == len(photo)

    cut = _response(b"", {"Content-Type": "image/png"})
    cut.raw = _CutRaw(photo[:100])
    with pytest.raises(TransientDownloadError) as caught:
        fetcher_for(server)._read(URL, cut, deadline=time.monotonic() + 60)
    assert str(caught.value) == f"body cut short: ChunkedEncodingError [body] {URL}" and caught.value.bytes_read == 100

    stub = _read_error(fetcher_for(server), b"\x89PNG\r\n\x1a\n", {"Content-Type": "image/png"})
    assert isinstance(stub, TransientDownloadError) and stub.bytes_read == 8
    assert str(stub) == f"no image header in the body [header] {URL}"


def test_videos_are_refused_and_text_of_any_kind_is_transient_by_content_type(server):
    video = _read_error(fetcher_for(server), bytes(64), {"Content-Type": "video/mp4"})
    assert isinstance(video, RefusedError)
    assert str(video) == f"got video/mp4: a video, not an image [content-type] {URL}"
    for content_type in ("text/plain", "application/xhtml+xml"):
        error = _read_error(fetcher_for(server), HTML, {"Content-Type": content_type})
        assert type(error) is TransientDownloadError, content_type
        assert str(error) == f"got {content_type}, not an image [content-type] {URL}"


def test_a_content_length_that_is_no_number_is_ignored(server, photo):
    response = _response(photo, {"Content-Type": "image/png", "Content-Length": "about 3 kB"})
    assert fetcher_for(server)._read(URL, response, time.monotonic() + 60).data == photo


# -- the address policy, address by address ---------------------------------------------------------------


def _policy(networks: list[str] | None = None) -> AddressPolicy:
    return AddressPolicy(["localhost", ".redd.it"], networks or [])


@pytest.mark.parametrize("address, problem", [
    ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address"),  # IPv4-mapped: judged as the IPv4 address it is
    ("169.254.10.1", "169.254.10.1 is a link-local address"),
    ("fe80::1%eth0", "fe80::1 is a link-local address"),  # a scoped address, as getaddrinfo gives it
    ("10.1.2.3", "10.1.2.3 is a private address"),
    ("224.0.0.1", "224.0.0.1 is not a public address"),  # multicast, though Python calls it global
    ("100.64.0.1", "100.64.0.1 is not a public address"),  # carrier-grade NAT: neither private nor global
    ("93.184.216.34", None),
    ("2a00:1450:4001::1", None),
])
def test_each_kind_of_non_public_address_is_named(address, problem):
    expected = problem and f"{problem} (not in download.allowed_networks)"
    assert _policy().address_problem(address) == expected


def test_an_allowed_network_admits_its_addresses_ipv4_mapped_too():
    policy = _policy(["127.0.0.0/8"])
    assert policy.address_problem("127.0.0.5") is None and policy.address_problem("::ffff:127.0.0.5") is None
    assert policy.address_problem("::1") == "::1 is a loopback address (not in download.allowed_networks)"


def test_check_url_gives_host_and_port_of_an_allowed_url():
    policy = _policy(["127.0.0.0/8", "::1/128"])
    assert policy.check_url("https://localhost/a.png") == ("localhost", 443)
    assert policy.check_url("http://localhost/a.png") == ("localhost", 80)
    assert policy.check_url("http://LOCALHOST:8080/a.png") == ("localhost", 8080)


def test_a_host_off_the_allow_list_is_refused_naming_the_url():
    with pytest.raises(RefusedError) as caught:
        _policy().check_url("https://example.org/a.png")
    assert str(caught.value) == "host 'example.org' is not in download.allowed_hosts [host] https://example.org/a.png"


@pytest.mark.parametrize("url, message", [
    ("file:///etc/passwd", "scheme 'file' is not http(s) [url] file:///etc/passwd"),
    ("http:///a.png", "URL without a host [url] http:///a.png"),
    ("http://[::1/a.png", "malformed URL: Invalid IPv6 URL [url] 'http://[::1/a.png'"),
    ("http://localhost:99999/a.png", "malformed URL: Port out of range 0-65535 [url] 'http://localhost:99999/a.png'"),
])
def test_a_url_refused_before_any_lookup_says_why(url, message):
    with pytest.raises(RefusedError) as caught:
        _policy().check_url(url)
    assert str(caught.value) == message and caught.value.bytes_read == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_address_that_changed_after_the_check_is_refused_on_the_connected_socket(server, photo, monkeypatch, scheme):
    # As if DNS answered differently at connect time: the URL check passes, the connected peer is loopback.
    # Over https the guard acts on the TCP connection, before any TLS (the test server speaks none): a
    # missing guard would fail the handshake instead.
    fetcher = fetcher_for(server, allowed_networks=[])
    monkeypatch.setattr(fetcher.policy, "check_url", lambda url: None)
    url = f"{server.base_url.replace('http:', scheme + ':', 1)}/i/photo.png"
    with pytest.raises(RefusedError) as caught:
        fetcher.fetch(url)
    assert str(caught.value) == (
        f"connected to 127.0.0.1 is a loopback address (not in download.allowed_networks) [connect] {url}"
    )
    assert (caught.value.url, caught.value.stage) == (url, "connect")
    assert server.count("/i/photo.png") == 0


def test_requests_name_the_bot_ask_for_images_and_ignore_the_environment_s_proxy(server, photo, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: using it would fail
    monkeypatch.setenv("NO_PROXY", "")
    host = GzipImageHost(photo)
    try:
        settings = DownloadSettings(**server.download_settings(retries=0))
        assert Fetcher(settings, user_agent="colorbot/1.0 (by u/owner)").fetch(host.url).data == photo
        assert Fetcher(settings).fetch(host.url).data == photo
    finally:
        host.close()
    assert [(seen["User-Agent"], seen["Accept"]) for seen in host.requests_seen] == [
        ("colorbot/1.0 (by u/owner)", "image/*"), ("colorbot image fetcher", "image/*"),
    ]


def test_host_names_are_compared_without_case_or_a_trailing_dot_and_a_leading_dot_means_subdomains_too():
    policy = AddressPolicy(["I.Redd.IT.", ".Imgur.com"], ["127.0.0.1/8"])  # host bits set: taken as 127.0.0.0/8
    allowed = ["i.redd.it", "I.REDD.IT", "i.redd.it.", "imgur.com", "i.imgur.com", "a.b.IMGUR.com."]
    refused = ["redd.it", "x.i.redd.it", "evilimgur.com", "imgur.com.evil.org", "example.com"]
    assert [host for host in allowed + refused if policy.host_allowed(host)] == allowed
    assert policy.address_problem("127.0.0.5") is None


def test_a_timeout_and_a_refused_connection_are_transient_and_say_so(server, photo):
    server.faults.add(Fault("slow", path="/i/photo.png", times=None, delay_s=1.0))
    url = f"{server.base_url}/i/photo.png"
    with pytest.raises(TransientDownloadError) as caught:
        fetcher_for(server, retries=0, timeout_s=0.3).fetch(url)
    assert str(caught.value) == f"timed out: ReadTimeout [fetch] {url}"
    with socket.socket() as unused:  # a port that was free a moment ago: nothing listens on it
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    closed = f"http://127.0.0.1:{port}/i/photo.png"
    with pytest.raises(TransientDownloadError) as caught:
        fetcher_for(server, retries=0).fetch(closed)
    assert str(caught.value) == f"connection failed: ConnectionError [fetch] {closed}"


def test_a_bomb_is_refused_from_its_first_bytes_while_the_rest_is_still_on_its_way(server):
    # The host sends the first chunks, then stalls: a fetcher that waited for the whole body would time out.
    first = bomb_png()[: 2 * CHUNK]
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(10 * len(first)))
            self.end_headers()
            self.wfile.write(first)
            self.wfile.flush()
            release.wait(10)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with pytest.raises(RefusedError, match="declares 100000x100000"):
            fetcher_for(server, retries=0, timeout_s=5.0).fetch(f"http://127.0.0.1:{httpd.server_address[1]}/b.png")
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


def test_a_retry_after_of_exactly_the_allowed_wait_is_waited(server, photo):
    server.faults.add(Fault("429", path="/i/photo.png", retry_after=10))
    waits = []
    settings = DownloadSettings(**server.download_settings(retries=1, backoff_s=0.01, max_retry_after_s=10))
    assert Fetcher(settings, sleep=waits.append).fetch(f"{server.base_url}/i/photo.png").data == photo
    assert waits == [10.0]


def test_credentials_unresolvable_hosts_and_non_public_answers_are_named_with_their_stage():
    policy = AddressPolicy(["localhost", "nowhere.invalid"], [])
    with pytest.raises(RefusedError) as caught:
        policy.check_url("http://user:pw@localhost/a.png")
    assert str(caught.value) == "URL with credentials [url] http://localhost/a.png"
    with pytest.raises(RefusedError, match="URL with credentials"):
        policy.check_url("http://user@localhost/a.png")  # a user name alone is a credential too
    with pytest.raises(RefusedError) as caught:
        policy.check_url("http://localhost/a.png")
    assert str(caught.value).startswith("localhost resolves to ")
    assert str(caught.value).endswith(" is a loopback address (not in download.allowed_networks) [resolve] http://localhost/a.png")
    with pytest.raises(TransientDownloadError) as caught:
        policy.check_url("http://nowhere.invalid/a.png")
    assert str(caught.value).startswith("cannot resolve 'nowhere.invalid': ")
    assert str(caught.value).endswith(" [resolve] http://nowhere.invalid/a.png")
