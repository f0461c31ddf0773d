"""Reading a container's json-file log, the one its shim writes in docker's format:
one JSON object per line, `{"log": "...", "stream": "stdout"|"stderr", "time": RFC 3339 nano}`,
in `<id>-json.log`, rotated to `<id>-json.log.1` (the newest old file), `.2`, ...

Follow mode polls the file: the shim, not berthd, is the writer, and it keeps writing across
berthd restarts. A follow ends once the container has stopped and the file is drained.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from . import timefmt

POLL_INTERVAL = 0.05


@dataclass
class Options:
    stdout: bool = True
    stderr: bool = True
    since: int = 0          # ns; entries older are skipped
    until: int = 0          # ns; entries newer end the read (0: no bound)
    tail: int = -1          # the last N entries only (-1: all)
    timestamps: bool = False
    details: bool = False
    follow: bool = False


@dataclass
class Entry:
    stream: int             # 1 stdout, 2 stderr
    data: bytes
    time: int
    attrs: dict


def log_files(path: Path) -> list[Path]:
    """The log's files, the oldest first."""
    rotated = []
    n = 1
    while True:
        p = path.with_name(f"{path.name}.{n}")
        if not p.exists():
            break
        rotated.append(p)
        n += 1
    return list(reversed(rotated)) + ([path] if path.exists() else [])


def parse_line(line: bytes) -> Entry | None:
    try:
        obj = json.loads(line)
        stream = 2 if obj.get("stream") == "stderr" else 1
        return Entry(stream, obj.get("log", "").encode("utf-8", "surrogateescape"),
                     timefmt.parse_rfc3339(obj["time"]) if obj.get("time") else 0,
                     obj.get("attrs") or {})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None   # a torn or foreign line: skip it, as docker's reader does


def render(entry: Entry, opts: Options) -> bytes:
    prefix = b""
    if opts.timestamps:
        prefix += timefmt.rfc3339nano_fixed(entry.time).encode() + b" "
    if opts.details:
        prefix += ",".join(f"{k}={v}" for k, v in sorted(entry.attrs.items())).encode() + b" "
    return prefix + entry.data


class _Follower:
    """Reads complete lines from the live log file, across rotations."""

    def __init__(self, path: Path):
        self.path = path
        self.f = None
        self.ino = None
        self.partial = b""

    def _open(self) -> bool:
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        self.ino = os.fstat(self.f.fileno()).st_ino
        self.partial = b""
        return True

    def start_at_end(self) -> None:
        if self._open():
            self.f.seek(0, os.SEEK_END)

    def read_lines(self) -> list[bytes]:
        lines: list[bytes] = []
        if self.f is None and not self._open():
            return lines
        while True:
            lines += self._drain()
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                return lines
            if current == self.ino:
                return lines
            # rotated: the old file is complete (drained above); go on with the new one
            self.f.close()
            if not self._open():
                return lines

    def _drain(self) -> list[bytes]:
        data = self.partial + self.f.read()
        *complete, self.partial = data.split(b"\n")
        return [line for line in complete if line]

    def close(self) -> None:
        if self.f:
            self.f.close()


async def read(path: Path, opts: Options, *, running: Callable[[], bool],
               changed: Callable[[], asyncio.Event]) -> AsyncIterator[Entry]:
    """Yield entries per opts. `running()` says whether the container still runs; `changed()`
    is an event set when it stops, so a follow ends without waiting for the next poll."""

    def wanted(e: Entry | None) -> bool:
        return (e is not None and (opts.stdout if e.stream == 1 else opts.stderr)
                and (not opts.since or e.time >= opts.since))

    follower = _Follower(path) if opts.follow else None
    if follower:
        # open the live file before reading the old ones, so nothing written meanwhile is lost
        follower.start_at_end()
        start_size = follower.f.tell() if follower.f else 0
    try:
        backlog: deque[Entry] = deque(maxlen=opts.tail if opts.tail >= 0 else None)
        for p in log_files(path):
            live = follower is not None and follower.f is not None and p == path
            with open(p, "rb") as f:
                data = f.read(start_size) if live else f.read()
            if live:
                # the follower takes over after the last complete line
                data = data[:data.rfind(b"\n") + 1]
                follower.f.seek(len(data))
            for line in data.split(b"\n"):
                e = parse_line(line) if line else None
                if wanted(e):
                    if opts.until and e.time > opts.until:
                        break
                    backlog.append(e)
        for e in backlog:
            yield e
        if not follower:
            return
        if follower.f is None:
            follower = _Follower(path)   # the file appears when the container first starts
        while True:
            was_running = running()
            for line in follower.read_lines():
                e = parse_line(line)
                if wanted(e):
                    if opts.until and e.time > opts.until:
                        return
                    yield e
            if not was_running:
                return
            if opts.until and timefmt.now_ns() > opts.until:
                return
            try:
                await asyncio.wait_for(changed().wait(), POLL_INTERVAL)
            except asyncio.TimeoutError:
                pass
    finally:
        if follower:
            follower.close()
