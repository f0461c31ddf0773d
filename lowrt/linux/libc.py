"""The C library handle, raw syscall numbers, and the errno check every wrapper uses."""
from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

# Syscalls that glibc 2.36 does not wrap, or wraps in ways we cannot use from ctypes.
_SYSCALLS = {
    "x86_64": {
        "pivot_root": 155, "setns": 308, "unshare": 272, "seccomp": 317, "bpf": 321,
        "pidfd_open": 434, "pidfd_send_signal": 424, "clone3": 435, "close_range": 436,
        "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "capget": 125, "capset": 126, "prctl": 157, "keyctl": 250,
    },
    "aarch64": {
        "pivot_root": 41, "setns": 268, "unshare": 97, "seccomp": 277, "bpf": 280,
        "pidfd_open": 434, "pidfd_send_signal": 424, "clone3": 435, "close_range": 436,
        "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "capget": 90, "capset": 91, "prctl": 167, "keyctl": 219,
    },
}
MACHINE = os.uname().machine
SYSCALLS = _SYSCALLS.get(MACHINE, {})


def check(ret: int, what: str, target: object = None) -> int:
    """Return ret, or raise OSError(errno, "<what> <target>: <strerror>") when ret is -1."""
    if ret == -1:
        err = ctypes.get_errno()
        subject = f"{what} {target}" if target is not None else what
        raise OSError(err, f"{subject}: {os.strerror(err).lower()}")
    return ret


def syscall(name: str, *args: object, target: object = None) -> int:
    """A raw syscall by name; returns its result, raising OSError (naming target) on failure."""
    try:
        nr = SYSCALLS[name]
    except KeyError:
        raise OSError(38, f"{name}: no syscall number known for {MACHINE}") from None
    return check(libc.syscall(nr, *args), name, target)
