"""inotify, for cgroup v2's OOM notification (memory.events changes when an OOM kill lands).

glibc wraps inotify but Python's os module does not; two calls through libc (lowrt.linux.libc) suffice.
"""
from __future__ import annotations

import os

from lowrt.cgroups.fs import CgroupError

IN_MODIFY = 0x00000002
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


def watch_modify(path: str) -> int:
    """A non-blocking inotify fd that becomes readable whenever `path` is modified."""
    from lowrt.linux.libc import get_errno, libc
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        err = get_errno()
        raise CgroupError(f"inotify_init1: {os.strerror(err).lower()}", err)
    if libc.inotify_add_watch(fd, path.encode(), IN_MODIFY) < 0:
        err = get_errno()
        os.close(fd)
        raise CgroupError(f"watch {path}: {os.strerror(err).lower()}", err)
    return fd
