"""Start the cgroup migration wait early, in the background.

Moving a process into a cgroup (a write to cgroup.procs) takes a per-CPU rwsem for writing,
and when no migration happened in the last few milliseconds the kernel first waits for an RCU
grace period: 10-25 ms here, most of a container start. While one such wait is in progress or
just over, further migrations are fast. So `create`/`run`/`exec` begin with a no-op migration
of lowrt into its own cgroup on a thread, which overlaps that wait with reading the config and
importing; the container's real migration, a few milliseconds later, then costs well under a
millisecond. Failures do not matter: this only saves time.
"""
from __future__ import annotations

import _thread
import os


def _migrate_self(path: str, pid: bytes) -> None:
    # Only raw system calls here, no Python-level lock taken: lowrt forks while this thread
    # may still be blocked in the write, and the child must inherit no held lock.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)
    except OSError:
        pass


def start() -> None:
    path = _own_procs_file()
    if path is not None:
        try:
            _thread.start_new_thread(_migrate_self, (path, str(os.getpid()).encode()))
        except RuntimeError:
            pass


def _own_procs_file() -> str | None:
    """cgroup.procs of the cgroup lowrt is in: a v1 hierarchy's, or the v2 one's."""
    try:
        with open("/proc/self/cgroup", "rb") as f:
            lines = f.read().decode().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        mount = "/sys/fs/cgroup/" + controllers if controllers else "/sys/fs/cgroup"
        if controllers.startswith("name=") or "," in controllers:
            continue
        procs = f"{mount}{path.rstrip('/')}/cgroup.procs"
        if os.path.exists(procs):
            return procs
    return None
