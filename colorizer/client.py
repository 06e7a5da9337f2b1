"""The colorizers the pipeline can use, behind one small interface.

A colorizer turns full-resolution uint8 RGB photos into colorized ones of the same size and
says which model it is (its :class:`~colorizer.identity.ModelIdentity`: name, version, weights hash
and the settings that change its output) so that every stored colorization names its maker.
``LocalColorizer`` runs an exported model in this process; ``RemoteColorizer`` asks a server that
speaks TensorFlow Serving's REST predict API: ``colorbot serve`` or TensorFlow Serving itself
running the same exported folder; ``colorizer.onnx_model.OnnxColorizer`` runs someone else's
network exported to ONNX.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import numpy as np
import requests

from colorizer.identity import ModelIdentity
from colorizer.images import UnreadableImageError, decode, encode_png
from db.safe_text import mask_credentials

__all__ = ["Colorizer", "LocalColorizer", "ModelChangedError", "ModelIdentity", "ModelUnavailableError",
           "RemoteColorizer", "RemoteColorizerError", "default_model_dir", "open_colorizers"]


class Colorizer(Protocol):
    identity: ModelIdentity

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB photos in, colorized uint8 RGB photos of the same sizes out."""


class LocalColorizer:
    """An exported model (``colorbot export``) loaded into this process."""

    def __init__(self, model_dir: str | Path, name: str | None = None):
        from colorizer.export import ExportedModel

        self.model = ExportedModel(model_dir)
        self.identity = self.model.info.identity(name)

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return self.model.colorize(images)


class RemoteColorizerError(RuntimeError):
    """The model server failed or answered something unusable; the message says which.

    The message names the server's URL, which may carry ``user:password@``: it is masked here,
    once, since the message goes on to logs, ``posts.last_error`` and the command line."""

    def __init__(self, message: str):
        super().__init__(mask_credentials(message))


class ModelUnavailableError(RemoteColorizerError):
    """The model server cannot be reached, times out, or answers 502, 503 (after the retries) or 504:
    an outage, which says nothing about the photo sent; the caller should stop and try later."""


OUTAGE_STATUSES = {502, 503, 504}


class ModelChangedError(RemoteColorizerError):
    """The server no longer serves the model version this colorizer was opened for (a rollout):
    nothing more may be recorded under it; open the colorizer again to follow the new version."""


