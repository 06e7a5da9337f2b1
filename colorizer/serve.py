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
one batch. A full queue answers 503 with ``Retry-After``; a body over the size limit 413; a
malformed body or an image that does not decode 400 with a message. Stopping finishes every
request already accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np

from colorizer.inference import UnreadableImageError, encode_png, load_rgb

log = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8501
    max_batch: int = 16
    batch_timeout_ms: float = 5.0
    max_queue: int = 64  # images waiting; beyond this, 503
    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 50_000_000
    retry_after_s: int = 1


@dataclass
class _Work:
    image: np.ndarray
    result: Future = field(default_factory=Future)


class Batcher:
    """Collects single images from many threads into batches for one colorize function."""

    def __init__(self, colorize: Callable[[list[np.ndarray]], list[np.ndarray]], settings: ServeSettings):
        self.colorize = colorize
        self.settings = settings
        self.queue: queue.Queue[_Work | None] = queue.Queue(maxsize=settings.max_queue)
        self.batches: list[int] = []  # sizes of the batches run, for tests and benchmarks
        self._worker = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._worker.start()

    def submit(self, images: list[np.ndarray]) -> list[Future]:
        """Queue images; raises queue.Full (nothing queued) when there is no room for all of them."""
        work = [_Work(image) for image in images]
        with self.queue.mutex:
            room = self.queue.maxsize - self.queue._qsize()
        if len(work) > room:
            raise queue.Full
        for item in work:
            self.queue.put_nowait(item)
        return [item.result for item in work]

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.settings.batch_timeout_ms / 1000
            while len(batch) < self.settings.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=max(remaining, 0)) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)  # let the loop above see it after this batch
                    break
                batch.append(item)
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
        self.accepting = True
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
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="model-server", daemon=True)
        self._thread.start()
        log.info("serving %s %s at %s", self.name, self.version, self.url)
        return self

    def stop(self) -> None:
        """Refuse new work, answer every accepted request, then close."""
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
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    server_model: ModelServer
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections give up after this, so stopping never waits on a silent client.
    timeout = 2

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

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
            images = self._read_images()
            if not model.accepting:
                raise RequestError(503, "server is stopping", {"Retry-After": str(model.settings.retry_after_s)})
            try:
                futures = model.batcher.submit(images)
            except queue.Full:
                raise RequestError(503, "queue full, try again shortly",
                                   {"Retry-After": str(model.settings.retry_after_s)}) from None
            outputs = [future.result() for future in futures]
            predictions = [{"b64": base64.b64encode(encode_png(output)).decode("ascii")} for output in outputs]
            self._json(200, {"predictions": predictions})
        except RequestError as exc:
            self._json(exc.status, {"error": str(exc)}, exc.headers)
        except Exception as exc:  # noqa: BLE001 - a failed batch must answer, not hang the client
            log.exception("predict failed")
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _read_images(self) -> list[np.ndarray]:
        settings = self.server_model.settings
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
            raise RequestError(413, f"body of {length} bytes is over the limit of {settings.max_body_bytes}")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:  # the client stalled mid-body: the handler's socket time-out ends the wait
            self.close_connection = True
            raise RequestError(408, f"body not received within {self.timeout} s") from None
        if len(raw) < length:
            self.close_connection = True
            raise RequestError(400, f"body ended after {len(raw)} of the {length} bytes announced")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(400, f'body is not JSON ({exc}); expected {{"instances": [{{"b64": ...}}]}}') from None
        except RecursionError:
            raise RequestError(400, "body is JSON nested too deeply") from None
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, 'expected {"instances": [{"b64": "<base64 image>"}, ...]}')
        images = []
        for number, instance in enumerate(instances):
            encoded = instance.get("b64") if isinstance(instance, dict) else None
            if not isinstance(encoded, str):
                raise RequestError(400, f'instance {number}: expected {{"b64": "<base64 image>"}}')
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RequestError(400, f"instance {number}: invalid base64: {exc}") from None
            try:
                images.append(load_rgb(data, max_pixels=settings.max_pixels))
            except UnreadableImageError as exc:
                raise RequestError(400, f"instance {number}: {exc}") from None
        return images

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        if not self.server_model.accepting:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
