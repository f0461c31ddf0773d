"""COPY and ADD as a layer: the sources' files written straight into a layer tar under the
destination, as the classic builder's copier lays them out, with no container involved.

The classic builder's rules kept here: a directory source has its contents copied (not the
directory itself); a destination ending in "/" (or any destination of several sources) is a
directory the sources go into by their base names; missing directories on the way to the
destination are created (0755, root, the destination directory itself owned as --chown says);
copied files keep their mode and mtime and belong to root unless --chown; ADD unpacks a local
tar archive (plain, gzip, bzip2 or xz) into the destination, keeping its owners."""
from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .rootfs_view import RootfsView

# a source tree: host path of a node, and how to list a directory node's children
Lister = Callable[[Path, str], dict[str, Path]]


def list_host(path: Path, rel: str) -> dict[str, Path]:
    """Children of a directory of the build context (a plain host directory)."""
    return {name: path / name for name in sorted(os.listdir(path))}


def view_lister(view: RootfsView) -> Lister:
    """Children of a directory of another stage's or image's rootfs, through its layers."""
    return lambda path, rel: view.listdir(rel)


@dataclass
class Source:
    path: Path          # the host path of the source (context dir or a layer's file)
    rel: str            # its path in its tree (for listing through a view)
    lister: Lister


class LayerWriter:
    """Entries of one layer tar, parents before children, each path once."""

    def __init__(self, out: Path, view: RootfsView):
        self.f = open(out, "wb")
        self.tar = tarfile.open(fileobj=self.f, mode="w", format=tarfile.PAX_FORMAT)
        self.view = view
        self.written: set[str] = set()
        self.count = 0

    def close(self) -> None:
        self.tar.close()
        self.f.close()

    def ensure_dirs(self, path: str, owner: tuple[int, int] | None, *, last_owned: bool) -> None:
        """Create the missing directories of path (absolute) that the image lacks."""
        parts = [p for p in path.strip("/").split("/") if p]
        for i in range(len(parts)):
            rel = "/".join(parts[:i + 1])
            if rel in self.written or self.view.find(rel) is not None:
                continue
            info = tarfile.TarInfo(rel)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            uid, gid = owner if (owner and last_owned and i == len(parts) - 1) else (0, 0)
            info.uid, info.gid = uid, gid
            self.tar.addfile(info)
            self.written.add(rel)

    def add_host(self, src: Path, dest_rel: str, owner: tuple[int, int] | None) -> None:
        st = os.lstat(src)
        info = tarfile.TarInfo(dest_rel.strip("/"))
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        info.uid, info.gid = owner if owner else (0, 0)
        fileobj = None
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(src)
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
            fileobj = open(src, "rb")
        else:
            return      # sockets, fifos and devices are not copied, as the classic builder
        try:
            self.tar.addfile(info, fileobj)
        finally:
            if fileobj:
                fileobj.close()
        self.written.add(info.name)
        self.count += 1

    def add_tree(self, src: Source, dest_rel: str, owner: tuple[int, int] | None) -> None:
        """A directory's contents under dest_rel (which exists or was written)."""
        for name, child in sorted(src.lister(src.path, src.rel).items()):
            target = posixpath.join(dest_rel, name)
            self.add_host(child, target, owner)
            if child.is_dir() and not child.is_symlink():
                self.add_tree(Source(child, posixpath.join(src.rel, name), src.lister),
                              target, owner)

    def add_archive(self, archive: tarfile.TarFile, dest_rel: str) -> None:
        """ADD's local archive: its members under dest_rel, owners and modes as they are."""
        for member in archive:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            target = posixpath.join(dest_rel, name)
            self.ensure_dirs("/" + posixpath.dirname(target), None, last_owned=False)
            info = member
            info.name = target
            fileobj = archive.extractfile(member) if member.isreg() else None
            if member.islnk():
                info.linkname = posixpath.join(
                    dest_rel, posixpath.normpath("/" + member.linkname).lstrip("/"))
            self.tar.addfile(info, fileobj)
            self.written.add(target)
            self.count += 1


def open_archive(path: Path) -> tarfile.TarFile | None:
    """path as a tar archive ADD unpacks (plain or compressed), or None when it is none."""
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError):
        return None


def write_copy(out: Path, view: RootfsView, sources: list[Source], dest: str,
               owner: tuple[int, int] | None, *, unpack: bool) -> int:
    """The layer tar of one COPY/ADD at out; dest absolute (a trailing "/" kept). Returns the
    number of entries copied."""
    writer = LayerWriter(out, view)
    try:
        dest_is_dir = dest.endswith("/") or len(sources) > 1
        dest_abs = posixpath.normpath(dest)
        dest_rel = dest_abs.strip("/")
        for src in sources:
            is_dir = src.path.is_dir() and not src.path.is_symlink()
            archive = open_archive(src.path) if unpack and not is_dir \
                and src.path.is_file() else None
            if is_dir or archive is not None:
                writer.ensure_dirs(dest_abs, owner, last_owned=True)
                if archive is not None:
                    with archive:
                        writer.add_archive(archive, dest_rel)
                else:
                    writer.add_tree(src, dest_rel, owner)
                continue
            if dest_is_dir:
                writer.ensure_dirs(dest_abs, owner, last_owned=True)
                target = posixpath.join(dest_rel, src.path.name)
            else:
                existing = view.find(dest_rel)
                if existing is not None and existing.is_dir() and not existing.is_symlink():
                    target = posixpath.join(dest_rel, src.path.name)
                else:
                    writer.ensure_dirs("/" + posixpath.dirname(dest_rel), None,
                                       last_owned=False)
                    target = dest_rel
            writer.add_host(src.path, target, owner)
    finally:
        writer.close()
    return writer.count


def write_dirs(out: Path, view: RootfsView, path: str, owner: tuple[int, int] | None) -> int:
    """WORKDIR's layer: the directories of path the image lacks (none: an empty layer)."""
    writer = LayerWriter(out, view)
    try:
        writer.ensure_dirs(path, owner, last_owned=False)
    finally:
        writer.close()
    return len(writer.written)
