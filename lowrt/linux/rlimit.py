"""setrlimit(2) through libc (lowrt.linux.libc, loaded anyway), not Python's `resource`: an
extension module whose load costs the container's init about 0.2 ms before its program runs.
Failures are reported as `resource.setrlimit` reports them."""
from __future__ import annotations

import errno
import os

from lowrt.linux.libc import Structure, byref, c_uint64, get_errno, libc

RLIM_INFINITY = 2**64 - 1


class _Rlimit(Structure):
    _fields_ = [("cur", c_uint64), ("max", c_uint64)]


def set_rlimit(resource: int, soft: int, hard: int) -> None:
    """Set a limit of this process (values as the kernel's rlim_t: RLIM_INFINITY unlimited)."""
    if libc.setrlimit(resource, byref(_Rlimit(soft, hard))) == 0:
        return
    err = get_errno()
    if err == errno.EINVAL:
        raise ValueError("current limit exceeds maximum limit")
    if err == errno.EPERM:
        raise ValueError("not allowed to raise maximum limit")
    raise OSError(err, os.strerror(err))
