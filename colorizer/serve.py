"""``colorbot serve``: an exported model behind TensorFlow Serving's REST API, with dynamic batching.

Endpoints, as TensorFlow Serving has them, so the same client works against either:

* ``POST /v1/models/<name>:predict`` with ``{"instances": [{"b64": "<encoded image>"}, …]}``
  answers ``{"predictions": [{"b64": "<PNG>"}, …]}``; so does
  ``POST /v1/models/<name>/versions/<version>:predict``, which clients use to pin the version they
  recorded (any other version answers 404);
* ``GET /v1/models/<name>`` (or ``…/versions/<version>``) answers the model's version status,
  TensorFlow Serving's ``{"model_version_status": [{"version", "state", "status"}]}`` with, in
  each entry, the ``identity`` TensorFlow Serving lacks: weights SHA-256, chroma scale,
  upsampling, input size and backbone (colorizer/identity.py);
* ``GET /healthz`` answers 200 while the server takes work.

Requests are decoded in their own threads and queued; one worker takes whatever arrived within
``batch_timeout_ms`` of the first (up to ``max_batch`` images) and runs it through the network as
one batch.

Admission comes before any decoding, from the body's length and the images' headers: a request
that can never be served (a body over ``max_body_bytes``, more instances than ``max_instances``
or the queue holds, an image over ``max_pixels``, more pixels than ``max_pixels_in_flight``)
answers 413 naming the limit; one that could be served later (the queue, the pixels or the body
bytes in flight are taken by others) answers 503 with ``Retry-After``. So memory is bounded by
those budgets, not by what clients send. A malformed body or an image that does not decode
answers 400 with a message. Each request must arrive whole within ``request_timeout_s``;
stopping finishes every request already accepted and gives clients still sending ``drain_s``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np

from colorizer.images import RefusedImageError, UnreadableImageError, encode_png, stated_size
from colorizer.images import decode as load_rgb

log = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8501
    max_batch: int = 16
    batch_timeout_ms: float = 5.0
    max_queue: int = 64  # images waiting; beyond this, 503
    max_instances: int = 64  # images per request (and never more than max_queue); beyond this, 413
    max_body_bytes: int = 64 * 1024 * 1024
    max_body_bytes_in_flight: int = 256 * 1024 * 1024  # bodies held at once, all requests together
    max_pixels: int = 50_000_000  # per image
    # Pixels decoded or in the network at once, all requests together: what bounds memory (the
    # default model needs about 65 bytes per pixel at full resolution). A request over it: 413.
    max_pixels_in_flight: int = 50_000_000
    request_timeout_s: float = 30.0  # request line, headers and body must all arrive within this
    drain_s: float = 3.0  # after stop(), clients still sending get this long
    retry_after_s: int = 1


@dataclass
class _Work:
    image: np.ndarray
    result: Future = field(default_factory=Future)


class _Budget:
    """An amount in use by requests (pixels, body bytes) held under a limit; nothing waits for it."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, amount: int, held: ExitStack) -> bool:
        """Take ``amount`` until ``held`` closes; False (nothing taken) when it is not free now."""
        with self._lock:
            if self.used + amount > self.limit:
                return False
            self.used += amount
        held.callback(self._give_back, amount)
        return True

    def _give_back(self, amount: int) -> None:
        with self._lock:
            self.used -= amount


class Batcher:
    """Collects single images from many threads into batches for one colorize function."""

    def __init__(self, colorize: Callable[[list[np.ndarray]], list[np.ndarray]], settings: ServeSettings):
        self.colorize = colorize
        self.settings = settings
        self.queue: queue.Queue[_Work | None] = queue.Queue(maxsize=settings.max_queue)
        self.batches: list[int] = []  # sizes of the batches run, for tests and benchmarks
        self._worker = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._worker.start()

    def room(self) -> int:
        with self.queue.mutex:
            return self.queue.maxsize - self.queue._qsize()

    def submit(self, images: list[np.ndarray]) -> list[Future]:
        """Queue images; raises queue.Full (nothing queued) when there is no room for all of them."""
        work = [_Work(image) for image in images]
        if len(work) > self.room():
            raise queue.Full
        for item in work:
            self.queue.put_nowait(item)
        return [item.result for item in work]

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run_batch(batch)
            # Not kept while waiting for the next one: the images were given back to the pixel budget.
            del batch

    def _next_batch(self) -> list[_Work] | None:
        """Whatever arrived within ``batch_timeout_ms`` of the first image, or None to stop."""
        first = self.queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_timeout_ms / 1000
        while len(batch) < self.settings.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self.queue.get(timeout=max(remaining, 0)) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self.queue.put(None)  # let _run see it after this batch
                break
            batch.append(item)
        return batch

    def _run_batch(self, batch: list[_Work]) -> None:
        self.batches.append(len(batch))
        try:
            results = self.colorize([work.image for work in batch])
            for work, result in zip(batch, results):
                work.result.set_result(result)
        except Exception as exc:  # noqa: BLE001 - the error goes back to each waiting request
            log.exception("batch of %d failed", len(batch))
            for work in batch:
                work.result.set_exception(exc)

    def close(self) -> None:
        """Finish everything queued, then stop the worker."""
        self.queue.put(None)
        self._worker.join()


