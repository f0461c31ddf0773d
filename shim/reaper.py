"""Reaping: the shim is a child subreaper, so every orphan below it becomes its child to wait for.

SIGCHLD only wakes the loop (signal.set_wakeup_fd writes to a pipe the loop watches); the
statuses are then collected with waitpid(-1, WNOHANG) until none is left, and handed out after
the current request is done. Exits of pids nobody has claimed yet are kept for a while: the
container init or an exec can exit, and be reaped, before the pid file that names it is read
(containerd's runc shim keeps such "early exits" the same way).
"""
from __future__ import annotations

import _signal  # `signal` builds enums at import (7 ms here); its C half is enough
import os
import select
import time
from _collections_abc import Callable  # see shim/loop.py

from shim.loop import Loop

ExitCallback = Callable[[int, int], None]   # (exit status, exited_at unix ns)

UNKNOWN_EXIT_TTL = 60.0
UNKNOWN_EXIT_MAX = 256


def exit_status(wait_status: int) -> int:
    """The shell's convention, as containerd reports it: the code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class RuntimeTimeout(Exception):
    pass


class Reaper:
    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_w = wake_w
        _signal.signal(_signal.SIGCHLD, _ignore)
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        loop.add_reader(self._wake_r, self._on_wake)
        loop.add_idle(self.dispatch)
        self._pending: list[tuple[int, int, int]] = []       # (pid, status, exited_at)
        self._watchers: dict[int, ExitCallback] = {}
        self._unknown: dict[int, tuple[int, int, float]] = {}  # pid -> (status, at, monotonic)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _on_wake(self) -> None:
        self._drain_wakeups()
        self.collect()

    def collect(self) -> None:
        """waitpid every exited child now; their callbacks run later, from dispatch()."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._pending.append((pid, exit_status(status), time.time_ns()))

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Call callback when pid exits, at once if it already did."""
        early = self._unknown.pop(pid, None)
        if early is not None:
            callback(early[0], early[1])
            return
        for i, (p, status, at) in enumerate(self._pending):
            if p == pid:
                del self._pending[i]
                callback(status, at)
                return
        self._watchers[pid] = callback

    def dispatch(self) -> None:
        self.collect()
        while self._pending:
            pid, status, at = self._pending.pop(0)
            callback = self._watchers.pop(pid, None)
            if callback is not None:
                callback(status, at)
                continue
            self._unknown[pid] = (status, at, time.monotonic())
        if self._unknown:
            horizon = time.monotonic() - UNKNOWN_EXIT_TTL
            for pid in [p for p, v in self._unknown.items() if v[2] < horizon]:
                del self._unknown[pid]
            while len(self._unknown) > UNKNOWN_EXIT_MAX:
                del self._unknown[next(iter(self._unknown))]

    def wait_for(self, pid: int, timeout: float, output_fd: int = -1) -> tuple[int, bytes]:
        """Block until the short-lived child pid (a runtime command) exits; return its status and
        what it wrote to output_fd. Other children reaped meanwhile are kept for dispatch(), so
        their exits are handled after the request that started pid, in order."""
        out = bytearray()
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if output_fd >= 0:
            poller.register(output_fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        status = None
        while True:
            self.collect()
            for i, (p, st, _at) in enumerate(self._pending):
                if p == pid:
                    del self._pending[i]
                    status = st
                    break
            if status is not None and output_fd < 0:
                return status, bytes(out)
            left = deadline - time.monotonic()
            if left <= 0 and status is not None:
                return status, bytes(out)   # a descendant kept the output open: stop reading
            if left <= 0:
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
                raise RuntimeTimeout(f"timed out after {timeout:g}s")
            for fd, _ in poller.poll(left * 1000):
                if fd == self._wake_r:
                    self._drain_wakeups()
                    continue
                chunk = os.read(output_fd, 65536)
                if chunk:
                    out += chunk
                else:  # EOF: the child and anything it started closed their end
                    poller.unregister(output_fd)
                    output_fd = -1
            if status is not None and output_fd < 0:
                return status, bytes(out)


def _ignore(signum, frame) -> None:
    """A Python-level handler must exist for set_wakeup_fd to see SIGCHLD."""
