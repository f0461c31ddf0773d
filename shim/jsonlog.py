"""docker's json-file log, written by the shim itself so that `docker logs` works unchanged.

One JSON object per line, `{"log":"…","stream":"stdout","time":"<RFC 3339 nano UTC>"}`, as moby's
jsonfilelog writes it: the output of each stream is cut into lines, a line that grows past 16 KiB
without a newline is written in 16 KiB pieces without a trailing "\\n" (docker's partial
messages), what is left at the end of a stream is written with one. The file is rotated to
PATH.1 … PATH.<max-file - 1> once it has reached max-size (docker checks before each write, so a
file may exceed max-size by one entry). Strings are escaped as Go's encoder does (HTML-safe,
U+2028/9 escaped, each invalid UTF-8 byte as \\ufffd), so the bytes match docker's.
"""
from __future__ import annotations

import os
import time

from lowrt import units

LINE_MAX = 16 * 1024  # moby's copier buffer: longer lines are split into partial messages


def _escape_table() -> dict[int, str]:
    table = {c: f"\\u{c:04x}" for c in range(0x20)}
    table.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"',
                  ord("\\"): "\\\\", ord("<"): "\\u003c", ord(">"): "\\u003e",
                  ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"})
    # surrogateescape turns each invalid byte into U+DC80..U+DCFF; Go writes \ufffd for each.
    table.update({c: "\\ufffd" for c in range(0xDC80, 0xDD00)})
    return table


_ESCAPES = _escape_table()


def json_string(data: bytes) -> bytes:
    return b'"' + data.decode("utf-8", "surrogateescape").translate(_ESCAPES).encode() + b'"'


class _Clock:
    """RFC 3339 with nanoseconds, trailing zeros trimmed (Go's time.RFC3339Nano), in UTC."""
    __slots__ = ("_sec", "_prefix")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def now(self) -> bytes:
        ns = time.time_ns()
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        if frac:
            return f'{self._prefix}.{frac:09d}'.rstrip("0").encode() + b"Z"
        return self._prefix.encode() + b"Z"


# docker's json-file driver reads max-size as go-units' FromHumanSize: decimal ("10m" is
# 10,000,000 bytes); one parser for berthd, the shim and lowrt, in lowrt/units.py
parse_size = units.from_human_size


class JsonLog:
    """The log file of one container (or exec), shared by its stdout and stderr."""

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1) -> None:
        if max_file < 1:
            raise ValueError(f"max-file for {path} must be at least 1, not {max_file}")
        if max_file > 1 and max_size <= 0:
            raise ValueError(f"max-file for {path} needs max-size")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._pending: dict[str, bytes] = {}   # stream -> the start of a line not yet ended
        self._clock = _Clock()

    def write(self, stream: str, data: bytes) -> None:
        """Log what a stream produced; whole lines now, the rest when it ends or fills 16 KiB."""
        buf = self._pending.pop(stream, b"") + data
        start = 0
        end = len(buf)
        while start < end:
            nl = buf.find(b"\n", start, min(end, start + LINE_MAX))
            if nl >= 0:
                self._entry(stream, buf[start:nl + 1])
                start = nl + 1
            elif end - start >= LINE_MAX:
                self._entry(stream, buf[start:start + LINE_MAX])  # partial: no newline
                start += LINE_MAX
            else:
                break
        if start < end:
            self._pending[stream] = buf[start:]

    def end_stream(self, stream: str) -> None:
        """The stream reached EOF: its last, unterminated line is logged with a newline."""
        rest = self._pending.pop(stream, b"")
        if rest:
            self._entry(stream, rest + b"\n")

    def close(self) -> None:
        for stream in list(self._pending):
            self.end_stream(stream)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _entry(self, stream: str, line: bytes) -> None:
        record = b'{"log":' + json_string(line) + b',"stream":"' + stream.encode() + \
            b'","time":"' + self._clock.now() + b'"}\n'
        if self.max_size > 0 and self._size >= self.max_size:
            self._rotate()
        os.write(self._fd, record)
        self._size += len(record)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file > 1:
            for i in range(self.max_file - 1, 1, -1):
                older = f"{self.path}.{i - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i}")
            os.replace(self.path, f"{self.path}.1")
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = 0