class _HTTPServer(ThreadingHTTPServer):
    # http.server's listen backlog of 5 made a burst of clients connecting at once see their
    # connections dropped before the queue could even answer them 503.
    request_queue_size = 1024


class ModelServer:
    """The HTTP server around one model; ``start``/``stop`` or use it as a context manager.

    ``identity`` is what the status reports of the model besides its version (the settings of
    :meth:`colorizer.identity.ModelIdentity.settings`); empty, the status is TensorFlow Serving's.
    """

    def __init__(self, name: str, version: str, colorize: Callable[[list[np.ndarray]], list[np.ndarray]],
                 settings: ServeSettings | None = None, *, identity: Mapping[str, Any] | None = None):
        self.name = name
        self.version = version
        self.identity = dict(identity or {})
        self.settings = settings or ServeSettings()
        self.batcher = Batcher(colorize, self.settings)
        self.pixels = _Budget(self.settings.max_pixels_in_flight)
        self.body_bytes = _Budget(self.settings.max_body_bytes_in_flight)
        self.accepting = True
        self.drain_deadline = float("inf")  # set by stop(): when clients still sending are cut off
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ModelServer:
        handler = type("Handler", (_Handler,), {"server_model": self})
        self._httpd = _HTTPServer((self.settings.host, self.settings.port), handler)
        self._httpd.daemon_threads = False  # stop() waits for requests in flight
        self._httpd.block_on_close = True
        # serve_forever's poll interval bounds how long shutdown() waits: 0.5 s by default, on every stop
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="model-server", daemon=True)
        self._thread.start()
        log.info("serving %s %s at %s", self.name, self.version, self.url)
        return self

    def stop(self) -> None:
        """Refuse new work, answer every accepted request, then close; a client still sending its
        request after ``drain_s`` gets 408, so a slow or stalled one cannot hold the stop."""
        self.drain_deadline = time.monotonic() + self.settings.drain_s
        self.accepting = False
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()  # joins the request threads still answering
            self._httpd = None
        self.batcher.close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RequestError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 limit: dict[str, int] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.limit = limit  # for a 413: the limit the request is over, by name


class _DeadlineReader(io.RawIOBase):
    """The connection's bytes, each read bounded by the handler's idle time-out and by what is left
    of the request's deadline: a client dripping one byte a second cannot hold a thread."""

    def __init__(self, handler: _Handler):
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self.handler.deadline() - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request deadline passed")
        self.handler.connection.settimeout(min(self.handler.timeout, remaining))
        return self.handler.connection.recv_into(buffer)


# Base64 characters decoded to read an image's header: 3 kB hold a PNG's, GIF's or WebP's and most
# JPEGs'; 48 kB a JPEG's after its EXIF thumbnail; else the whole image.
HEADER_PEEKS = (4 * 1024, 64 * 1024)


