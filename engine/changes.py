"""`docker diff`: what a container changed in its root filesystem, read from its overlay's
writable layer against its image's layers, with what dockerd's overlay2 reports:

- an entry of the writable layer that no image layer has: A (and so is all below it);
- one the image has, with another mode, owner, device, or (not a directory) size or mtime: C;
- a whiteout (the 0:0 character device overlayfs leaves for a deletion) of an image entry: D;
- an opaque directory (trusted.overlay.opaque, a directory removed and made again): D for each
  image entry under it that the writable layer does not have again;
- every directory above a change: C, placed before the changes inside it.

Paths only the runtime makes as mount points, which dockerd's init layer holds (so they are
never changes there): /proc, /sys, /dev and /etc as directories, and /etc/hostname, /etc/hosts
and /etc/resolv.conf, the files berthd binds over the image's; what the container changes
inside them still shows.

The writable layer belongs to the container and may change while it is read: it is walked
through directory descriptors, never following a symbolic link, so a link swapped in for a
directory cannot lead the walk out of it. The image's layers are berthd's and do not change.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MODIFY, ADD, DELETE = 0, 1, 2
OPAQUE_XATTR = "trusted.overlay.opaque"
INIT_DIRS = {"/proc", "/sys", "/dev", "/etc"}
INIT_FILES = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}


@dataclass
class Change:
    path: str
    kind: int

    def json(self) -> dict:
        return {"Path": self.path, "Kind": self.kind}


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path_or_fd: str | int) -> bool:
    """A directory (a path in a layer, or a descriptor) that overlayfs marked opaque: what the
    layers below have there is hidden."""
    try:
        return os.getxattr(path_or_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _same_time(a_ns: int, b_ns: int) -> bool:
    """go-archive's sameFsTime: equal, or the same second with one of them whole (tar keeps
    whole seconds)."""
    return a_ns == b_ns or (a_ns // 10**9 == b_ns // 10**9
                            and (a_ns % 10**9 == 0 or b_ns % 10**9 == 0))


def stat_different(old: os.stat_result, new: os.stat_result) -> bool:
    """go-archive's statDifferent: mode, owner and device always; size and mtime but for
    directories (moby issue 9874)."""
    if (old.st_mode != new.st_mode or old.st_uid != new.st_uid or old.st_gid != new.st_gid
            or old.st_rdev != new.st_rdev):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size


class ImageTree:
    """The merged view of an image's layers (top first), looked up as overlayfs does."""

    def __init__(self, layers: list[Path]):
        self.layers = [str(p) for p in layers]

    def _stack(self, parts: list[str]) -> list[str]:
        """The layer directories that make up the merged directory at parts (top first)."""
        stack = list(self.layers)
        for name in parts:
            below = []
            for layer_dir in stack:
                path = layer_dir + "/" + name
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                    break       # hides this name in every layer below
                below.append(path)
                if is_opaque(path):
                    break
            if not below:
                return []
            stack = below
        return stack

    def lookup(self, parts: list[str]) -> os.stat_result | None:
        """The entry at parts as the merged image shows it, or None."""
        if not parts:
            return os.lstat(self.layers[0]) if self.layers else None
        for layer_dir in self._stack(parts[:-1]):
            try:
                st = os.lstat(layer_dir + "/" + parts[-1])
            except OSError:
                continue
            return None if is_whiteout(st) else st
        return None

    def children(self, parts: list[str]) -> list[str]:
        """The names in the merged image directory at parts."""
        seen: dict[str, bool] = {}      # name -> present (False: whited out above)
        for layer_dir in self._stack(parts):
            try:
                names = os.listdir(layer_dir)
            except OSError:
                continue
            for name in names:
                if name in seen:
                    continue
                try:
                    seen[name] = not is_whiteout(os.lstat(layer_dir + "/" + name))
                except OSError:
                    continue
        return sorted((n for n, present in seen.items() if present), key=os.fsencode)


def changes(upper: Path, image_layers: list[Path]) -> list[Change]:
    """The container's changes, parents before what they hold, names in byte order."""
    image = ImageTree(image_layers)
    raw: list[Change] = []
    try:
        top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        raw.extend(_walk(top, [], image, in_image=True))
    finally:
        os.close(top)
    return _with_parents(raw)


def _entries(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    out = []
    try:
        with os.scandir(dir_fd) as it:
            names = [e.name for e in it]
    except OSError:
        return out
    for name in sorted(names, key=os.fsencode):
        try:
            out.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)))
        except OSError:
            continue        # gone meanwhile
    return out


def _walk(dir_fd: int, parts: list[str], image: ImageTree, in_image: bool) -> Iterator[Change]:
    """Changes below the writable layer's directory dir_fd (the path parts); in_image: whether
    the image has this directory at all (else everything below is new)."""
    entries = _entries(dir_fd)
    present = {name for name, _ in entries}
    if in_image and parts and is_opaque(dir_fd):
        for name in image.children(parts):
            if name not in present:
                yield Change(_path(parts + [name]), DELETE)
    for name, st in entries:
        child = parts + [name]
        path = _path(child)
        old = image.lookup(child) if in_image else None
        if is_whiteout(st):
            if old is not None:
                yield Change(path, DELETE)
            continue
        if old is None:
            if path in INIT_FILES:
                continue
            if path not in INIT_DIRS:
                yield Change(path, ADD)
        elif stat_different(old, st):
            yield Change(path, MODIFY)
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=dir_fd)
            except OSError:
                continue        # gone, or no longer a directory
            try:
                below_in_image = old is not None and stat.S_ISDIR(old.st_mode)
                if old is None and path in INIT_DIRS:
                    below_in_image = False
                yield from _walk(fd, child, image, below_in_image)
            finally:
                os.close(fd)


def _path(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def _with_parents(raw: list[Change]) -> list[Change]:
    """Each change's directories, as C where they are not changes already, before it."""
    kinds = {c.path: c.kind for c in raw}
    out: list[Change] = []
    listed: set[str] = set()
    for change in raw:
        parent = change.path.rsplit("/", 1)[0]
        missing = []
        while parent and parent not in listed:
            if parent not in kinds:
                missing.append(parent)
            parent = parent.rsplit("/", 1)[0]
        for p in reversed(missing):
            out.append(Change(p, MODIFY))
            listed.add(p)
        out.append(change)
        listed.add(change.path)
    return out
