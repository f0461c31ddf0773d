"""The loopback device of a new network namespace."""
from __future__ import annotations

import _socket
import fcntl
import os
import sys

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ_SIZE = 40   # struct ifreq: a 16-byte name, then a union whose first member is the flags


def loopback_up() -> None:
    """Set `lo` up, as runc does for every network namespace it creates (a new namespace's lo
    starts down, and programs that listen on 127.0.0.1 expect it)."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM, 0)
    try:
        req = bytearray(b"lo".ljust(_IFREQ_SIZE, b"\0"))
        fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req)
        flags = int.from_bytes(req[16:18], sys.byteorder) | _IFF_UP
        req[16:18] = flags.to_bytes(2, sys.byteorder)
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, req)
    except OSError as e:
        raise OSError(e.errno, f"set loopback device lo up: {os.strerror(e.errno).lower()}") from None
    finally:
        s.close()