def _base64(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(400, f"invalid base64: {exc}") from None


def _header_size(encoded: str) -> tuple[int, int]:
    """Width and height as the image's header states them, from as little of the image as holds them
    (a refused flood costs no base64 decoding of whole images); no pixel is decoded for this."""
    for size in HEADER_PEEKS:
        if size < len(encoded):
            try:
                return _stated_size(_base64(encoded[:size]))
            except RequestError:
                raise
            except UnreadableImageError:  # a header cut short by the peek: the whole image decides
                continue
    return _stated_size(_base64(encoded))


def _stated_size(data: bytes) -> tuple[int, int]:
    try:
        return stated_size(data)
    except RefusedImageError as exc:  # a decompression bomb: no retry can fit it
        raise RequestError(413, str(exc)) from None


class _Handler(BaseHTTPRequestHandler):
    server_model: ModelServer
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections give up after this, so stopping never waits on a silent client.
    timeout = 2

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # makefile()'s reader: reads wait on the socket with no overall bound
        self.rfile = io.BufferedReader(_DeadlineReader(self), 64 * 1024)

    def handle_one_request(self) -> None:
        self._deadline = time.monotonic() + self.server_model.settings.request_timeout_s
        super().handle_one_request()

    def deadline(self) -> float:
        return min(self._deadline, self.server_model.drain_deadline)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too long) in JSON, as ours are."""
        self.close_connection = True
        self._json(code, {"error": message or HTTPStatus(code).phrase}, {"Connection": "close"})

    def _route(self) -> tuple[str | None, str | None]:
        """("predict" or "status" or "health" or None, the version the path names or None)."""
        if self.path == "/healthz":
            return "health", None
        prefix = f"/v1/models/{self.server_model.name}"
        if not self.path.startswith(prefix):
            return None, None
        rest = self.path[len(prefix):]
        version = None
        if rest.startswith("/versions/"):
            named, separator, suffix = rest[len("/versions/"):].partition(":")
            named = named.rstrip("/") if not separator else named
            if not named or "/" in named:
                return None, None
            version, rest = unquote(named), separator + suffix
        if rest == ":predict":
            return "predict", version
        if rest in ("", "/"):
            return "status", version
        return None, None

    def _methods_allowed(self) -> str | None:
        """The methods this path answers, or None for an unknown path."""
        return {"predict": "POST", "status": "GET", "health": "GET"}.get(self._route()[0])

    def _refuse_method(self) -> None:
        self.close_connection = True  # whatever body came with the request is left unread
        allowed = self._methods_allowed()
        if allowed is None:
            self._json(404, {"error": f"no such endpoint: {self.path} (this server serves model {self.server_model.name!r})"})
        else:
            self._json(405, {"error": f"{self.command} not allowed on {self.path}; use {allowed}"}, {"Allow": allowed})

    def _refuse_version(self, version: str) -> None:
        self.close_connection = True
        model = self.server_model
        self._json(404, {"error": f"model {model.name!r} has no version {version!r}; this server serves {model.version!r}"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method

    def do_GET(self) -> None:
        model = self.server_model
        endpoint, version = self._route()
        if endpoint == "health":
            self._json(200 if model.accepting else 503, {"status": "ok" if model.accepting else "stopping"})
        elif endpoint == "status" and version not in (None, model.version):
            self._refuse_version(version)
        elif endpoint == "status":
            state = "AVAILABLE" if model.accepting else "END"
            entry = {"version": model.version, "state": state, "status": {"error_code": "OK", "error_message": ""}}
            if model.identity:
                entry["identity"] = model.identity
            self._json(200, {"model_version_status": [entry]})
        else:
            self._refuse_method()

    def do_POST(self) -> None:
        model = self.server_model
        try:
            endpoint, version = self._route()
            if endpoint != "predict":
                return self._refuse_method()
            if version not in (None, model.version):
                return self._refuse_version(version)
            with ExitStack() as held:  # the body bytes and pixels this request holds
                predictions = self._predict(held)
            self._json(200, {"predictions": predictions})
        except RequestError as exc:
            payload: dict[str, Any] = {"error": str(exc)}
            if exc.limit:
                payload["limit"] = exc.limit
            self._json(exc.status, payload, exc.headers)
        except Exception as exc:  # noqa: BLE001 - a failed batch must answer, not hang the client
            log.exception("predict failed")
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _predict(self, held: ExitStack) -> list[dict[str, str]]:
        """Read, admit, decode, colorize; the arrays die with this call, before ``held`` gives back
        their pixels."""
        payloads = self._read_payloads(held)
        self._admit(payloads, held)
        images = self._decode(payloads)
        del payloads
        try:
            futures = self.server_model.batcher.submit(images)
        except queue.Full:
            raise self._busy("queue full, try again shortly") from None
        del images
        return [{"b64": base64.b64encode(encode_png(future.result())).decode("ascii")} for future in futures]

    def _busy(self, message: str) -> RequestError:
        """503: the request fits this server, only not now."""
        return RequestError(503, message, {"Retry-After": str(self.server_model.settings.retry_after_s)})

    def _too_large(self, message: str, name: str, limit: int) -> RequestError:
        """413: the request can never fit this server, however long it waits."""
        return RequestError(413, f"{message} is over the limit of {limit:,} {name.replace('_', ' ')}",
                            limit={name: limit})

    def _read_body(self, held: ExitStack) -> bytes:
        model = self.server_model
        settings = model.settings
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True  # a body of unknown length may follow
            raise RequestError(411, "Content-Length required") from None
        if length < 0:
            self.close_connection = True
            raise RequestError(400, f"Content-Length {length} is negative")
        if length > settings.max_body_bytes:
            self.close_connection = True  # the unread body makes the connection unusable
            raise RequestError(413, f"body of {length} bytes is over the limit of {settings.max_body_bytes}",
                               limit={"max_body_bytes": settings.max_body_bytes})
        if not model.accepting:
            self.close_connection = True
            raise self._busy("server is stopping")
        if not model.body_bytes.take(length, held):
            self.close_connection = True
            raise self._busy("too many request bodies arriving at once, try again shortly")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:  # stalled, or dripping past the request's deadline
            self.close_connection = True
            raise RequestError(408, f"body not received within the time allowed ({self.timeout:g} s without "
                                    f"a byte, {settings.request_timeout_s:g} s for the whole request)") from None
        if len(raw) < length:
            self.close_connection = True
            raise RequestError(400, f"body ended after {len(raw)} of the {length} bytes announced")
        return raw

    def _read_payloads(self, held: ExitStack) -> list[str]:
        """The base64 images of the request; none decoded yet."""
        settings = self.server_model.settings
        raw = self._read_body(held)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(400, f'body is not JSON ({exc}); expected {{"instances": [{{"b64": ...}}]}}') from None
        except RecursionError:
            raise RequestError(400, "body is JSON nested too deeply") from None
        except ValueError as exc:  # an integer of thousands of digits: Python refuses to convert it
            raise RequestError(400, f"body is not usable JSON: {exc}") from None
        del raw
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, 'expected {"instances": [{"b64": "<base64 image>"}, ...]}')
        most = min(settings.max_instances, settings.max_queue)
        if len(instances) > most:
            raise self._too_large(f"request of {len(instances)} instances", "instances_per_request", most)
        payloads = []
        for number, instance in enumerate(instances):
            encoded = instance.get("b64") if isinstance(instance, dict) else None
            if not isinstance(encoded, str):
                raise RequestError(400, f'instance {number}: expected {{"b64": "<base64 image>"}}')
            payloads.append(encoded)
        return payloads

    def _admit(self, payloads: list[str], held: ExitStack) -> None:
        """Take the request's pixels, as its images' headers give them, before any is decoded."""
        model = self.server_model
        settings = model.settings
        total = 0
        for number, encoded in enumerate(payloads):
            try:
                width, height = _header_size(encoded)
            except UnreadableImageError as exc:
                raise RequestError(400, f"instance {number}: {exc}") from None
            except RequestError as exc:
                raise RequestError(exc.status, f"instance {number}: {exc}", limit=exc.limit) from None
            if width * height > settings.max_pixels:
                raise self._too_large(f"instance {number}: {width}x{height}", "pixels_per_image", settings.max_pixels)
            total += width * height
        if total > settings.max_pixels_in_flight:
            raise self._too_large(f"request of {total:,} pixels", "pixels_per_request", settings.max_pixels_in_flight)
        if not model.accepting:
            raise self._busy("server is stopping")
        if len(payloads) > model.batcher.room():
            raise self._busy("queue full, try again shortly")
        if not model.pixels.take(total, held):
            raise self._busy("too many pixels in the work already, try again shortly")

    def _decode(self, payloads: list[str]) -> list[np.ndarray]:
        settings = self.server_model.settings
        images = []
        for number, encoded in enumerate(payloads):
            try:
                images.append(load_rgb(_base64(encoded), max_pixels=settings.max_pixels))
            except UnreadableImageError as exc:
                raise RequestError(400, f"instance {number}: {exc}") from None
            except RequestError as exc:
                raise RequestError(exc.status, f"instance {number}: {exc}") from None
        return images

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        if not self.server_model.accepting:
            self.close_connection = True
        self.connection.settimeout(self.timeout)  # a read may have left it at the deadline's remainder
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
