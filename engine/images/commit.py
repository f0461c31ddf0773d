"""`docker commit`: a container's writable layer (its overlay upperdir) as a new layer on its
image, with overlayfs's whiteouts written back as OCI ones (a 0/0 character device as an empty
`.wh.NAME` file, an opaque directory as the directory and a `.wh..wh..opq` file in it), as
dockerd's overlay whiteout converter does.

The upperdir belongs to a container that may still run (commit --pause=false): it is walked
through directory descriptors opened O_NOFOLLOW, and entries are read through
/proc/self/fd/<dir>/<name>, so a symlink swapped in for a directory cannot lead the walk out.
The files berthd binds over the image's (/etc/hostname, /etc/hosts, /etc/resolv.conf) are mount
points in the upperdir, never the container's content (dockerd keeps them in its init layer):
they are left out. A directory that overlayfs marked as redirected or a metacopy-only file has
its data in a lower layer; berth mounts its overlays with the kernel's defaults for
redirect_dir and metacopy (off unless the overlay module is set otherwise), and one found anyway
is refused rather than committed incomplete.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from .. import fs_tar, timefmt
from ..changes import is_whiteout
from ..errors import Conflict
from . import dockerfile_changes, lineage
from .layers import OPAQUE_WHITEOUT, WHITEOUT_PREFIX
from .store import Image, ImageStore

BIND_FILES = {"etc/hostname", "etc/hosts", "etc/resolv.conf"}
REFUSED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _header(name: str, st: os.stat_result, mode: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = tarfile.REGTYPE, 0, mode
    info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _walk(writer: fs_tar.TarWriter, dir_fd: int, prefix: str) -> None:
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        rel = prefix + name
        if rel in BIND_FILES:
            continue
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        path = f"/proc/self/fd/{dir_fd}/{name}"
        if is_whiteout(st):
            writer.out.write(_header(prefix + WHITEOUT_PREFIX + name, st, 0o600))
            continue
        for xattr in REFUSED_XATTRS:
            if _xattr(path, xattr) is not None:
                raise Conflict(f"cannot commit /{rel}: overlayfs keeps it as {xattr} "
                               f"(its data is in a lower layer)")
        if not stat.S_ISDIR(st.st_mode):
            writer.add(path, rel, st)
            continue
        writer.add(path, rel + "/", st)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dir_fd)
        try:
            if _xattr(f"/proc/self/fd/{fd}", "trusted.overlay.opaque") == b"y":
                writer.out.write(_header(f"{rel}/{OPAQUE_WHITEOUT}", st,
                                         stat.S_IMODE(st.st_mode)))
            _walk(writer, fd, rel + "/")
        finally:
            os.close(fd)


def write_diff(upper: Path, out: BinaryIO) -> None:
    """The tar of the writable layer's changes, as an OCI layer."""
    writer = fs_tar.TarWriter(out)
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _walk(writer, fd, "")
    finally:
        os.close(fd)
    writer.close()


def commit(images: ImageStore, image: Image, upper: Path, tmp_dir: Path, *, container_id: str,
           container_config: dict, changes: list[str], comment: str, author: str,
           tags: list[str]) -> Image:
    """A new image: image's layers and the diff at upper, the container's config with changes."""
    run_config = dockerfile_changes.apply(container_config, changes)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="commit-", dir=tmp_dir))
    try:
        layer = work / "layer.tar"
        with open(layer, "wb") as out:
            write_diff(upper, out)
        sha = hashlib.sha256()
        with open(layer, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
        base = image.config
        created = timefmt.rfc3339nano(timefmt.now_ns())
        history = list(base.get("history") or [])
        entry = {"created": created, "created_by": " ".join(container_config.get("Cmd") or [])}
        if author:
            entry["author"] = author
        if comment:
            entry["comment"] = comment
        config = {key: value for key, value in base.items()
                  if key in ("architecture", "os", "variant", "os.version")}
        config.update({"created": created, "container": container_id, "config": run_config,
                       "rootfs": {"type": "layers",
                                  "diff_ids": [*image.diff_ids, "sha256:" + sha.hexdigest()]},
                       "history": [*history, entry]})
        if author:
            config["author"] = author
        if comment:
            config["comment"] = comment
        new = images.import_image(config, [layer], tags, base_layers=images.layer_digests(image))
        lineage.set_parent(images, new, image.id, build_step=False)
        return new
    finally:
        shutil.rmtree(work, ignore_errors=True)
