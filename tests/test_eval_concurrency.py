"""Eval's process-wide thread limits: set while any thread is inside, restored when the last leaves."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import skimage.data
from threadpoolctl import threadpool_info

from eval.align import align
from eval.concurrency import _ProcessWideLimit, single_threaded_blas, single_threaded_opencv


def test_the_limit_is_set_once_and_restored_when_the_last_thread_leaves_out_of_order():
    calls = []
    limit = _ProcessWideLimit(lambda: calls.append("set") or (lambda: calls.append("restored")))
    first_inside, second_inside, first_left = threading.Event(), threading.Event(), threading.Event()

    def first():
        with limit:
            first_inside.set()
            second_inside.wait(5)
        first_left.set()

    def second():
        first_inside.wait(5)
        with limit:
            second_inside.set()
            first_left.wait(5)
            assert calls == ["set"]  # the first thread has left; the limit holds for this one
        assert calls == ["set", "restored"]

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == ["set", "restored"]
    with limit:
        assert calls == ["set", "restored", "set"]
    assert calls == ["set", "restored", "set", "restored"]


def test_the_limit_is_restored_when_the_work_inside_raises():
    before = cv2.getNumThreads()
    try:
        with single_threaded_opencv:
            assert cv2.getNumThreads() == 1
            raise ValueError("inside")
    except ValueError:
        pass
    assert cv2.getNumThreads() == before


def blas_threads() -> list[int]:
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


def test_blas_runs_on_one_thread_inside_and_as_before_after_an_alignment():
    before = blas_threads()
    with single_threaded_blas:
        assert set(blas_threads()) <= {1}
    photo = skimage.data.astronaut()
    gray = np.repeat(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert align(gray, photo).accepted
    assert blas_threads() == before and cv2.getNumThreads() >= 1
