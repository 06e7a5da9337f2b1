"""Independent pieces of one evaluation run side by side.

OpenCV and NumPy release the GIL in their loops, so two threads keep both cores of a small machine
busy where one OpenCV call alone does not (SIFT's pyramid is built level after level, NumPy's
ufuncs are single-threaded). The pool is private: only leaf calls run in it, so a caller waiting on
it can never wait on itself.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import cv2
from threadpoolctl import ThreadpoolController

from colorizer.threads import ForkSafePool

_POOL = ForkSafePool(2, "eval")


class _ProcessWideLimit:
    """A context that sets a process-wide thread limit while any thread is inside it.

    Such limits (threadpoolctl's, ``cv2.setNumThreads``) are global, and a plain set-and-restore in
    two threads entering and leaving out of order could leave the limit set for ever, or lifted while
    the other is still inside; a count of the threads inside decides instead when to set and restore.
    Only speed depends on these limits: the results of the calls inside do not.
    """

    def __init__(self, limit: Callable[[], Callable[[], None]]):
        self._limit = limit  # sets the limit and returns what restores the previous one
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock, self._inside, self._restore = threading.Lock(), 0, None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._restore = self._limit()
            self._inside += 1

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._restore()


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # once: it looks through every loaded library


def _one_blas_thread() -> Callable[[], None]:
    return _controller().limit(limits=1, user_api="blas").restore_original_limits


def _one_opencv_thread() -> Callable[[], None]:
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return lambda: cv2.setNumThreads(before)


single_threaded_blas = _ProcessWideLimit(_one_blas_thread)
"""Inside it, NumPy's BLAS (OpenBLAS) runs on the calling thread alone.

After a call on several threads, OpenBLAS keeps its other threads spinning for about 0.1 s in case
another call follows: on two cores that took a whole core from the metrics that come next (0.06 s
of a 1 MP pair's 0.38). Eval's matrix products are small enough for one thread."""

single_threaded_opencv = _ProcessWideLimit(_one_opencv_thread)
"""Inside it, each OpenCV call runs on its calling thread alone: for calls that ``side_by_side``
already runs in parallel (two SIFTs), where OpenCV's own threads would only compete with them."""


def side_by_side(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls``, the first run in the calling thread while the others run in the pool."""
    futures = [_POOL.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        rest = [future.result() for future in futures]  # wait even when the first call raised
    return [first, *rest]
