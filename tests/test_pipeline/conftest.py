"""Tiny exported models for the pipeline and server tests (random weights, built in seconds)."""

from __future__ import annotations

import keras
import pytest

from colorizer.export import export_model
from colorizer.model import ModelConfig, build_model


def export_tiny(folder, name: str, seed: int):
    keras.utils.set_random_seed(seed)
    config = ModelConfig(backbone="tiny", weights=None, input_size=64, tiny_widths=[8, 8, 16, 16, 16])
    export_model(build_model(config), config, folder, name=name, version=f"seed-{seed}")
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Two different exported models: the benchmark compares them side by side."""
    root = tmp_path_factory.mktemp("models")
    return [export_tiny(root / "tiny-a", "tiny-a", 1), export_tiny(root / "tiny-b", "tiny-b", 2)]
