"""Build contexts: the tar a client sends with POST /build, made (berth build) and unpacked
(berthd), and the content checksums the classic builder's cache keys COPY/ADD sources by.

Interface:

    open_context(source, dest_dir) -> int
        source: a binary stream (the request body) or a path to a tar file. Plain, gzip,
        bzip2, xz (and zstd where the python zstandard module is installed) tars, told apart
        by their first bytes as dockerd's DecompressStream does. Unpacked into the existing,
        empty directory dest_dir; returns the number of entries. Refused (ContextError,
        dest_dir left to the caller to remove): names that leave dest_dir after cleaning
        ("../x"; a leading "/" is dropped, as dockerd's untar does), entries under a symlink
        or a non-directory, relative symlinks that climb out of dest_dir (dockerd's breakout
        rule), hard links to anything but an earlier file, overlayfs xattrs, a bad archive.
        Owners, modes, times and security.capability are kept (berthd runs as root).
    remove_ignored_build_files(root, dockerfile_rel) -> None
        dockerd's rule after unpacking: if the context's .dockerignore matches .dockerignore
        or the Dockerfile, they are deleted from the context once read (so COPY . leaves
        them out). Call it after reading the Dockerfile.
    make_context_tar(directory, dockerfile_rel, ignore) -> Iterator[bytes]
        The docker CLI's context tar, for berth build: everything under directory not
        excluded by ignore (an IgnoreMatcher, or None), walked in byte order, excluded
        directories not entered unless an exception may re-include something in them;
        .dockerignore and the Dockerfile always included (keep_build_files). Entries as
        docker's archive package writes them: relative names, directories with a trailing
        "/", uid/gid 0 with no names (the CLI's ChownOpts), mtimes in whole seconds, hard
        links as links to the first name, security.capability kept, sockets left out.
        Raises ContextError for an unreadable file or a missing Dockerfile.
    resolve_in_scope(root, rel) -> str
        rel with its symlinks resolved inside root (dockerd's FollowSymlinkInScope for COPY
        and ADD sources): absolute link targets are taken from root, ".." stops at root.
    checksum_path(root, rel, follow=False) -> str
        With follow, rel is resolved with resolve_in_scope first. The cache checksum of root/rel (not following a final symlink): "file:<sha256 hex>"
        for a file, symlink, fifo or device, "dir:<sha256 hex>" for a directory. A file's
        hash covers what dockerd's tarsum v1 header covers (name, mode bits, uid, gid, size,
        type, link target, device numbers, security.capability) and its content, never its
        mtime or atime; a directory's covers its own header and, in byte order, each
        descendant's relative name and file hash. So it changes when content, mode, owner,
        a name or a link target changes, and not when only times change.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from ..fs_tar import ExtractError, entry_name
from .dockerignore import IgnoreError, IgnoreMatcher, keep_build_files, parse_dockerignore

CHUNK = 1 << 20
BLOCK = 512
CAPABILITY_XATTR = "security.capability"
XATTR_PAX_PREFIX = "SCHILY.xattr."
_MAGIC = ((b"\x1f\x8b\x08", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


class ContextError(ValueError):
    """A build context that cannot be used; the message names the entry or path."""


class _Prefixed:
    """A stream with the bytes already read from its start put back."""

    def __init__(self, head: bytes, inner: BinaryIO):
        self.head = head
        self.inner = inner

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.inner.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.inner.read(n - len(data))
            return data
        return self.inner.read(n)


def compression(head: bytes) -> str:
    """'gzip', 'bzip2', 'xz', 'zstd' or 'none', from the first bytes (dockerd's rule)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "none"


def _plain(stream: BinaryIO) -> BinaryIO:
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    kind = compression(head)
    raw = _Prefixed(head, stream)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[arg-type]
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[arg-type]
    if kind == "zstd":
        try:
            import zstandard  # optional, as for layers
        except ImportError:
            raise ContextError("the build context is zstd-compressed and this berthd cannot "
                               "decompress zstd (the python zstandard module is not "
                               "installed)") from None
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw  # type: ignore[return-value]


# Unpacking ----------------------------------------------------------------------------------

def _symlink_escapes(name: str, target: str) -> bool:
    """A relative target that, resolved from the link's directory, climbs above the root."""
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


def _parent(dest: str, name: str, raw: str) -> str:
    """The directory that will hold name, made as needed (0755, as an untar's implied
    parents); a symlink or non-directory on the way is refused, so nothing is written
    through a link."""
    cur = dest
    for part in name.split("/")[:-1]:
        cur = cur + "/" + part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            os.chmod(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise ContextError(f"build context entry {raw!r} goes through the symlink "
                               f"{cur[len(dest) + 1:]!r}")
        if not stat.S_ISDIR(st.st_mode):
            raise ContextError(f"build context entry {raw!r}: {cur[len(dest) + 1:]!r} is not "
                               f"a directory")
    return cur


def _clear(path: str, member: tarfile.TarInfo) -> None:
    """Room for an entry whose name came before (the later one wins, as in tar)."""
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


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        source = tar.extractfile(member)
        assert source is not None
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: str, name: str,
            files: set[str]) -> str:
    raw = member.name
    parent = _parent(dest, name, raw)
    path = parent + "/" + name.rsplit("/", 1)[-1]
    _clear(path, member)
    if member.isreg():
        _write_file(tar, member, path)
        files.add(name)
    elif member.isdir():
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    elif member.issym():
        if _symlink_escapes(name, member.linkname):
            raise ContextError(f"build context entry {raw!r}: invalid symlink to "
                               f"{member.linkname!r} (outside the context)")
        os.symlink(member.linkname, path)
    elif member.islnk():
        try:
            target = entry_name(member.linkname)
        except ExtractError:
            target = ""
        if target not in files:
            raise ContextError(f"build context entry {raw!r}: hard link to "
                               f"{member.linkname!r}, which is not an earlier file of the "
                               f"context")
        os.link(dest + "/" + target, path, follow_symlinks=False)
        files.add(name)
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, 0o600 | kind, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        raise ContextError(f"build context entry {raw!r} has an unsupported type "
                           f"{member.type!r}")
    return path


def _attrs(member: tarfile.TarInfo, path: str) -> None:
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    for key, value in (member.pax_headers or {}).items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        xname = key[len(XATTR_PAX_PREFIX):]
        if xname.startswith("trusted.overlay."):
            raise ContextError(f"build context entry {member.name!r} carries the overlayfs "
                               f"attribute {xname}")
        try:
            os.setxattr(path, xname, value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
        if not member.isdir():
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def open_context(source: BinaryIO | str | os.PathLike, dest_dir: str) -> int:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return open_context(f, dest_dir)
    dest = os.path.realpath(dest_dir)
    try:
        tar = tarfile.open(fileobj=_plain(source), mode="r|")  # type: ignore[arg-type]
    except tarfile.ReadError as e:
        if str(e) == "empty file":
            return 0
        raise ContextError(f"invalid build context: {e}") from None
    except (EOFError, OSError, lzma.LZMAError) as e:
        raise ContextError(f"invalid build context: {e}") from None
    count = 0
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    files: set[str] = set()
    try:
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, EOFError, OSError, lzma.LZMAError) as e:
                raise ContextError(f"invalid build context: {e}") from None
            if member is None:
                break
            try:
                name = entry_name(member.name)
            except ExtractError:
                raise ContextError(f"build context entry {member.name!r} is outside the "
                                   f"context") from None
            if not name:
                continue
            try:
                path = _create(tar, member, dest, name, files)
            except (tarfile.TarError, EOFError, lzma.LZMAError) as e:
                raise ContextError(f"invalid build context: {e}") from None
            _attrs(member, path)
            if member.isdir():
                dirs.append((path, member))
            count += 1
    finally:
        tar.close()
    for path, member in reversed(dirs):
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    return count


def remove_ignored_build_files(root: str, dockerfile_rel: str) -> None:
    try:
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8",
                  errors="surrogateescape") as f:
            patterns = parse_dockerignore(f.read())
    except FileNotFoundError:
        return
    try:
        matcher = IgnoreMatcher(patterns)
    except IgnoreError as e:
        raise ContextError(f"error reading .dockerignore: {e}") from None
    for rel in (".dockerignore", dockerfile_rel):
        name = entry_name(rel)
        if name and matcher.matches(name):
            try:
                os.unlink(os.path.join(root, name))
            except FileNotFoundError:
                pass


