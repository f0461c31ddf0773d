"""Session keyrings: each container gets its own, so it cannot read the host's keys."""
from __future__ import annotations

import errno
import os

from lowrt.linux.libc import SYSCALLS, get_errno, libc

KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """Join a new session keyring named name. Kernels without keyrings (ENOSYS) are fine."""
    ret = libc.syscall(SYSCALLS["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, os.fsencode(name))
    if ret == -1:
        err = get_errno()
        if err not in (errno.ENOSYS, errno.EACCES):
            raise OSError(err, f"join session keyring {name}: {os.strerror(err).lower()}")
