"""A container's processes (the init and each exec) and their states, as containerd's runc shim
keeps them: created -> running (<-> paused, init only) -> stopped -> deleted.

A process's exit is *reaped* (status known, `init.exit` written) before it is *published*
(state stopped, TaskExit sent, Wait answered): publishing waits until the process's output has
all been read and handed to the log and attach clients, so that `docker logs` after `docker wait`
is complete. If some descendant keeps the output open, publishing goes ahead once the output
has been quiet for DRAIN_IDLE seconds. The init's exit is published after those of its execs.
"""
from __future__ import annotations

import time
from _collections_abc import Callable  # see shim/loop.py

from protos.berth.shim.v1 import shim_lean as pb
from shim.io import ProcessIO

DRAIN_IDLE = 2.0

STATUS_NAMES = {pb.CREATED: "created", pb.RUNNING: "running", pb.STOPPED: "stopped",
                pb.PAUSED: "paused", pb.PAUSING: "pausing", pb.UNKNOWN: "unknown"}


class Process:
    def __init__(self, task, exec_id: str, *, terminal: bool, stdin: str, stdout: str,
                 stderr: str, spec: bytes = b"") -> None:
        self.task = task
        self.exec_id = exec_id
        self.id = exec_id or task.id
        self.terminal = terminal
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.spec = spec
        self.pid = 0
        self.status = pb.CREATED
        self.exit_status = 0
        self.exited_at = 0
        self.reason = ""
        self.reaped = False
        self.published = False
        self.deleted = False
        self.io: ProcessIO | None = None
        self._waiters: list[Callable[[], None]] = []
        self._drain_timer = None
        self._drain_mark = -1

    @property
    def is_init(self) -> bool:
        return not self.exec_id

    def describe(self) -> str:
        return f"process {self.exec_id} of container {self.task.id}" if self.exec_id \
            else f"container {self.task.id}"

    # -- exit ------------------------------------------------------------------------------
    def reaped_exit(self, status: int, exited_at: int) -> None:
        """The reaper's callback: pid has exited with status."""
        if self.reaped:
            return
        self.reaped = True
        self.exit_status = status
        self.exited_at = exited_at
        self.task.process_reaped(self)
        if self.io is not None and not self.io.done:
            self._drain_mark = self.io.activity
            self._drain_timer = self.task.loop.call_later(DRAIN_IDLE, self._drain_check)
        self.task.maybe_publish(self)

    def io_done(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if self.reaped:
            self.task.maybe_publish(self)

    def _drain_check(self) -> None:
        """Output still open DRAIN_IDLE after the exit: go on unless it is still flowing."""
        self._drain_timer = None
        if self.published or self.io is None or self.io.done:
            return
        if self.io.activity != self._drain_mark:
            self._drain_mark = self.io.activity
            self._drain_timer = self.task.loop.call_later(DRAIN_IDLE, self._drain_check)
            return
        self.task.log(f"{self.describe()}: output still open {DRAIN_IDLE}s after exit; "
                      "publishing the exit")
        self.task.maybe_publish(self)

    def output_settled(self) -> bool:
        return self.io is None or self.io.done or self._drain_timer is None

    def publish(self) -> None:
        """Stopped for everyone: answer every waiter."""
        self.published = True
        self.status = pb.STOPPED
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter()

    def fail_start(self, reason: str) -> None:
        """The runtime could not start it: stopped without ever running (waiters answered)."""
        self.reaped = True
        self.exit_status = 255
        self.reason = reason
        self.exited_at = time.time_ns()
        self.publish()

    def wait(self, callback: Callable[[], None]) -> None:
        if self.published:
            callback()
        else:
            self._waiters.append(callback)

    def close_io(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if self.io is not None:
            self.io.close()

    # -- reporting -------------------------------------------------------------------------
    def state(self) -> "pb.StateResponse":
        return pb.StateResponse(
            id=self.task.id, bundle=self.task.bundle, pid=self.pid, status=self.status,
            stdin=self.stdin, stdout=self.stdout, stderr=self.stderr, terminal=self.terminal,
            exit_status=self.exit_status if self.published else 0,
            exited_at=self.exited_at if self.published else 0,
            exec_id=self.exec_id, reason=self.reason)
