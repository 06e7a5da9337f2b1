"""Compiled loops still run where Numba cannot cache them (colorizer/compiled.py)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from colorizer.compiled import compiled

SOURCE = """
def total(values):
    result = 0.0
    for value in values:
        result += value
    return result
"""


def test_a_function_numba_cannot_cache_is_compiled_without_the_cache():
    namespace = {}
    exec(compile(SOURCE, "<no file>", "exec"), namespace)  # no source file: no cache locator for it
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(namespace["total"])
    total = compiled()(namespace["total"])
    assert total(np.arange(5.0)) == 10.0
