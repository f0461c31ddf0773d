"""Installing a seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER), or prctl(PR_SET_SECCOMP) on
kernels without the seccomp syscall (before 3.17, and only when no flags are asked for)."""
from __future__ import annotations

import errno
import os

from lowrt.linux.libc import (Structure, addressof, byref, c_ulong, c_ushort, c_void_p,
                              create_string_buffer, get_errno, libc, syscall)

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_FILTER = 2
PR_SET_SECCOMP = 22


class SockFprog(Structure):
    _fields_ = [("len", c_ushort), ("filter", c_void_p)]


def set_filter(program: bytes, flags: int = 0) -> None:
    """Attach a classic BPF program (packed struct sock_filter) to this thread; with
    SECCOMP_FILTER_FLAG_TSYNC to every thread of the process.

    The kernel requires no_new_privs or CAP_SYS_ADMIN in the caller's user namespace.
    """
    buf = create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, addressof(buf))
    try:
        ret = syscall("seccomp", c_ulong(SECCOMP_SET_MODE_FILTER),
                      c_ulong(flags), byref(prog))
    except OSError as err:
        if err.errno != errno.ENOSYS or flags:
            raise OSError(err.errno, f"seccomp set filter ({len(program) // 8} instructions, "
                                     f"flags {flags:#x}): {os.strerror(err.errno).lower()}"
                          ) from None
        ret = libc.prctl(PR_SET_SECCOMP, c_ulong(SECCOMP_MODE_FILTER),
                         byref(prog), c_ulong(0), c_ulong(0))
        if ret != 0:
            e = get_errno()
            raise OSError(e, f"prctl(PR_SET_SECCOMP): {os.strerror(e).lower()}") from None
    if ret > 0:  # TSYNC: the id of a thread that could not be synchronised
        raise OSError(errno.EAGAIN, f"seccomp set filter: thread {ret} could not be "
                                    "synchronised (SECCOMP_FILTER_FLAG_TSYNC)")
