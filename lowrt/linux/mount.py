"""mount(2), umount2(2) and pivot_root(2), and the table of mount options the OCI config uses.

lowrt mounts onto file descriptors, through their /proc/self/fd/N magic links, rather than onto
path strings that could be swapped between the lookup and the mount (see lowrt/securejoin.py):
`fd_path` names such a target, and `mount_id` reads which mount an fd lies on, so that a mount
can be checked to have landed where it was aimed.
"""
from __future__ import annotations

import os

from lowrt.linux.libc import Structure, byref, c_uint64, c_ulong, check, libc, sizeof, syscall

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_POSIXACL = 0x10000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2

# option -> (clear?, flag). "clear" options remove the flag their opposite sets.
FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME), "diratime": (True, MS_NODIRATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
    "silent": (False, MS_SILENT), "loud": (True, MS_SILENT),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME),
    "iversion": (False, MS_I_VERSION), "noiversion": (True, MS_I_VERSION),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
    "acl": (False, MS_POSIXACL), "noacl": (True, MS_POSIXACL),
    "defaults": (False, 0),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# Recursive mount attributes (mount_setattr(2), Linux 5.12): option -> (set, clear) MOUNT_ATTR_* bits.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
RECURSIVE_ATTRS: dict[str, tuple[int, int]] = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
    "rnorelatime": (0, MOUNT_ATTR__ATIME),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "ratime": (0, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, MOUNT_ATTR__ATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
}
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000

# statvfs f_flag bits (ST_*) that a bind remount must keep, mapped to their MS_* flags: the kernel
# refuses a remount of a locked mount (a user namespace's) that would clear them.
STATVFS_KEEP = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                (os.ST_RDONLY, MS_RDONLY), (os.ST_NOATIME, MS_NOATIME),
                (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None, name: str | None = None) -> None:
    """mount(2); an error names `name` (the path the config gave) in place of target when set,
    as target may be a /proc/self/fd/N link."""
    ret = libc.mount(_b(source), _b(target), _b(fstype), c_ulong(flags), _b(data or None))
    if ret == -1:
        kind = fstype or ("bind" if flags & MS_BIND else "")
        what = " ".join(w for w in (kind, source) if w)
        target = name or target
        check(ret, "mount", f"{what} on {target}" if what else target)


def umount(target: str, flags: int = 0) -> None:
    check(libc.umount2(_b(target), flags), "umount", target)


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", _b(new_root), _b(put_old), target=new_root)


class _MountAttr(Structure):
    _fields_ = [("attr_set", c_uint64), ("attr_clr", c_uint64),
                ("propagation", c_uint64), ("userns_fd", c_uint64)]


def setattr_recursive(target: str | int, attr_set: int, attr_clr: int, name: str = "") -> None:
    """mount_setattr(2) with AT_RECURSIVE: the r* options (rro, rnosuid ...) of OCI mounts.
    target: a path, or an fd on the mount (name then says which, for errors)."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    flags = AT_RECURSIVE | AT_SYMLINK_NOFOLLOW
    if isinstance(target, int):
        dirfd, path, flags = target, b"", flags | AT_EMPTY_PATH
    else:
        dirfd, path = AT_FDCWD, _b(target)
    syscall("mount_setattr", dirfd, path, flags, byref(attr), sizeof(attr),
            target=name or target)


def locked_flags(target: str | int) -> int:
    """The MS_* flags a bind remount of target (a path, or an fd on the mount) must carry to
    keep what the mount has now."""
    f_flag = os.statvfs(target).f_flag
    return sum(ms for st, ms in STATVFS_KEEP if f_flag & st)


def fd_path(fd: int) -> str:
    """The magic link through which mount(2) reaches exactly what fd refers to."""
    return f"/proc/self/fd/{fd}"


def mount_id(fd: int) -> int:
    """The id of the mount fd lies on (its mnt_id in /proc/self/fdinfo, Linux 3.15)."""
    info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(info, 4096)
    finally:
        os.close(info)
    for line in text.splitlines():
        if line.startswith(b"mnt_id:"):
            return int(line[7:])
    raise OSError(95, f"no mnt_id in /proc/self/fdinfo/{fd}")
