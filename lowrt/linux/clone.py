"""clone3(2) used as a fork whose child starts in a given cgroup v2 (CLONE_INTO_CGROUP, 5.7).

Why: moving a process into a cgroup after fork (a write to cgroup.procs) takes the kernel's
cgroup threadgroup rwsem for writing, and that first waits for an RCU grace period when no
migration happened lately (see lowrt/warmup.py): milliseconds of a container start. A child
cloned into its cgroup never migrates, so nothing waits.

Python has no clone3, so fork_into_cgroup() does what os.fork() does around fork(2):
PyOS_BeforeFork(), the system call, then PyOS_AfterFork_Child() or PyOS_AfterFork_Parent(),
all three called as Python-API functions, which ctypes calls without releasing the GIL. Unlike
glibc's fork(), a raw clone3 runs no libc fork handlers: it is safe only while no other thread
runs (another thread could hold a libc or interpreter lock that the child would inherit held).
The caller checks that (lowrt/spawn.py) and falls back to fork() and a migration otherwise,
and whenever the kernel refuses: ENOSYS before 5.3, EINVAL for the flag before 5.7, EPERM
from a seccomp filter that refuses clone3, or any error about the cgroup itself.
"""
from __future__ import annotations

import _ctypes
import os

from lowrt.linux.libc import SYSCALLS, Structure, byref, c_uint64, get_errno, libc, sizeof

CLONE_INTO_CGROUP = 0x200000000
SIGCHLD = 17


class _CloneArgs(Structure):
    _fields_ = [(name, c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


class _c_long(_ctypes._SimpleCData):
    _type_ = "l"


class _WithGIL(_ctypes.CFuncPtr):
    """A C function called with the GIL held (ctypes' PyDLL convention), errno saved."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _c_long


class _VoidWithGIL(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = None


_syscall = _WithGIL(("syscall", libc))
_before = _VoidWithGIL(("PyOS_BeforeFork", libc))
_after_child = _VoidWithGIL(("PyOS_AfterFork_Child", libc))
_after_parent = _VoidWithGIL(("PyOS_AfterFork_Parent", libc))


def fork_into_cgroup(cgroup_fd: int, path: str) -> int:
    """fork(), the child starting in the cgroup v2 directory open at cgroup_fd (path names it
    in errors). Returns 0 in the child and its pid in the parent; OSError when refused."""
    nr = SYSCALLS.get("clone3")
    if nr is None:
        raise OSError(38, f"clone3: no syscall number known for {os.uname().machine}")
    args = _CloneArgs()
    args.flags = CLONE_INTO_CGROUP
    args.exit_signal = SIGCHLD
    args.cgroup = cgroup_fd
    _before()
    pid = _syscall(nr, byref(args), sizeof(args))
    if pid == 0:
        _after_child()
        return 0
    err = get_errno()
    _after_parent()
    if pid < 0:
        raise OSError(err, f"clone3 into cgroup {path}: {os.strerror(err).lower()}")
    return pid
