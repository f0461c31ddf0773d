"""Layer tarballs: writing reproducible ones, and unpacking them into overlay lower directories.

A layer is an uncompressed tar (OCI `application/vnd.oci.image.layer.v1.tar`), so its blob digest
is also its diff ID. Unpacking turns OCI whiteouts into overlayfs's: `.wh.NAME` becomes a 0/0
character device NAME, `.wh..wh..opq` marks its directory opaque.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"


@dataclass
class Entry:
    """One file of a layer to write. kind: 'dir', 'file' (data or source), 'symlink'."""

    path: str
    kind: str
    mode: int = 0o755
    data: bytes | None = None
    source: str | None = None
    target: str = ""


def write_tar(entries: Iterable[Entry], out: Path, mtime: int) -> tuple[str, int]:
    """Write entries (sorted, owned by root, one mtime) to out; returns (sha256 hex, size)."""
    with open(out, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in sorted(entries, key=lambda e: e.path):
                info = tarfile.TarInfo(e.path.lstrip("/"))
                info.mtime, info.mode, info.uid, info.gid = mtime, e.mode, 0, 0
                fileobj = None
                if e.kind == "dir":
                    info.type = tarfile.DIRTYPE
                elif e.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, e.target
                else:
                    data = e.data if e.data is not None else Path(e.source).read_bytes()
                    info.size, fileobj = len(data), io.BytesIO(data)
                tar.addfile(info, fileobj)
    digest = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), out.stat().st_size


def _safe_name(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"layer entry {name!r} escapes the layer")
    return "/".join(parts)


def unpack(tar_path: Path, dest: Path) -> int:
    """Unpack a layer tar into dest (which must not exist yet); returns the bytes of file data."""
    tmp = dest.with_name(dest.name + ".unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    size = 0
    with tarfile.open(tar_path, mode="r:*") as tar:
        dirs = []
        for member in tar:
            name = _safe_name(member.name)
            if not name:
                continue
            base = os.path.basename(name)
            parent = tmp / os.path.dirname(name)
            if base == OPAQUE_WHITEOUT:
                parent.mkdir(parents=True, exist_ok=True)
                os.setxattr(parent, "trusted.overlay.opaque", b"y")
                continue
            if base.startswith(WHITEOUT_PREFIX):
                parent.mkdir(parents=True, exist_ok=True)
                os.mknod(parent / base[len(WHITEOUT_PREFIX):], 0o600 | 0o020000, os.makedev(0, 0))
                continue
            member.name = name
            if member.islnk():
                member.linkname = _safe_name(member.linkname)
            # names were checked above; link targets inside the rootfs may be absolute
            tar.extract(member, tmp, set_attrs=not member.isdir(), numeric_owner=True)
            if member.isdir():
                dirs.append(member)
            size += member.size if member.isfile() else 0
        # directory modes and times last, so writing their files did not disturb them
        for member in dirs:
            path = tmp / member.name
            os.chown(path, member.uid, member.gid)
            os.chmod(path, member.mode)
            os.utime(path, (member.mtime, member.mtime))
    tmp.rename(dest)
    return size


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: the first layer's is its diff ID, each next one hashes parent + ' ' + diff."""
    out: list[str] = []
    for diff in diff_ids:
        out.append(diff if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out
