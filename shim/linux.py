"""The shim's privileged kernel calls (prctl, mount, umount2): C calls raising OSError.

Python 3.11's os module has none of these. They live here alone, so the rest of the shim is plain
Python. They go through `_ctypes`, the C half of ctypes, as lowrt's do (lowrt/linux/libc.py):
`import ctypes` costs 4-6 ms, and memory, in every shim, for three functions and one type.
"""
from __future__ import annotations

import _ctypes
import os


class _c_int(_ctypes._SimpleCData):
    _type_ = "i"


class _c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class _Function(_ctypes.CFuncPtr):
    """A libc function: C calling convention, int result, errno saved for get_errno()."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _c_int


class _Libc:
    """The symbols already loaded in the process, as ctypes.CDLL(None)."""
    _handle = _ctypes.dlopen(None, 0)


_libc = _Libc()
_prctl = _Function(("prctl", _libc))
_mount = _Function(("mount", _libc))
_umount2 = _Function(("umount2", _libc))

PR_SET_CHILD_SUBREAPER = 36

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

# mount(8) options that are flags rather than data for the filesystem.
MOUNT_FLAGS = {
    "ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True), "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
    "bind": (MS_BIND, True), "rbind": (MS_BIND | MS_REC, True),
}


def _check(ret: int, what: str) -> None:
    if ret == -1:
        err = _ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")


def set_child_subreaper() -> None:
    """Orphaned descendants (the container init once `runtime create` exits) become our children."""
    _check(_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _check(_mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                  _c_ulong(flags), data.encode() if data else None),
           f"mount {fstype or 'bind'} {source} on {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_umount2(target.encode(), flags), f"unmount {target}")


def parse_options(options: list[str]) -> tuple[int, str]:
    """mount(8)-style options -> (MS_* flags, comma-joined data for the filesystem)."""
    flags = 0
    data = []
    for opt in options:
        known = MOUNT_FLAGS.get(opt)
        if known is None:
            data.append(opt)
        elif known[1]:
            flags |= known[0]
        else:
            flags &= ~known[0]
    return flags, ",".join(data)


def mount_one(fstype: str, source: str, target: str, options: list[str]) -> None:
    """Mount as containerd's mount.Mount does: bind mounts remounted for ro, others with data."""
    flags, data = parse_options(options)
    if flags & MS_BIND or fstype == "bind":
        flags |= MS_BIND
        mount(source, target, "", flags & (MS_BIND | MS_REC))
        if flags & ~(MS_BIND | MS_REC):  # ro, nosuid... only take effect on a remount
            mount("", target, "", flags | MS_REMOUNT)
        return
    mount(source, target, fstype, flags, data)


def mountpoints_under(path: str) -> list[str]:
    """Mount points at or below path (from /proc/self/mountinfo), deepest first."""
    prefix = path.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = line.split(b" ", 5)[4].decode()
            # mountinfo escapes space, tab, newline and backslash as octal.
            if "\\" in point:
                point = point.encode().decode("unicode_escape").encode("latin-1").decode()
            if point == path or point.startswith(prefix):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def unmount_all(path: str) -> None:
    """Unmount everything mounted at or below path, falling back to a lazy detach when busy."""
    for point in mountpoints_under(path):
        try:
            umount(point)
        except OSError as e:
            if e.errno == 22:  # EINVAL: already gone (a parent's unmount took it)
                continue
            umount(point, MNT_DETACH)
