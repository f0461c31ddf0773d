"""OOM kills in the container's cgroup, through lowrt's cgroups library.

The library gives an fd that polls readable when an OOM kill may have happened (cgroup v1: an
eventfd on memory.oom_control; v2: inotify on memory.events) and the kernel's count of OOM kills;
an event is sent when the count goes up. The count is checked once more before the init's exit is
published, so an OOM that killed the init is reported before its exit, as docker expects.
"""
from __future__ import annotations

import os
from _collections_abc import Callable  # see shim/loop.py

from shim.loop import Loop


def preload() -> None:
    """Load the cgroups library ahead of an OOMWatcher (see shim.task's Create)."""
    from lowrt import cgroups
    cgroups.preload()


class OOMWatcher:
    def __init__(self, loop: Loop, pid: int, on_oom: Callable[[], None], log) -> None:
        from lowrt import cgroups
        self.loop = loop
        self.on_oom = on_oom
        self.log = log
        self.manager = cgroups.manager_for_pid(pid)
        self.kills = self.manager.oom_kills()
        self.fd = self.manager.oom_fd()
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            os.read(self.fd, 4096)   # the eventfd counter or the inotify events: just drain
        except BlockingIOError:
            pass
        except OSError as e:
            self.log(f"oom: reading the oom fd: {e}")
            self.stop()
            return
        self.check()

    def check(self) -> None:
        try:
            kills = self.manager.oom_kills()
        except OSError:     # the cgroup is gone
            return
        if kills > self.kills:
            self.kills = kills
            self.on_oom()

    def stop(self) -> None:
        if self.fd >= 0:
            self.loop.forget(self.fd)
            os.close(self.fd)
            self.fd = -1
