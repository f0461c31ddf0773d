"""A new volume filled from the image's content at its mount point, as dockerd's copy-up: when a
container that mounts an empty volume at /path starts (and its mount did not say nocopy), what
the container's filesystem has at /path is copied into the volume, with ownership, modes,
times and extended attributes; the volume's own directory takes the ownership and mode of
/path. The filesystem is read from its layers (the container's writable one first, then the
image's), overlayfs's whiteouts and opaque directories honoured, so nothing is mounted."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

_OPAQUE = "trusted.overlay.opaque"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _parent_hidden(upper: list[str], rel: str) -> bool:
    """Whether layers above hide rel's parents: a whiteout or a non-directory at one of
    them, or an opaque directory there (what lies under it in lower layers is gone)."""
    parts = [p for p in rel.split("/") if p]
    for layer in upper:
        for i in range(1, len(parts)):
            path = os.path.join(layer, *parts[:i])
            st = _lstat(path)
            if st is not None and (not stat.S_ISDIR(st.st_mode) or _opaque(path)):
                return True
    return False


def merged_dirs(layers: list[str], rel: str) -> list[str]:
    """The directories that make up rel in the merged view of layers (top first); empty where
    rel is no directory there."""
    rel = rel.strip("/")
    out: list[str] = []
    parts = [p for p in rel.split("/") if p]
    for i, layer in enumerate(layers):
        if _parent_hidden(layers[:i], rel):
            break
        # the layer's own parents: a link among them is not followed (it could lead out of
        # the layer, onto the host); where one is a link or a file, the path ends there
        kinds = [_lstat(os.path.join(layer, *parts[:k])) for k in range(1, len(parts))]
        if any(st is not None and not stat.S_ISDIR(st.st_mode) for st in kinds):
            break
        if any(st is None for st in kinds):
            continue
        path = os.path.join(layer, rel) if rel else layer
        st = _lstat(path)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            break           # a file or a whiteout ends the directory's lower layers
        out.append(path)
        if _opaque(path):
            break
    return out


def copy_up(layers: list[Path | str], rel: str, dest: Path | str) -> bool:
    """Copy the merged content of rel into the directory dest; False where the image has no
    directory at rel (nothing is copied, as dockerd)."""
    dirs = merged_dirs([str(p) for p in layers], rel)
    if not dirs:
        return False
    _copy_tree(dirs, str(dest))
    _copy_meta(dirs[0], str(dest), os.lstat(dirs[0]))
    return True


def _copy_tree(dirs: list[str], dest: str) -> None:
    seen: set[str] = set()
    for k, top in enumerate(dirs):
        with os.scandir(top) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name in seen:
                continue
            seen.add(entry.name)
            src = entry.path
            st = entry.stat(follow_symlinks=False)
            if _is_whiteout(st):
                continue
            target = os.path.join(dest, entry.name)
            if stat.S_ISDIR(st.st_mode):
                sub = [src]
                if not _opaque(src):
                    for lower in dirs[k + 1:]:
                        other = os.path.join(lower, entry.name)
                        ost = _lstat(other)
                        if ost is None:
                            continue
                        if not stat.S_ISDIR(ost.st_mode):
                            break
                        sub.append(other)
                        if _opaque(other):
                            break
                os.mkdir(target, 0o700)
                _copy_tree(sub, target)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, target, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), target)
            else:                       # device, fifo, socket
                os.mknod(target, st.st_mode, st.st_rdev)
            _copy_meta(src, target, st)


def _copy_meta(src: str, target: str, st: os.stat_result) -> None:
    """Ownership, mode, extended attributes (overlayfs's own left out) and times."""
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if not name.startswith("trusted.overlay."):
                os.setxattr(target, name, os.getxattr(src, name, follow_symlinks=False),
                            follow_symlinks=False)
    except OSError:
        pass        # a filesystem without xattrs on either side
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
