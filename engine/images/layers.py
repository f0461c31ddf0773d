"""Layer tarballs: writing reproducible ones, and unpacking them into overlay lower directories.

A layer blob is a tar, plain or gzip/zstd compressed; its diff ID is the sha256 of the plain tar
and is checked while unpacking. Unpacking turns OCI whiteouts into overlayfs's as containerd's
overlay snapshotter does: `.wh.NAME` becomes a 0/0 character device NAME, `.wh..wh..opq` the
trusted.overlay.opaque xattr on its directory (other `.wh..wh.` entries are aufs metadata,
skipped). Every layer berth unpacks (built in, loaded, imported, pulled) comes through here, and
hostile entries are refused, not rewritten: absolute names, `..` components, entries under a
symlink or a non-directory, relative symlinks that climb out of the root (dockerd's breakout
rule; absolute targets resolve in the container's root), hard links to anything but a file
earlier in the same layer, overlayfs xattrs, and device nodes unless berthd may make them
(devices_allowed, dockerd's rule).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InvalidParameter

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
XATTR_PAX_PREFIX = "SCHILY.xattr."
GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COPY_CHUNK = 1 << 20


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


class LayerError(InvalidParameter):
    """A layer that is refused: hostile or broken input, named with the entry at fault."""


def devices_allowed() -> bool:
    """dockerd creates a layer's device nodes only as root in the host's user namespace (in
    another, mknod fails and it skips them); berth creates them in the same case and refuses
    the layer otherwise rather than drop files in silence."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


class _Hashing:
    """A reader that hashes and counts what passes through: the diff ID of the plain tar."""

    def __init__(self, inner: BinaryIO):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_CHUNK):
            pass


def compression(head: bytes) -> str:
    """'gzip', 'zstd' or 'none', from a blob's first bytes (as dockerd's DetectCompression)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def open_plain(f: BinaryIO, what: str) -> BinaryIO:
    """The uncompressed tar stream of an open layer blob (gzip, zstd or plain)."""
    head = f.read(4)
    f.seek(0)
    kind = compression(head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if kind == "zstd":
        try:
            import zstandard  # optional: only zstd layers need it
        except ImportError:
            raise LayerError(f"layer {what} is zstd-compressed and this berthd cannot "
                             f"decompress zstd (the python zstandard module is not "
                             f"installed)") from None
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    return f


def entry_name(raw: str) -> str:
    """A layer entry's name, relative and clean; absolute names and `..` are refused."""
    if raw.startswith("/"):
        raise LayerError(f"layer entry {raw!r} has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {raw!r} has a '..' component")
    return "/".join(parts)


def _norm(raw: str) -> str:
    return "/".join(p for p in raw.split("/") if p not in ("", "."))


def _parent(root: Path, name: str, raw: str, *, create: bool) -> Path:
    """The directory that holds name under root, made as needed; a parent that is a symlink
    or not a directory is refused, so nothing is ever written through a link."""
    cur = root
    for part in name.split("/")[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if not create:
                raise LayerError(f"layer entry {raw!r}: {cur.relative_to(root)} is not in "
                                 f"the layer") from None
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise LayerError(f"layer entry {raw!r} goes through the symlink "
                             f"{cur.relative_to(root)}")
        if not stat.S_ISDIR(st.st_mode):
            raise LayerError(f"layer entry {raw!r}: {cur.relative_to(root)} is not a "
                             f"directory")
    return cur


def _symlink_escapes(name: str, target: str) -> bool:
    """dockerd's breakout rule: a relative target resolved from the link's directory must stay
    in the rootfs (an absolute one is resolved in the container's root, so it cannot escape)."""
    if target.startswith("/"):
        return False
    depth = len(name.split("/")) - 1
    for part in target.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _clear(path: Path, member: tarfile.TarInfo) -> None:
    """Make room for a later entry of the same name (the later one wins, as in tar)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if member.isdir():
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _whiteout(root: Path, name: str, raw: str) -> bool:
    """An OCI whiteout turned into overlayfs's; False if name is an ordinary entry."""
    base = os.path.basename(name)
    if not base.startswith(WHITEOUT_PREFIX):
        return False
    parent = _parent(root, name, raw, create=True)
    if base == OPAQUE_WHITEOUT:
        os.setxattr(parent, "trusted.overlay.opaque", b"y")
        return True
    if base.startswith(WHITEOUT_META_PREFIX):
        return True          # aufs metadata (.wh..wh.plnk and the like): skipped, as dockerd
    hidden = base[len(WHITEOUT_PREFIX):]
    if hidden in ("", ".", ".."):
        raise LayerError(f"layer entry {raw!r} is a whiteout of no name")
    path = parent / hidden
    _clear(path, tarfile.TarInfo())
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    return True


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, name: str,
            allow_devices: bool) -> int:
    raw = member.name
    path = _parent(root, name, raw, create=True) / os.path.basename(name)
    if member.islnk() and member.linkname.strip("/") and \
            _norm(member.linkname) == name:
        return 0                # a hard link to itself: the file is already there
    _clear(path, member)
    if member.isdir():
        if not path.is_dir():
            os.mkdir(path, 0o700)
    elif member.isreg():
        src = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
    elif member.issym():
        if _symlink_escapes(name, member.linkname):
            raise LayerError(f"layer entry {raw!r} is a symlink to {member.linkname!r}, "
                             f"outside the layer's root")
        os.symlink(member.linkname, path)
    elif member.islnk():
        if member.linkname.startswith("/") or ".." in member.linkname.split("/"):
            raise LayerError(f"layer entry {raw!r} is a hard link to {member.linkname!r}, "
                             f"outside the layer's root")
        target_name = entry_name(member.linkname)
        target = _parent(root, target_name, raw, create=False) / os.path.basename(target_name)
        if not target_name or not os.path.lexists(target) or target.is_dir():
            raise LayerError(f"layer entry {raw!r} is a hard link to {member.linkname!r}, "
                             f"which is not a file earlier in the layer")
        os.link(target, path, follow_symlinks=False)
        return 0
    elif member.ischr() or member.isblk():
        if not allow_devices:
            raise LayerError(f"layer entry {raw!r} is a device node, and this berthd may "
                             f"create none (it is not root in the host's user namespace)")
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, 0o600 | kind, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        raise LayerError(f"layer entry {raw!r} has the unsupported tar type {member.type!r}")
    _attrs(member, path)
    return member.size if member.isreg() else 0


