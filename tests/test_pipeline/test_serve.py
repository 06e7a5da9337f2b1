"""The model server over loopback: TensorFlow Serving's REST API, batching, back-pressure, errors."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import PIL.Image
import pytest
import requests
import skimage.data

from colorizer.client import LocalColorizer, ModelChangedError, RemoteColorizer, RemoteColorizerError
from colorizer.inference import encode_png
from colorizer.serve import ModelServer, ServeSettings
from tests.factories import flat_png


@pytest.fixture(scope="module")
def model(tiny_models):
    return LocalColorizer(tiny_models[0])


def body_for(*images: np.ndarray) -> str:
    return json.dumps({"instances": [{"b64": base64.b64encode(encode_png(i)).decode()} for i in images]})


def test_results_equal_in_process_inference(model):
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    with ModelServer("tiny", "1", model.colorize, ServeSettings(port=0)) as server:
        remote = RemoteColorizer(server.url, "tiny")
        served = remote.colorize(photos)
        status = requests.get(f"{server.url}/v1/models/tiny", timeout=10).json()
        health = requests.get(f"{server.url}/healthz", timeout=10)
    for got, photo in zip(served, photos):
        np.testing.assert_array_equal(got, model.colorize([photo])[0])
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert remote.identity.version == "1"
    assert health.status_code == 200


def test_the_status_carries_version_and_identity_and_predict_is_pinned_to_that_version(model):
    photo = skimage.data.astronaut()[::8, ::8]
    with ModelServer("tiny", "step-7-ab12", model.colorize, ServeSettings(port=0),
                     identity=model.identity.settings()) as server:
        remote = RemoteColorizer(server.url, "tiny")
        served = remote.colorize([photo])[0]
        pinned = requests.get(f"{server.url}/v1/models/tiny/versions/step-7-ab12", timeout=10)
        unpinned = requests.post(f"{server.url}/v1/models/tiny:predict", data=body_for(photo), timeout=30)
        other = requests.post(f"{server.url}/v1/models/tiny/versions/6:predict", data=body_for(photo), timeout=30)
        other_status = requests.get(f"{server.url}/v1/models/tiny/versions/6", timeout=10)
    assert remote.identity.version == "step-7-ab12"
    assert remote.identity.weights_sha256 == model.identity.weights_sha256 and len(remote.identity.weights_sha256) == 64
    assert remote.identity.settings() == model.identity.settings()
    assert remote.predict_url.endswith("/v1/models/tiny/versions/step-7-ab12:predict")
    np.testing.assert_array_equal(served, model.colorize([photo])[0])
    assert pinned.json()["model_version_status"][0]["identity"]["chroma_scale"] == model.identity.chroma_scale
    assert unpinned.status_code == 200  # TensorFlow Serving's unversioned path still answers
    for refused in (other, other_status):
        assert refused.status_code == 404 and "no version '6'" in refused.json()["error"]


def test_a_rollout_is_never_recorded_under_the_old_version(model):
    with ModelServer("tiny", "1", model.colorize, ServeSettings(port=0)) as server:
        remote = RemoteColorizer(server.url, "tiny")
        server.version = "2"  # the server now runs another model
        with pytest.raises(ModelChangedError, match="version 1 is no longer served"):
            remote.colorize([skimage.data.camera()[::8, ::8]])
        assert RemoteColorizer(server.url, "tiny").identity.version == "2"
        with pytest.raises(RemoteColorizerError, match="serves version 2, not '1'"):
            RemoteColorizer(server.url, "tiny", version="1")


class _TensorFlowServingStatus(BaseHTTPRequestHandler):
    """TensorFlow Serving's answer to GET /v1/models/tiny: versions, states, no identity."""

    def do_GET(self):
        body = json.dumps({"model_version_status": [
            {"version": str(number), "state": state, "status": {"error_code": "OK", "error_message": ""}}
            for number, state in ((3, "AVAILABLE"), (12, "AVAILABLE"), (13, "LOADING"))
        ]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_tensorflow_serving_status_gives_the_newest_available_version_and_unknown_weights():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _TensorFlowServingStatus)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        newest, chosen = RemoteColorizer(url, "tiny"), RemoteColorizer(url, "tiny", version="3")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert newest.identity.version == "12" and newest.predict_url == f"{url}/v1/models/tiny/versions/12:predict"
    assert newest.identity.settings() == dict.fromkeys(newest.identity.settings())  # all unknown
    assert chosen.identity.version == "3"


def test_two_hundred_concurrent_requests_are_all_answered_in_batches(model):
    photo = skimage.data.astronaut()[::4, ::4]
    settings = ServeSettings(port=0, max_batch=16, batch_timeout_ms=20, max_queue=256)
    with ModelServer("tiny", "1", model.colorize, settings) as server:
        url = f"{server.url}/v1/models/tiny:predict"

        def ask(_):
            answer = requests.post(url, data=body_for(photo), timeout=120)
            return answer.status_code, answer.json()

        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(ask, range(200)))
        batches = list(server.batcher.batches)
    assert [status for status, _ in answers] == [200] * 200
    first = answers[0][1]["predictions"][0]["b64"]
    assert all(payload["predictions"][0]["b64"] == first for _, payload in answers)
    assert sum(batches) == 200
    assert max(batches) > 1  # requests arriving together shared network calls


