"""The loopback device of a new network namespace.

Through libc (lowrt.linux.libc, loaded anyway) rather than Python's `_socket` and `fcntl`:
the init needs one socket and two ioctls, and `_socket`'s module setup alone costs it about
0.2 ms before the container's program can start.
"""
from __future__ import annotations

import os
import sys

from lowrt.linux.libc import create_string_buffer, get_errno, libc

_AF_INET = 2
_SOCK_DGRAM = 2
_SOCK_CLOEXEC = 0o2000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ_SIZE = 40   # struct ifreq: a 16-byte name, then a union whose first member is the flags


def _failed() -> OSError:
    err = get_errno()
    return OSError(err, f"set loopback device lo up: {os.strerror(err).lower()}")


def loopback_up() -> None:
    """Set `lo` up, as runc does for every network namespace it creates (a new namespace's lo
    starts down, and programs that listen on 127.0.0.1 expect it)."""
    fd = libc.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0)
    if fd < 0:
        raise _failed()
    try:
        req = create_string_buffer(b"lo", _IFREQ_SIZE)
        if libc.ioctl(fd, _SIOCGIFFLAGS, req) < 0:
            raise _failed()
        flags = int.from_bytes(req.raw[16:18], sys.byteorder) | _IFF_UP
        req[16:18] = flags.to_bytes(2, sys.byteorder)
        if libc.ioctl(fd, _SIOCSIFFLAGS, req) < 0:
            raise _failed()
    finally:
        os.close(fd)
