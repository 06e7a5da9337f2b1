"""Fetch images from the URLs posts carry, without letting a post make us fetch anything else.

A post's URL is chosen by whoever wrote the post, so every fetch is treated as hostile:

* only ``http``/``https``, only hosts on the allow-list (Reddit's and Imgur's by default);
* the host's addresses are checked after DNS resolution and again on the connected socket (so a
  DNS answer that changes between check and connect cannot slip through): loopback, private,
  link-local, cloud-metadata and other non-public addresses are refused unless they fall in
  ``download.allowed_networks``; every redirect hop is checked the same way;
* the body is capped in bytes, and the pixel count is read from the image header as soon as the
  first bytes arrive, before anything is decoded (decompression bombs);
* connect/read time-outs and an overall deadline; 5xx and 429 are retried with exponential
  backoff, honouring ``Retry-After``;
* a video (``video/*``, e.g. Imgur's ``.gifv``/``.mp4``) is refused, not retried;
* the bytes must decode fully as an image with ``colorizer.images``, the decoder every later
  step uses; they are kept exactly as received.

A format the project refuses (TIFF, SVG, an HTML page served as ``image/jpeg``, a format other
than JPEG, PNG, WebP and GIF) and a decompression bomb raise :class:`RefusedError`: no retry
can change them. A body that does not decode may be a cut-off transfer, so it stays transient.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

import numpy as np
import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from bot.settings import DownloadSettings
from colorizer.images import ACCEPTED_FORMATS, RefusedImageError, UnreadableImageError, read_image

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
HEADER_PROBE_LIMIT = 2 * 1024 * 1024  # bytes we wait for an image header before giving up
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
}
RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 522}


class DownloadError(Exception):
    """An image could not be fetched. ``retryable``: worth another try in this fetch."""

    retryable = False

    def __init__(self, url: str, reason: str, *, stage: str = "fetch", bytes_read: int = 0):
        super().__init__(f"{reason} [{stage}] {_shown(url)}")
        self.url = url
        self.reason = reason
        self.stage = stage
        self.bytes_read = bytes_read


class TransientDownloadError(DownloadError):
    """A failure that may pass: 5xx, 429, a time-out, a truncated body."""

    retryable = True

    def __init__(self, url: str, reason: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(url, reason, **kwargs)
        self.retry_after = retry_after


class RefusedError(DownloadError):
    """Refused by policy (scheme, host, address, size, pixels): never retried."""


@dataclass(frozen=True)
class Downloaded:
    """An image as received: the exact bytes plus what decoding them told us (format, upright size, pixels)."""

    url: str
    data: bytes
    format: str
    width: int
    height: int
    pixels: np.ndarray = field(repr=False, compare=False)


def _shown(url: str) -> str:
    """The URL for messages, without credentials or a long query string."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"[:300]
    except ValueError:
        return repr(url[:100])


# -- address policy ---------------------------------------------------------------------------


class AddressPolicy:
    """Which hosts and addresses may be fetched from."""

    def __init__(self, allowed_hosts: list[str], allowed_networks: list[str]):
        self.allowed_hosts = [host.lower().rstrip(".") for host in allowed_hosts]
        self.allowed_networks = [ipaddress.ip_network(net, strict=False) for net in allowed_networks]

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if allowed.startswith("."):
                if host.endswith(allowed) or host == allowed[1:]:
                    return True
            elif host == allowed:
                return True
        return False

    def address_problem(self, address: str) -> str | None:
        """Why this address may not be fetched from, or None if it may."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return None
        if ip in METADATA_ADDRESSES:
            kind = "a cloud metadata address"
        elif ip.is_loopback:
            kind = "a loopback address"
        elif ip.is_link_local:
            kind = "a link-local address"
        elif ip.is_private:
            kind = "a private address"
        elif ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
            kind = "not a public address"
        else:
            return None
        return f"{ip} is {kind} (not in download.allowed_networks)"

    def check_url(self, url: str) -> tuple[str, int]:
        """Host and port of an allowed URL, its addresses resolved and checked; else RefusedError."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RefusedError(url, f"malformed URL: {exc}", stage="url") from None
        if parts.scheme not in ("http", "https"):
            raise RefusedError(url, f"scheme {parts.scheme!r} is not http(s)", stage="url")
        host = parts.hostname
        if not host:
            raise RefusedError(url, "URL without a host", stage="url")
        if parts.username or parts.password:
            raise RefusedError(url, "URL with credentials", stage="url")
        if not self.host_allowed(host):
            raise RefusedError(url, f"host {host!r} is not in download.allowed_hosts", stage="host")
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise TransientDownloadError(url, f"cannot resolve {host!r}: {exc}", stage="resolve") from None
        for info in infos:
            problem = self.address_problem(str(info[4][0]))
            if problem:
                raise RefusedError(url, f"{host} resolves to {problem}", stage="resolve")
        return host, port


