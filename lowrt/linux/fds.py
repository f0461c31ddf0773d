"""File descriptors that must not reach the container: everything lowrt holds is marked close-on-exec."""
from __future__ import annotations

import fcntl
import os

from lowrt.linux.libc import SYSCALLS, c_uint, libc

CLOSE_RANGE_CLOEXEC = 1 << 2


def cloexec_from(first: int) -> None:
    """Mark every fd >= first close-on-exec (close_range(2) where the kernel has it, 5.11+)."""
    nr = SYSCALLS.get("close_range")
    if nr is not None and libc.syscall(nr, first, c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                set_cloexec(fd, True)
            except OSError:  # the fd of the listdir itself, already closed
                pass


def close_all_but(keep: set[int]) -> None:
    """Close every fd not in keep: for the init, which shows in the container's /proc from
    `create` on, everything lowrt inherited or opened before the fork."""
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the fd of the listdir itself, already closed
                pass


def set_cloexec(fd: int, on: bool) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    new = flags | fcntl.FD_CLOEXEC if on else flags & ~fcntl.FD_CLOEXEC
    if new != flags:
        fcntl.fcntl(fd, fcntl.F_SETFD, new)
