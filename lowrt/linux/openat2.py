"""openat2(2) (Linux 5.6): path resolution the kernel keeps inside a directory.

lowrt resolves every path inside a container's rootfs with RESOLVE_IN_ROOT, so that the kernel
treats the rootfs as "/" for symlinks and "..", atomically: no window in which a swapped
symlink could send the lookup to the host. Where the kernel lacks the call (ENOSYS), or a
seccomp policy above lowrt denies it (EPERM), `available()` says so and lowrt.securejoin walks
the path itself.
"""
from __future__ import annotations

import os
import sys

from lowrt.linux.libc import check, get_errno, libc

# The same number on every architecture: openat2 came after the syscall tables were unified.
SYS_OPENAT2 = 437

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_ENOSYS, _EPERM = 38, 1




def _how(flags: int, mode: int, resolve: int) -> bytes:
    """struct open_how: three native u64 (bytes, not a ctypes Structure, whose class costs
    more to make at import than every call here)."""
    return b"".join(v.to_bytes(8, sys.byteorder) for v in (flags, mode, resolve))


_available: bool | None = None


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """The new fd; OSError naming path on failure (EAGAIN: a rename raced the lookup)."""
    how = _how(flags, mode, resolve)
    return check(libc.syscall(SYS_OPENAT2, dirfd, os.fsencode(path), how, len(how)),
                 "openat2", path)


def available() -> bool:
    """Whether openat2 works here; probed once per process (one cheap call on ".")."""
    global _available
    if _available is None:
        how = _how(os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT)
        fd = libc.syscall(SYS_OPENAT2, -100, b".", how, len(how))
        if fd >= 0:
            os.close(fd)
            _available = True
        else:
            _available = get_errno() not in (_ENOSYS, _EPERM)
    return _available