def _attrs(member: tarfile.TarInfo, path: Path) -> None:
    """Owner, xattrs, mode and mtime (directories get mode and mtime again at the end)."""
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    for key, value in member.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        xattr = key[len(XATTR_PAX_PREFIX):]
        if xattr.startswith("trusted.overlay."):
            raise LayerError(f"layer entry {member.name!r} sets the overlayfs xattr {xattr}")
        if not member.issym():
            os.setxattr(path, xattr, value.encode("utf-8", "surrogateescape"))
    if not member.issym():
        os.chmod(path, member.mode)
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def unpack_into(blob: Path, root: Path, diff_id: str | None = None,
                allow_devices: bool | None = None) -> int:
    """Unpack a layer blob (tar; gzip or zstd compressed) into the empty directory root and
    check that the plain tar hashes to diff_id. Returns the bytes of file data. Any refusal
    raises LayerError with root half-filled: the caller unpacks into a staging directory and
    removes it (ImageStore does)."""
    if allow_devices is None:
        allow_devices = devices_allowed()
    what = diff_id or blob.name
    size = 0
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    with open(blob, "rb") as f:
        plain = _Hashing(open_plain(f, what))
        try:
            with tarfile.open(fileobj=plain, mode="r|") as tar:
                for member in tar:
                    name = entry_name(member.name)
                    if not name or _whiteout(root, name, member.name):
                        continue
                    size += _create(tar, member, root, name, allow_devices)
                    if member.isdir():
                        dirs.append((root / name, member))
            plain.drain()
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise LayerError(f"layer {what} is not a valid tar stream: {e or 'truncated'}") \
                from None
        except OSError as e:
            if e.errno is None:     # gzip's BadGzipFile and zstandard's errors
                raise LayerError(f"layer {what} cannot be decompressed: {e}") from None
            raise
    # directory modes and times last, so writing their files did not disturb them
    for path, member in dirs:
        os.chmod(path, member.mode)
        os.utime(path, (member.mtime, member.mtime))
    got = "sha256:" + plain.sha.hexdigest()
    if diff_id and got != diff_id:
        raise LayerError(f"layer diff ID mismatch: the tar is {got}, the image says {diff_id}")
    return size


def diff_id_of(blob: Path) -> str:
    """The diff ID (sha256 of the plain tar) of a layer blob, compressed or not."""
    with open(blob, "rb") as f:
        plain = _Hashing(open_plain(f, blob.name))
        try:
            plain.drain()
        except (EOFError, zlib.error) as e:
            raise LayerError(f"layer {blob.name} cannot be decompressed: {e or 'truncated'}") \
                from None
    return "sha256:" + plain.sha.hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: the first layer's is its diff ID, each next one hashes parent + ' ' + diff."""
    out: list[str] = []
    for diff in diff_ids:
        out.append(diff if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out
