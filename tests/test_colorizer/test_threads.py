"""The project's thread pools keep working in a forked child (mutmut's test runs, multiprocessing
with the fork start method), where a plain ThreadPoolExecutor inherited from the parent hangs."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from colorizer.images import encode_png
from colorizer.threads import ForkSafePool
from eval.concurrency import side_by_side


def exit_code_in_a_forked_child(work, timeout_s: float = 30.0) -> int | None:
    """Fork, run ``work`` in the child (exit 0 if it returns True), and wait: None if it hung."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os._exit(0 if work() else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_plain_executor_used_before_a_fork_hangs_in_the_child():
    # The failure the pool exists for, shown on the standard library itself.
    plain = ThreadPoolExecutor(1)
    assert plain.submit(lambda: 1).result() == 1
    assert exit_code_in_a_forked_child(lambda: plain.submit(lambda: 2).result() == 2, timeout_s=2.0) is None
    plain.shutdown()


def test_the_pools_used_before_a_fork_work_in_the_child():
    pool = ForkSafePool(2, "test")
    assert list(pool.map(lambda x: x * x, range(4))) == [0, 1, 4, 9]
    assert side_by_side(lambda: 1, lambda: 2, lambda: 3) == [1, 2, 3]
    image = np.random.default_rng(0).integers(0, 256, (1500, 1500, 3), np.uint8)  # several bands: the pool deflates
    png = encode_png(image)

    def in_child() -> bool:
        return (list(pool.map(lambda x: x + 1, range(4))) == [1, 2, 3, 4]
                and pool.submit(lambda: "done").result() == "done"
                and side_by_side(lambda: 1, lambda: 2, lambda: 3) == [1, 2, 3]
                and encode_png(image) == png)

    assert exit_code_in_a_forked_child(in_child) == 0
