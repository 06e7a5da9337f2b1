"""The image fetcher against the replay server: SSRF, bombs, caps, retries, bad bodies."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.download import (
    DownloadError, Fetcher, RefusedError, TransientDownloadError, image_header,
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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
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