def test_an_overfull_queue_answers_503_with_retry_after(model):
    release = threading.Event()

    def slow(images):
        release.wait(30)
        return model.colorize(images)

    photo = skimage.data.camera()[::8, ::8]
    settings = ServeSettings(port=0, max_batch=1, batch_timeout_ms=0, max_queue=2, retry_after_s=3)
    with ModelServer("tiny", "1", slow, settings) as server:
        url = f"{server.url}/v1/models/tiny:predict"
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(requests.post, url, data=body_for(photo), timeout=60) for _ in range(8)]
            time.sleep(1.0)  # all eight have arrived: one in the worker, two queued, the rest refused
            release.set()
            answers = [future.result() for future in futures]
        alive = requests.get(f"{server.url}/healthz", timeout=10).status_code
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(200) == 3 and codes.count(503) == 5, codes
    assert all(a.headers["Retry-After"] == "3" for a in answers if a.status_code == 503)
    assert alive == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("{not json", "not JSON"),
        ('{"instances": []}', "expected"),
        ('{"instances": [{"b64": "@@@not base64@@@"}]}', "invalid base64"),
        ('{"instances": [{"b64": "' + base64.b64encode(b"<html>hello</html>").decode() + '"}]}', "cannot read image"),
        ('{"instances": ["plain string"]}', "instance 0"),
    ],
    ids=["malformed-json", "no-instances", "bad-base64", "not-an-image", "wrong-shape"],
)
def test_bad_requests_get_400_with_a_message(model, body, fragment):
    with ModelServer("tiny", "1", model.colorize, ServeSettings(port=0)) as server:
        answer = requests.post(f"{server.url}/v1/models/tiny:predict", data=body, timeout=30)
    assert answer.status_code == 400
    assert fragment in answer.json()["error"]


def test_oversized_bodies_and_unknown_models_are_refused(model):
    with ModelServer("tiny", "1", model.colorize, ServeSettings(port=0, max_body_bytes=1000)) as server:
        big = requests.post(f"{server.url}/v1/models/tiny:predict", data="x" * 5000, timeout=30)
        other = requests.post(f"{server.url}/v1/models/other:predict", data="{}", timeout=30)
    assert big.status_code == 413 and "limit" in big.json()["error"]
    assert other.status_code == 404


def test_stopping_finishes_requests_already_accepted(model):
    started = threading.Event()

    def slow(images):
        started.set()
        time.sleep(1.0)
        return model.colorize(images)

    server = ModelServer("tiny", "1", slow, ServeSettings(port=0)).start()
    photo = skimage.data.camera()[::8, ::8]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(requests.post, f"{server.url}/v1/models/tiny:predict", data=body_for(photo), timeout=60)
        started.wait(30)
        server.stop()
        answer = pending.result()
    assert answer.status_code == 200
    png = base64.b64decode(answer.json()["predictions"][0]["b64"])
    assert PIL.Image.open(io.BytesIO(png)).size == (photo.shape[1], photo.shape[0])


# -- admission: the server cannot be flooded ---------------------------------------------------------

def png_body(*payloads: bytes) -> str:
    return json.dumps({"instances": [{"b64": base64.b64encode(payload).decode()} for payload in payloads]})


@pytest.fixture
def decodes(monkeypatch):
    """Every image the server decodes, by size: what admission must prevent."""
    import colorizer.serve

    seen = []
    real = colorizer.serve.load_rgb

    def counting(data, **kwargs):
        image = real(data, **kwargs)
        seen.append(image.shape[:2])
        return image

    monkeypatch.setattr(colorizer.serve, "load_rgb", counting)
    return seen


