"""The colorizers the pipeline can use, behind one small interface.

A colorizer turns full-resolution uint8 RGB photos into colorized ones of the same size and
says which model it is (name, version, weights hash) so that every stored colorization names
its maker. ``LocalColorizer`` runs an exported model in this process; ``RemoteColorizer`` asks a
server that speaks TensorFlow Serving's REST predict API: ``colorbot serve`` or TensorFlow
Serving itself running the same exported folder; ``colorizer.onnx_model.OnnxColorizer`` runs
someone else's network exported to ONNX.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import PIL.Image
import requests

from colorizer.inference import encode_png


@dataclass(frozen=True)
class ModelIdentity:
    """What the database records about a model."""

    name: str
    version: str
    backbone: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None


class Colorizer(Protocol):
    identity: ModelIdentity

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """uint8 RGB photos in, colorized uint8 RGB photos of the same sizes out."""


class LocalColorizer:
    """An exported model (``colorbot export``) loaded into this process."""

    def __init__(self, model_dir: str | Path, name: str | None = None):
        from colorizer.export import ExportedModel

        self.model = ExportedModel(model_dir)
        info = self.model.info
        self.identity = ModelIdentity(
            name=name or info.name,
            version=info.version,
            backbone=info.backbone,
            config={**info.config, "upsampling": info.upsampling},
            weights_sha256=info.weights_sha256,
        )

    def colorize(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return self.model.colorize(images)


class RemoteColorizerError(RuntimeError):
    """The model server failed or answered something unusable; the message says which."""


class RemoteColorizer:
    """A model served over TensorFlow Serving's REST API (``POST /v1/models/<name>:predict``).

    503 answers (a full queue) are retried after their ``Retry-After``; any other failure raises
    :class:`RemoteColorizerError`.
    """

    def __init__(self, url: str, name: str, *, version: str | None = None, timeout_s: float = 120.0, retries: int = 3):
        self.url = url.rstrip("/")
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        self.identity = ModelIdentity(name=name, version=version or self._served_version(), backbone="remote")

    def _served_version(self) -> str:
        try:
            answer = self.session.get(f"{self.url}/v1/models/{self.name}", timeout=self.timeout_s)
            answer.raise_for_status()
            statuses = answer.json()["model_version_status"]
            return str(statuses[0]["version"])
        except (requests.RequestException, KeyError, IndexError, ValueError) as exc:
            raise RemoteColorizerError(f"model {self.name!r} at {self.url}: no status: {exc}") from exc

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
            with PIL.Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
                results.append(np.asarray(image.convert("RGB")))
        return results

    def _predict(self, body: dict[str, Any]) -> list[Any]:
        url = f"{self.url}/v1/models/{self.name}:predict"
        for attempt in range(self.retries + 1):
            try:
                answer = self.session.post(url, data=json.dumps(body), timeout=self.timeout_s,
                                           headers={"Content-Type": "application/json"})
            except requests.RequestException as exc:
                raise RemoteColorizerError(f"{url}: {exc}") from exc
            if answer.status_code == 503 and attempt < self.retries:
                time.sleep(min(30.0, float(answer.headers.get("Retry-After", "1") or 1)))
                continue
            if answer.status_code != 200:
                raise RemoteColorizerError(f"{url}: HTTP {answer.status_code}: {answer.text[:200]}")
            try:
                return answer.json()["predictions"]
            except (ValueError, KeyError) as exc:
                raise RemoteColorizerError(f"{url}: not a predict answer: {answer.text[:200]}") from exc
        raise RemoteColorizerError(f"{url}: still busy after {self.retries} retries")


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
