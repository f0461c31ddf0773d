"""The mount(2) and umount2(2) calls of the local driver (a volume made with --opt type=…
is mounted on its _data directory when a container first uses it, and unmounted when the last
one stops, as dockerd's local driver does), and whether a path is a mount point. berthd's only
mount syscalls outside the child of container_fs.py: these act on berthd's own mount namespace,
where the runtime finds the _data directory to bind into the container."""
from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

# linux/mount.h
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 0x10, 0x20, 0x40, 0x80
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 0x400, 0x800, 0x1000, 0x4000
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
MS_PROPAGATION = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED
UMOUNT_NOFOLLOW = 0x8


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2); OSError naming the target on failure."""
    if _libc.mount(source.encode() or None, target.encode(), fstype.encode() or None, flags,
                   data.encode() or None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def unmount(target: str) -> None:
    """umount2(2) without following a link; a target that is no mount point is fine."""
    if _libc.umount2(target.encode(), UMOUNT_NOFOLLOW) < 0:
        err = ctypes.get_errno()
        if err == errno.EINVAL and not is_mount_point(target):
            return
        raise OSError(err, os.strerror(err), target)


def is_mount_point(path: str) -> bool:
    """Whether something is mounted at path, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.encode().decode("unicode_escape") == path or point == path:
                return True
    return False