def test_more_instances_than_the_queue_can_ever_hold_is_413_naming_the_limit(decodes):
    # It used to be 503, "try again", on every retry: a request that could never succeed.
    settings = ServeSettings(port=0, max_queue=4)
    with ModelServer("tiny", "1", lambda images: list(images), settings) as server:
        answer = requests.post(f"{server.url}/v1/models/tiny:predict", data=png_body(*[flat_png(8, 8)] * 5), timeout=30)
        fits = requests.post(f"{server.url}/v1/models/tiny:predict", data=png_body(*[flat_png(8, 8)] * 4), timeout=30)
    assert answer.status_code == 413 and "Retry-After" not in answer.headers
    assert "5 instances" in answer.json()["error"] and "limit of 4" in answer.json()["error"]
    assert answer.json()["limit"] == {"instances_per_request": 4}
    assert fits.status_code == 200
    assert decodes == [(8, 8)] * 4  # the refused request decoded nothing


def test_a_request_over_the_pixel_budget_is_413_from_the_headers_before_any_decoding(decodes):
    settings = ServeSettings(port=0, max_pixels=1_000_000, max_pixels_in_flight=1_000_000)
    with ModelServer("tiny", "1", lambda images: list(images), settings) as server:
        big = png_body(*[flat_png(800, 800)] * 3)  # 1.92 MP in a few kB
        answer = requests.post(f"{server.url}/v1/models/tiny:predict", data=big, timeout=30)
        healthy = requests.post(f"{server.url}/v1/models/tiny:predict", data=png_body(flat_png(800, 800)), timeout=30)
    assert answer.status_code == 413, answer.text
    assert "1,920,000 pixels" in answer.json()["error"] and "1,000,000" in answer.json()["error"]
    assert answer.json()["limit"] == {"pixels_per_request": 1_000_000}
    assert healthy.status_code == 200
    assert decodes == [(800, 800)]


def test_pixels_taken_by_other_requests_answer_503_with_retry_after_then_fit():
    release, started = threading.Event(), threading.Event()

    def slow(images):
        started.set()
        release.wait(30)
        return list(images)

    settings = ServeSettings(port=0, max_pixels=1_000_000, max_pixels_in_flight=1_000_000, retry_after_s=2)
    with ModelServer("tiny", "1", slow, settings) as server:
        url = f"{server.url}/v1/models/tiny:predict"
        body = png_body(flat_png(800, 800))  # 640,000 pixels: two do not fit at once
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(requests.post, url, data=body, timeout=60)
            assert started.wait(30)
            second = requests.post(url, data=body, timeout=30)
            release.set()
            assert first.result().status_code == 200
        retried = requests.post(url, data=body, timeout=30)
    assert second.status_code == 503 and second.headers["Retry-After"] == "2"
    assert "pixels" in second.json()["error"]
    assert retried.status_code == 200  # everything given back once answered


def drip(server: ModelServer, seconds: float) -> tuple[int | None, float]:
    """Announce a body and send it one byte every half second (never idle past the 2 s time-out)
    until the server answers or ``seconds`` pass; the status it answered (None: none) and when."""
    import select
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        while time.monotonic() - started < seconds:
            if select.select([connection], [], [], 0.5)[0]:
                answer = connection.recv(65536)
                return (int(answer.split()[1]) if answer else None), time.monotonic() - started
            try:
                connection.sendall(b" ")
            except OSError:
                return None, time.monotonic() - started
    return None, time.monotonic() - started


def test_a_client_dripping_its_body_is_cut_off_at_the_request_deadline():
    settings = ServeSettings(port=0, request_timeout_s=2.0)
    with ModelServer("tiny", "1", lambda images: list(images), settings) as server:
        status, seconds = drip(server, 12)
        healthy = requests.get(f"{server.url}/healthz", timeout=10)
    assert status == 408 and seconds < 6
    assert healthy.status_code == 200


def test_stopping_waits_only_a_few_seconds_for_a_dripping_client():
    server = ModelServer("tiny", "1", lambda images: list(images),
                         ServeSettings(port=0, request_timeout_s=600, drain_s=1.0)).start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        dripping = pool.submit(drip, server, 20)
        time.sleep(1.0)
        started = time.monotonic()
        server.stop()
        stopped_after = time.monotonic() - started
        status, _ = dripping.result()
    assert stopped_after < 5, stopped_after
    assert status in (408, None)  # told, or cut off


def test_a_json_integer_too_long_to_convert_is_a_400_not_a_500():
    with ModelServer("tiny", "1", lambda images: list(images), ServeSettings(port=0)) as server:
        answer = requests.post(f"{server.url}/v1/models/tiny:predict", data='{"instances": [' + "7" * 5000 + "]}",
                               timeout=30)
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]
