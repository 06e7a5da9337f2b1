"""Numba-compiled loops, cached on disk where a folder for the cache can be written.

Numba keeps compiled code beside the module (``__pycache__``) or, where that cannot be written, in
the user's cache folder; where neither can (a service account without a home, a read-only
install), caching is refused when the function is decorated, and the loop is compiled in each
process instead (a second or two the first time it runs) rather than failing the import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numba

log = logging.getLogger(__name__)


def compiled(**options) -> Callable[[Callable], Callable]:
    """``numba.njit(nogil=True, cache=True, **options)``, without the cache where it cannot be kept."""

    def decorate(function: Callable) -> Callable:
        try:
            return numba.njit(nogil=True, cache=True, **options)(function)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
            log.debug("compiling %s in each process: %s", function.__qualname__, exc)
            return numba.njit(nogil=True, **options)(function)

    return decorate