# -- connections that re-check the address they actually reached ------------------------------


def _guarded_adapter(policy: AddressPolicy) -> HTTPAdapter:
    def check(sock: socket.socket, host: str) -> None:
        peer = sock.getpeername()[0]
        problem = policy.address_problem(peer)
        if problem:
            sock.close()
            raise RefusedError(f"//{host}", f"connected to {problem}", stage="connect")

    class GuardedHTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            check(sock, self.host)
            return sock

    class GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            check(sock, self.host)
            return sock

    class GuardedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPPool,
                "https": GuardedHTTPSPool,
            }

    return GuardedAdapter(max_retries=0)


# -- image headers ----------------------------------------------------------------------------


class _NeedMore(Exception):
    pass


class UnknownFormatError(ValueError):
    """The first bytes are none of the formats accepted: a refusal, not damage."""


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the first bytes of an image, without decoding it.

    None while more bytes are needed; :class:`UnknownFormatError` if the bytes are no image format
    we accept, ValueError if they are one but damaged.
    """
    try:
        return _image_header(data)
    except (_NeedMore, struct.error, IndexError):
        return None


def _image_header(data: bytes) -> tuple[str, int, int]:
    if len(data) < 12:
        if any(sig.startswith(data[: len(sig)]) for sig in _SIGNATURES):
            raise _NeedMore
        raise UnknownFormatError(_unknown_format(data))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(data) < 24:
            raise _NeedMore
        if data[12:16] != b"IHDR":
            raise ValueError("PNG without IHDR")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        if len(data) < 30:
            raise _NeedMore
        chunk = data[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return "webp", width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = struct.unpack("<I", data[21:25])[0]
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return "webp", width, height
        raise ValueError(f"unknown WebP chunk {chunk!r}")
    if data[:2] == b"\xff\xd8":
        return _jpeg_header(data)
    raise UnknownFormatError(_unknown_format(data))


def _unknown_format(data: bytes) -> str:
    return f"not a JPEG, PNG, WebP or GIF (starts with {data[:8]!r})"


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"GIF8", b"RIFF", b"\xff\xd8")
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_header(data: bytes) -> tuple[str, int, int]:
    pos = 2
    while True:
        if pos + 4 > len(data):
            raise _NeedMore
        if data[pos] != 0xFF:
            raise ValueError("corrupt JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                raise _NeedMore
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "jpeg", width, height
        if marker == 0xD9 or length < 2:
            raise ValueError("JPEG without a frame header")
        pos += 2 + length


# -- the fetcher ------------------------------------------------------------------------------


class Fetcher:
    """Downloads images under the limits of :class:`DownloadSettings`."""

    def __init__(
        self,
        settings: DownloadSettings,
        *,
        user_agent: str = "colorbot image fetcher",
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.policy = AddressPolicy(settings.allowed_hosts, settings.allowed_networks)
        self.sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "image/*"
        adapter = _guarded_adapter(self.policy)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def fetch(self, url: str) -> Downloaded:
        """The image at ``url``, retried on transient failures; raises :class:`DownloadError`."""
        attempt = 0
        while True:
            try:
                return self._fetch_once(url)
            except TransientDownloadError as exc:
                if attempt >= self.settings.retries:
                    raise
                delay = self.settings.backoff_s * (2**attempt)
                if exc.retry_after is not None:
                    if exc.retry_after > self.settings.max_retry_after_s:
                        raise
                    delay = max(delay, exc.retry_after)
                attempt += 1
                log.info("retrying in %.1fs (%d/%d): %s", delay, attempt, self.settings.retries, exc)
                self.sleep(delay)

    def _fetch_once(self, url: str) -> Downloaded:
        timeout = self.settings.timeout_s
        deadline = time.monotonic() + timeout * 2
        for _hop in range(self.settings.max_redirects + 1):
            self.policy.check_url(url)
            try:
                response = self.session.get(
                    url, stream=True, allow_redirects=False, timeout=(timeout, timeout)
                )
            except RefusedError as exc:
                raise RefusedError(url, exc.reason, stage=exc.stage) from None
            except requests.Timeout as exc:
                raise TransientDownloadError(url, f"timed out: {type(exc).__name__}") from None
            except requests.RequestException as exc:
                raise TransientDownloadError(url, f"connection failed: {type(exc).__name__}") from None
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    url = urljoin(url, location)
                    log.debug("redirected to %s", _shown(url))
                    continue
                return self._read(url, response, deadline)
        raise RefusedError(url, f"more than {self.settings.max_redirects} redirects", stage="redirect")

    def _read(self, url: str, response: requests.Response, deadline: float) -> Downloaded:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise TransientDownloadError(
                url, f"HTTP {status}", retry_after=_retry_after(response.headers.get("Retry-After"))
            )
        if status != 200:
            raise DownloadError(url, f"HTTP {status}", stage="status")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type.startswith("video/"):  # an Imgur .gifv/.mp4 behind an image-looking link
            raise RefusedError(url, f"got {content_type}: a video, not an image", stage="content-type")
        if content_type.startswith("text/") or "html" in content_type:
            raise TransientDownloadError(url, f"got {content_type}, not an image", stage="content-type")
        # Content-Length counts the bytes on the wire; requests hands back the decoded body.
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
        declared = response.headers.get("Content-Length")
        expected = int(declared) if declared and declared.isdigit() else None
        if expected is not None and expected > self.settings.max_bytes:
            raise RefusedError(
                url,
                f"{expected} bytes > download.max_bytes {self.settings.max_bytes}",
                stage="content-length",
            )
        buffer = bytearray()
        header: tuple[str, int, int] | None = None
        try:
            for chunk in response.iter_content(CHUNK):
                buffer += chunk
                if len(buffer) > self.settings.max_bytes:
                    raise RefusedError(
                        url,
                        f"more than download.max_bytes {self.settings.max_bytes}",
                        stage="body",
                        bytes_read=len(buffer),
                    )
                if header is None:
                    header = self._check_header(url, bytes(buffer[:HEADER_PROBE_LIMIT]), len(buffer))
                if time.monotonic() > deadline:
                    raise TransientDownloadError(
                        url, "download took too long", stage="body", bytes_read=len(buffer)
                    )
        except requests.RequestException as exc:
            raise TransientDownloadError(
                url, f"body cut short: {type(exc).__name__}", stage="body", bytes_read=len(buffer)
            ) from None
        data = bytes(buffer)
        received = _wire_bytes(response) if encoded else len(data)
        if expected is not None and received is not None and received < expected:
            raise TransientDownloadError(
                url, f"truncated: {received} of {expected} bytes", stage="body", bytes_read=len(data)
            )
        if header is None:
            raise TransientDownloadError(
                url, "no image header in the body", stage="header", bytes_read=len(data)
            )
        return self._decode(url, data)

    def _check_header(self, url: str, head: bytes, read: int) -> tuple[str, int, int] | None:
        try:
            header = image_header(head)
        except UnknownFormatError as exc:
            raise RefusedError(url, str(exc), stage="header", bytes_read=read) from None
        except ValueError as exc:
            raise TransientDownloadError(url, f"not an image: {exc}", stage="header", bytes_read=read) from None
        if header is None:
            if len(head) >= HEADER_PROBE_LIMIT:
                raise TransientDownloadError(url, "no image header", stage="header", bytes_read=read)
            return None
        fmt, width, height = header
        if width <= 0 or height <= 0:
            raise TransientDownloadError(url, f"{fmt} of {width}x{height}", stage="header", bytes_read=read)
        if width * height > self.settings.max_pixels:
            raise RefusedError(
                url,
                f"{fmt} declares {width}x{height} = {width * height} pixels"
                f" > download.max_pixels {self.settings.max_pixels}",
                stage="header",
                bytes_read=read,
            )
        return header

    def _decode(self, url: str, data: bytes) -> Downloaded:
        # The decoder applies the pixel cap to what it finds itself, whatever the header said.
        try:
            picture = read_image(data, max_pixels=self.settings.max_pixels)
        except RefusedImageError as exc:
            raise RefusedError(url, str(exc), stage="decode", bytes_read=len(data)) from None
        except UnreadableImageError as exc:
            raise TransientDownloadError(
                url, f"does not decode: {exc}"[:300], stage="decode", bytes_read=len(data)
            ) from None
        if picture.format not in ACCEPTED_FORMATS:
            raise RefusedError(url, f"format {picture.format!r} not accepted", stage="decode")
        return Downloaded(url=url, data=data, format=picture.format, width=picture.width, height=picture.height,
                          pixels=picture.pixels)


def _wire_bytes(response: requests.Response) -> int | None:
    """How many (encoded) body bytes came over the connection; None if urllib3 cannot say."""
    try:
        return int(response.raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
