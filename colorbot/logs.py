"""The command line's log: one format, no credentials, no TensorFlow start-up chatter below DEBUG.

TensorFlow's C++ runtime prints its own lines to stderr when it is imported and on first use
("Could not find cuda drivers", a ``cuInit`` error, oneDNN and CPU-instruction notices); a newcomer
reads them as failures and in a long log they bury the real ones. Below DEBUG, colorbot sets
``TF_CPP_MIN_LOG_LEVEL=3`` (what TensorFlow logs after start-up) and, because TensorFlow ≥ 2.19
writes its import-time lines through absl before that setting is read, imports TensorFlow with
stderr caught: its native lines go to colorbot's log at DEBUG, anything else through unchanged.
Both happen only if TensorFlow is not imported yet, and never override a value the user set.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator

from db.safe_text import mask_credentials

log = logging.getLogger("colorbot")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# absl's "I0000 00:00:1796160769.825498   20015 cudart_stub.cc:31] …", TSL's older
# "2025-09-17 14:44:05.157831: I external/…/cudart_stub.cc:32] …" and the lines that follow them.
_NATIVE_LINE = re.compile(
    r"^(?:[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions:)"
)
_set_by_us: dict[str, str] = {}


class CredentialMask(logging.Filter):
    """Masks the passwords of URLs in a record's message and traceback, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_credentials(record.exc_text)
        return True


def configure_logging(*, debug: bool) -> None:
    """Log to stderr in colorbot's format, credentials masked; TensorFlow quiet unless ``debug``."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=FORMAT, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, CredentialMask) for existing in handler.filters):
            handler.addFilter(CredentialMask())
    if debug:
        allow_native_logs()
    else:
        quiet_native_logs()


def quiet_native_logs() -> None:
    if "tensorflow" in sys.modules:
        return
    for name, value in QUIET_ENVIRONMENT.items():
        if name not in os.environ:
            os.environ[name] = _set_by_us[name] = value
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def allow_native_logs() -> None:
    """Undo :func:`quiet_native_logs` (``logging.level = "DEBUG"`` is known only once the config is read)."""
    if "tensorflow" in sys.modules:
        return
    for name, value in list(_set_by_us.items()):
        if os.environ.get(name) == value:
            del os.environ[name]
        del _set_by_us[name]
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietTensorFlowImport)]


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and has it executed with stderr caught."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _CaughtStderrLoader(spec.loader)
        return spec


class _CaughtStderrLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with _stderr_caught():
            self.loader.exec_module(module)


@contextmanager
def _stderr_caught() -> Iterator[None]:
    """File descriptor 2 into a file while the block runs; then native log lines to the log at
    DEBUG and every other line (a Python warning, another thread's log line) back to stderr."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (a closed or replaced stream)
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            _pass_on(caught.read().decode("utf-8", "replace"))


def _pass_on(text: str) -> None:
    native = False
    for line in text.splitlines():
        if _NATIVE_LINE.match(line):
            native = True
        elif native and line.startswith((" ", "\t")):  # a continuation of the native line before
            pass
        else:
            native = False
            print(line, file=sys.stderr)
            continue
        log.debug("tensorflow: %s", line)
