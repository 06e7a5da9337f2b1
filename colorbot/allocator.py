"""glibc's allocator told to keep freed memory for the next photo instead of handing it back.

By default glibc returns a freed block of more than a few MB to the kernel at once (it was mapped on
its own, or the heap's free top grew past the trim threshold), so the next photo's arrays of the
same size are mapped again, and the kernel zeroes every page on first touch. Evaluating a 1 MP pair
allocates and frees a few hundred MB that way (SIFT's pyramids, float copies of the images), and the
page faults took 35 ms of its 0.30 s (``benchmarks/evaluate.py``, with and without). Blocks up to
``MMAP_THRESHOLD`` now come from the heap and up to ``TRIM_THRESHOLD`` of free heap is kept: the
process holds on to at most that much memory it is not using, and its peak is what it was.

Only the application's own processes (``colorbot`` and the benchmarks that measure its steps) do
this: it is a setting of the whole process, which a library imported by others should not make.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 512 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where libc is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        done = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError) as exc:
        log.debug("glibc's mallopt is not available: %s", exc)
        return False
    return done
