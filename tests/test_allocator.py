"""colorbot's processes keep freed memory for reuse (colorbot/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from colorbot import cli

PROBE = """
import ctypes, sys
import numpy as np
from colorbot.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = np.ones(40 << 20, np.uint8)  # 40 MB: above glibc's largest automatic mmap threshold (32 MB)
del block
print(libc.mallinfo2().fordblks >> 20)  # MB free in the heap, kept for the next allocation
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_freed_block_of_a_photos_size_is_kept_for_the_next_one():
    def kept_mb(mode: str) -> int:
        return int(subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                                  check=True).stdout)

    assert kept_mb("default") < 40 <= kept_mb("keep")


def test_the_command_line_keeps_freed_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(cli, "cli", lambda **kwargs: calls.append("cli"))
    cli.main()
    assert calls == ["kept", "cli"]
