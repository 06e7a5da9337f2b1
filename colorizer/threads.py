"""A thread pool that survives ``fork``.

A forked child inherits a ``ThreadPoolExecutor`` object but none of its threads, and the executor
believes it still has them, so work given to it in the child waits for ever. That happens to a
worker forked by multiprocessing, a pre-forking server, or mutmut's forked test runs. This pool
makes its executor on first use and again in each new process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class ForkSafePool:
    def __init__(self, workers: int, name: str):
        self.workers = workers
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # The child forgets the parent's executor, and its lock too: a lock held by one of the parent's
        # threads at the fork would stay held in the child for ever.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._executor, self._lock = None, threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
            return self._executor

    def submit(self, call: Callable[..., Any], *args: Any) -> Future:
        return self.executor().submit(call, *args)

    def map(self, call: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        return self.executor().map(call, *iterables)