# What ``colorbot serve`` reports of each version beside TensorFlow Serving's status, and its type.
_SERVED_SETTINGS = {"weights_sha256": str, "chroma_scale": (int, float), "upsampling": str, "input_size": int,
                    "backbone": str}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RemoteColorizer:
    """A model served over TensorFlow Serving's REST API.

    The model's status (``GET /v1/models/<name>``) is read once: the version it serves (or
    ``version``, which must be among those available) and, from ``colorbot serve``, the weights hash
    and settings, make up the identity. Every predict call is pinned to that version
    (``POST /v1/models/<name>/versions/<version>:predict``), so colorizations made after a
    rollout can never be recorded under the old version: the server answers 404, raised as
    :class:`ModelChangedError`. 503 answers (a full queue) are retried after their
    ``Retry-After``; an outage (no connection, a time-out, 502/503/504) raises
    :class:`ModelUnavailableError`, any other failure :class:`RemoteColorizerError`.
    """

    def __init__(self, url: str, name: str, *, version: str | None = None, timeout_s: float = 120.0, retries: int = 3):
        self.url = url.rstrip("/")
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        status = self._served_status(version)
        served_version = str(status["version"])
        self.identity = ModelIdentity(name=name, version=served_version, **self._served_settings(status))
        self.predict_url = (f"{self.url}/v1/models/{quote(name, safe='')}"
                            f"/versions/{quote(served_version, safe='')}:predict")

    def _served_status(self, version: str | None) -> dict[str, Any]:
        """The status entry of the version to use: ``version``, else the newest available."""
        status_url = f"{self.url}/v1/models/{quote(self.name, safe='')}"
        try:
            answer = self.session.get(status_url, timeout=self.timeout_s)
            answer.raise_for_status()
            statuses = answer.json()["model_version_status"]
            available = [entry for entry in statuses if entry.get("state") == "AVAILABLE" and "version" in entry]
        except (requests.RequestException, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RemoteColorizerError(f"model {self.name!r} at {self.url}: no status: {exc}") from exc
        versions = [str(entry["version"]) for entry in available]
        if not available:
            raise RemoteColorizerError(f"model {self.name!r} at {self.url}: no version is AVAILABLE")
        if version is not None:
            if version not in versions:
                raise RemoteColorizerError(
                    f"model {self.name!r} at {self.url} serves version {', '.join(versions)}, not {version!r}"
                )
            return available[versions.index(version)]
        if len(available) == 1:
            return available[0]
        if all(number.isdigit() for number in versions):  # TensorFlow Serving's own default: the newest
            return max(available, key=lambda entry: int(entry["version"]))
        raise RemoteColorizerError(
            f"model {self.name!r} at {self.url} serves versions {', '.join(versions)}; configure which one (version)"
        )

    def _served_settings(self, status: dict[str, Any]) -> dict[str, Any]:
        """The identity settings the server reports; TensorFlow Serving reports none (all unknown)."""
        reported = status.get("identity") or {}
        if not isinstance(reported, dict):
            raise RemoteColorizerError(f"model {self.name!r} at {self.url}: identity is not an object: {reported!r}")
        settings = {}
        for key, kind in _SERVED_SETTINGS.items():
            value = reported.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise RemoteColorizerError(f"model {self.name!r} at {self.url}: identity {key} is {value!r}")
            settings[key] = value
        if settings["weights_sha256"] is not None and not _SHA256.fullmatch(settings["weights_sha256"]):
            raise RemoteColorizerError(
                f"model {self.name!r} at {self.url}: weights_sha256 {settings['weights_sha256']!r} is not a SHA-256"
            )
        return settings

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        if not images:
            return []
        body = {"instances": [{"b64": base64.b64encode(encode_png(image)).decode("ascii")} for image in images]}
        predictions = self._predict(body)
        if len(predictions) != len(images):
            raise RemoteColorizerError(f"asked for {len(images)} colorizations, got {len(predictions)}")
        results = []
        for prediction in predictions:
            encoded = prediction.get("b64") if isinstance(prediction, dict) else None
            if not isinstance(encoded, str):
                raise RemoteColorizerError(f"prediction is not {{'b64': …}}: {str(prediction)[:100]}")
            try:
                results.append(decode(base64.b64decode(encoded)))
            except (UnreadableImageError, binascii.Error) as exc:
                raise RemoteColorizerError(f"prediction is not an image: {exc}") from exc
        return results

    def _predict(self, body: dict[str, Any]) -> list[Any]:
        url = self.predict_url
        for attempt in range(self.retries + 1):
            try:
                answer = self.session.post(url, data=json.dumps(body), timeout=self.timeout_s,
                                           headers={"Content-Type": "application/json"})
            except requests.RequestException as exc:
                raise ModelUnavailableError(f"{url}: {exc}") from exc
            if answer.status_code == 503 and attempt < self.retries:
                time.sleep(min(30.0, float(answer.headers.get("Retry-After", "1") or 1)))
                continue
            if answer.status_code == 404:
                raise ModelChangedError(
                    f"{url}: HTTP 404: {self.name} version {self.identity.version} is no longer served: "
                    f"{answer.text[:200]}"
                )
            if answer.status_code in OUTAGE_STATUSES:
                raise ModelUnavailableError(f"{url}: HTTP {answer.status_code}: {answer.text[:200]}")
            if answer.status_code != 200:
                raise RemoteColorizerError(f"{url}: HTTP {answer.status_code}: {answer.text[:200]}")
            try:
                return answer.json()["predictions"]
            except (ValueError, KeyError) as exc:
                raise RemoteColorizerError(f"{url}: not a predict answer: {answer.text[:200]}") from exc
        raise ModelUnavailableError(f"{url}: still busy after {self.retries} retries")


DEFAULT_MODEL_DIR = Path(__file__).with_name("default_model")


def default_model_dir() -> Path:
    """The exported model that ships inside the package (see colorizer/MODEL_CARD.md)."""
    if not (DEFAULT_MODEL_DIR / "saved_model.pb").is_file():
        raise FileNotFoundError(
            f"the default model is missing from {DEFAULT_MODEL_DIR}; configure [[colorizer.models]] or pass --model"
        )
    return DEFAULT_MODEL_DIR


def open_colorizers(specs: list[Any]) -> list[Colorizer]:
    """A colorizer per configured model (``ModelSpec``s); none configured means the default model."""
    if not specs:
        return [LocalColorizer(default_model_dir())]
    return [open_colorizer(spec) for spec in specs]


def open_colorizer(spec: Any) -> Colorizer:
    if spec.path:
        return LocalColorizer(spec.path, name=spec.name)
    if spec.onnx:
        from colorizer.onnx_model import open_onnx

        return open_onnx(spec)
    return RemoteColorizer(spec.url, spec.name, version=spec.version)
