"""What a person reads in colorbot's log: its own lines, not TensorFlow's start-up chatter."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import PIL.Image
import pytest

# TensorFlow's C++ lines on a machine without a GPU (absl's and TSL's formats), and the notices a
# newcomer reads as failures.
NATIVE = re.compile(r"^(?:[IWEF]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]|\d{4}-\d\d-\d\d [\d:.]+: [IWEF] \S+\.cc:\d+\])"
                    r"|absl::InitializeLog|cuda drivers|cuInit|oneDNN|rebuild TensorFlow", re.MULTILINE)


def colorize_one(tmp_path, *options: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    PIL.Image.new("RGB", (40, 30), (120, 100, 80)).save(tmp_path / "photo.png")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COLORBOT_", "TF_CPP_", "TF_ENABLE_ONEDNN"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "colorbot", *options, "colorize", "photo.png", "--out", "out"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "options, env, debug",
    [((), {}, False), (("-v",), {}, True), ((), {"COLORBOT_LOGGING__LEVEL": "DEBUG"}, True)],
    ids=["info", "verbose", "logging-level-debug"],
)
def test_tensorflow_start_up_lines_are_silenced_below_debug(tmp_path, options, env, debug):
    result = colorize_one(tmp_path, *options, env_extra=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "photo.png").is_file()
    if not debug:
        assert not NATIVE.search(result.stderr), result.stderr
        assert result.stderr.strip() == ""  # nothing else to say about one good photo
    else:  # kept for whoever asks for everything: TensorFlow's own lines, native or passed on at DEBUG
        assert NATIVE.search(result.stderr), result.stderr[-3000:]
