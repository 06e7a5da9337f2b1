"""Independent pieces of one evaluation run side by side.

OpenCV and NumPy release the GIL in their loops, so two threads keep both cores of a small machine
busy where one OpenCV call alone does not (SIFT's pyramid is built level after level, NumPy's
ufuncs are single-threaded). The pool is private: only leaf calls run in it, so a caller waiting on
it can never wait on itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from colorizer.threads import ForkSafePool

_POOL = ForkSafePool(2, "eval")


def side_by_side(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls``, the first run in the calling thread while the others run in the pool."""
    futures = [_POOL.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        rest = [future.result() for future in futures]  # wait even when the first call raised
    return [first, *rest]
