"""The C library handle, the C types lowrt passes to it, raw syscall numbers, and the errno
check every wrapper uses.

Built on `_ctypes`, the C half of `ctypes`: `import ctypes` costs 4-6 ms here (its module body
makes some thirty types and a callback thunk), a tenth of a `lowrt run`, for the eight types,
five helpers and one library handle lowrt uses. These are the same C implementation that
ctypes wraps, declared the way ctypes declares them, so they behave as ctypes' own do.
"""
from __future__ import annotations

import _ctypes
import os


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_ushort(_ctypes._SimpleCData):
    _type_ = "H"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_uint64(_ctypes._SimpleCData):
    _type_ = "Q"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


c_uint32 = c_uint   # as in ctypes: int is 32 bits on every Linux ABI lowrt knows
Structure = _ctypes.Structure
Array = _ctypes.Array
byref = _ctypes.byref
addressof = _ctypes.addressof
sizeof = _ctypes.sizeof
get_errno = _ctypes.get_errno


def create_string_buffer(init: bytes | int, size: int | None = None) -> Array:
    """A mutable char array, as ctypes.create_string_buffer: zeroed, of `init` bytes when an
    int, else holding the bytes init (NUL-terminated when size leaves room)."""
    if isinstance(init, int):
        return (c_char * init)()
    buf = (c_char * (len(init) + 1 if size is None else size))()
    buf.value = init
    return buf


class _Function(_ctypes.CFuncPtr):
    """A libc function: C calling convention, int result, errno saved for get_errno()."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _Library:
    """The symbols already loaded in the process (dlopen(NULL)), as ctypes.CDLL(None)."""

    def __init__(self) -> None:
        self._handle = _ctypes.dlopen(None, 0)

    def __getattr__(self, name: str) -> _Function:
        if name.startswith("__"):
            raise AttributeError(name)
        func = _Function((name, self))
        setattr(self, name, func)
        return func


libc = _Library()

# Syscalls that glibc 2.36 does not wrap, or wraps in ways we cannot use from ctypes.
_SYSCALLS = {
    "x86_64": {
        "pivot_root": 155, "setns": 308, "unshare": 272, "seccomp": 317, "bpf": 321,
        "pidfd_open": 434, "pidfd_send_signal": 424, "clone3": 435, "close_range": 436,
        "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "capget": 125, "capset": 126, "prctl": 157, "keyctl": 250, "rt_sigaction": 13,
    },
    "aarch64": {
        "pivot_root": 41, "setns": 268, "unshare": 97, "seccomp": 277, "bpf": 280,
        "pidfd_open": 434, "pidfd_send_signal": 424, "clone3": 435, "close_range": 436,
        "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "capget": 90, "capset": 91, "prctl": 167, "keyctl": 219, "rt_sigaction": 134,
    },
}
MACHINE = os.uname().machine
SYSCALLS = _SYSCALLS.get(MACHINE, {})


def check(ret: int, what: str, target: object = None) -> int:
    """Return ret, or raise OSError(errno, "<what> <target>: <strerror>") when ret is -1."""
    if ret == -1:
        err = get_errno()
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