# Making -------------------------------------------------------------------------------------

def _walk(top: str, rel: str, ignore: IgnoreMatcher | None
          ) -> Iterator[tuple[str, str, os.stat_result]]:
    try:
        names = sorted(os.listdir(top), key=os.fsencode)
    except OSError as e:
        raise ContextError(f"error checking context: can't open {rel or '.'!r}: "
                           f"{e.strerror}") from None
    for name in names:
        crel = name if not rel else rel + "/" + name
        path = top + "/" + name
        try:
            st = os.lstat(path)
        except OSError as e:
            raise ContextError(f"error checking context: can't stat {crel!r}: "
                               f"{e.strerror}") from None
        skip = ignore is not None and ignore.matches(crel)
        if not skip:
            yield path, crel, st
        if stat.S_ISDIR(st.st_mode):
            if skip and (ignore is None or ignore.should_skip_dir(crel)):
                continue
            yield from _walk(path, crel, ignore)


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def make_context_tar(directory: str, dockerfile_rel: str,
                     ignore: IgnoreMatcher | None) -> Iterator[bytes]:
    top = directory.rstrip("/") or "/"
    dockerfile = entry_name(dockerfile_rel)
    if not dockerfile or not os.path.isfile(os.path.join(top, dockerfile)):
        raise ContextError(f"Cannot locate specified Dockerfile: {dockerfile_rel}")
    if ignore is not None:
        ignore = IgnoreMatcher(keep_build_files(ignore.raw, dockerfile))
    return _tar_stream(top, ignore)


