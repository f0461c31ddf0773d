"""Join a path inside a root as if the root were "/": symlinks and ".." cannot lead out of it.

A container image controls its rootfs, so a mount destination like /proc could be a symlink to
/etc on the host; every path lowrt creates or mounts on inside the rootfs goes through here.
"""
from __future__ import annotations

import errno
import os
import stat

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    resolved: list[str] = []
    pending = [p for p in unsafe.split("/") if p and p != "."]
    pending.reverse()
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, f"secure join {unsafe} in {root}: too many symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        more = [p for p in target.split("/") if p and p != "."]
        more.reverse()
        pending.extend(more)
    return os.path.join(root, *resolved) if resolved else root
