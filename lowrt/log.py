"""lowrt's log, in the two formats runc writes: logrus text or JSON lines.

containerd and dockerd read the JSON form (`--log-format json`) to learn why a command failed,
so an error must reach the log file; it goes to stderr too when the log is a file.
"""
from __future__ import annotations

import os
import sys
import time

from lowrt import fastjson
from lowrt.timefmt import rfc3339

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
STARTED = time.monotonic()


class Log:
    def __init__(self, path: str = "", fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.format = fmt
        self.threshold = LEVELS["debug" if debug else "info"]
        self._fd: int | None = None

    def _out(self) -> int:
        if self._fd is None:
            if self.path:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                                   0o644)
            else:
                self._fd = 2
        return self._fd

    def to_stderr(self) -> bool:
        return not self.path or self.path in ("/dev/stderr", "/proc/self/fd/2")

    def write(self, level: str, msg: str) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = rfc3339(time.time())
        if self.threshold <= LEVELS["debug"]:  # with --debug, milliseconds since lowrt began
            msg = f"[{(time.monotonic() - STARTED) * 1e3:.1f} ms] {msg}"
        if self.format == "json":
            line = fastjson.dumps({"level": level, "msg": msg, "time": now}, compact=True)
        else:
            line = f'time="{now}" level={level} msg={_quote(msg)}'
        try:
            os.write(self._out(), (line + "\n").encode(errors="replace"))
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        self.write("debug", msg)

    def warning(self, msg: str) -> None:
        self.write("warning", msg)

    def error(self, msg: str) -> None:
        """Log an error; also print it on stderr when the log goes elsewhere, as runc does."""
        self.write("error", msg)
        if not self.to_stderr():
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()


def _quote(msg: str) -> str:
    """logrus quotes a text value when it holds anything but plain word characters."""
    if msg and all(c.isalnum() or c in "-._/@^+" for c in msg):
        return msg
    return '"' + msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# The process-wide log, configured by the command line before any verb runs.
log = Log()