def _tar_stream(top: str, ignore: IgnoreMatcher | None) -> Iterator[bytes]:
    links: dict[tuple[int, int], str] = {}
    for path, rel, st in _walk(top, "", ignore):
        info = tarfile.TarInfo(rel)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        mode = st.st_mode
        fd = -1
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                info.type, info.linkname = tarfile.LNKTYPE, links[key]
            else:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError as e:
                    raise ContextError(f"error checking context: can't open {rel!r}: "
                                       f"{e.strerror}") from None
                info.size = os.fstat(fd).st_size
                cap = _capability(fd)
                if cap is not None:
                    info.pax_headers = {XATTR_PAX_PREFIX + CAPABILITY_XATTR: cap}
                if st.st_nlink > 1:
                    links[key] = rel
        elif stat.S_ISDIR(mode):
            info.type, info.name = tarfile.DIRTYPE, rel + "/"
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            continue                    # sockets: docker's archive leaves them out
        if fd < 0:
            yield _header(info)
            continue
        try:
            yield _header(info)
            left = info.size
            while left > 0:
                chunk = os.read(fd, min(CHUNK, left))
                if not chunk:
                    raise ContextError(f"error checking context: {rel!r} shrank while it "
                                       f"was being sent")
                left -= len(chunk)
                yield chunk
            if info.size % BLOCK:
                yield bytes(BLOCK - info.size % BLOCK)
        finally:
            os.close(fd)
    yield bytes(2 * BLOCK)


def _capability(fd: int) -> str | None:
    try:
        value = os.getxattr(fd, CAPABILITY_XATTR)
    except OSError:
        return None
    return value.decode("utf-8", "surrogateescape")


# Checksums ----------------------------------------------------------------------------------

def _file_hash(path: str, name: str, st: os.stat_result) -> str:
    """sha256 over tarsum v1's header fields (mtime excluded) then the content."""
    h = hashlib.sha256()
    mode = st.st_mode
    link = os.readlink(path) if stat.S_ISLNK(mode) else ""
    if stat.S_ISREG(mode):
        typ, size = "0", st.st_size
    elif stat.S_ISDIR(mode):
        typ, size = "5", 0
    elif stat.S_ISLNK(mode):
        typ, size = "2", 0
    elif stat.S_ISCHR(mode):
        typ, size = "3", 0
    elif stat.S_ISBLK(mode):
        typ, size = "4", 0
    else:
        typ, size = "6", 0
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if typ in "34" else (0, 0)
    fields = [("name", name), ("mode", str(stat.S_IMODE(mode))), ("uid", str(st.st_uid)),
              ("gid", str(st.st_gid)), ("size", str(size)), ("typeflag", typ),
              ("linkname", link), ("uname", ""), ("gname", ""),
              ("devmajor", str(dev[0])), ("devminor", str(dev[1]))]
    try:
        cap = os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
        fields.append(("xattr." + CAPABILITY_XATTR, cap.hex()))
    except OSError:
        pass
    for key, value in fields:
        h.update(key.encode() + value.encode("utf-8", "surrogateescape"))
    if stat.S_ISREG(mode):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, CHUNK):
                h.update(chunk)
        finally:
            os.close(fd)
    return h.hexdigest()


def resolve_in_scope(root: str, rel: str) -> str:
    """rel with every symlink on its way resolved as if root were "/" (moby's
    FollowSymlinkInScope, which dockerd applies to COPY/ADD sources): absolute targets and
    ".." stop at root, so the result, a clean relative path ("" for root itself), never leaves
    it. Missing components are kept as they are. Raises ContextError after 255 links."""
    top = root.rstrip("/")
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        path = top + "/" + "/".join(done + [part])
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > 255:
            raise ContextError(f"too many links resolving {rel!r} in the build context")
        target = os.readlink(path)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return "/".join(done)


def checksum_path(root: str, rel: str, follow: bool = False) -> str:
    """See the module docstring. follow: resolve rel with resolve_in_scope first (a COPY
    source that is a symlink is copied, and so hashed, as its target, as dockerd does)."""
    if follow:
        rel = resolve_in_scope(root, rel)
    name = entry_name(rel)
    path = root.rstrip("/") + ("/" + name if name else "")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ContextError(f"{rel!r} not found in the build context") from None
    if not stat.S_ISDIR(st.st_mode):
        return "file:" + _file_hash(path, name, st)
    h = hashlib.sha256()
    h.update(_file_hash(path, name, st).encode())
    stack = [(path, "")]
    entries: list[tuple[bytes, str]] = []
    while stack:
        dpath, drel = stack.pop()
        for child in os.listdir(dpath):
            cpath = dpath + "/" + child
            crel = child if not drel else drel + "/" + child
            cst = os.lstat(cpath)
            entries.append((os.fsencode(crel), _file_hash(cpath, crel, cst)))
            if stat.S_ISDIR(cst.st_mode):
                stack.append((cpath, crel))
    for crel_b, digest in sorted(entries):
        h.update(crel_b + b"\0" + digest.encode())
    return "dir:" + h.hexdigest()
