"""Tar streams of a directory tree, and their extraction, as dockerd's archive package writes
and reads them for `docker cp` and `docker export`: entry names rebased as TarResourceRebase
does, directories named with a trailing '/', hard links as links to the first name seen, mtimes
in whole seconds, no user or group names, file capabilities as SCHILY.xattr records.

This module runs inside a container's root filesystem (engine/container_fs.py chroots there
first), so it is standard library only, imports nothing lazily on the paths it takes, and never
asks for user or group names: glibc would load NSS modules named by the container's
/etc/nsswitch.conf from the container's own /lib (CVE-2019-14271 was exactly that in docker cp).
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

BLOCK = 512
COPY_CHUNK = 1 << 20
IMPLIED_DIR_MODE = 0o755          # go-archive's ImpliedDirectoryMode
CAPABILITY_XATTR = "security.capability"
XATTR_PAX_PREFIX = "SCHILY.xattr."


class ExtractError(Exception):
    """Input that cannot be extracted as asked: the client's fault, not the filesystem's."""


# Paths as Go's path/filepath and go-archive treat them ------------------------------------------

def _q(text: str) -> str:
    """Go's %q, near enough for paths."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def clean_abs(path: str) -> str:
    """filepath.Join("/", path): lexically cleaned and absolute, so `..` stops at the root."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def go_base(path: str) -> str:
    """filepath.Base: the last element, trailing slashes dropped; '/' for the root."""
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


def preserve_trailing(cleaned: str, original: str) -> str:
    """go-archive's PreserveTrailingDotOrSeparator: a trailing '/.' or '/' of the path as given
    survives cleaning, since it asserts a directory (and makes lstat follow a last symlink)."""
    if go_base(cleaned) != "." and go_base(original) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


def entry_name(name: str) -> str:
    """A tar entry's name made relative to the extraction directory, as go-archive's Unpack:
    a leading '/' dropped and cleaned; '' for the directory itself; ExtractError if it would
    leave it."""
    parts: list[str] = []
    for part in name.lstrip("/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ExtractError(f"invalid entry name {_q(name)}")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def follow_in_scope(path: str) -> str:
    """moby's symlink.FollowSymlinkInScope(path, "/") once chrooted: every link followed as far
    as it goes (a broken one to where it points)."""
    return os.path.realpath(path)


def path_stat(path: str) -> dict:
    """What dockerd's PathStat holds, with the raw st_mode (berthd turns it into Go's FileMode)."""
    st = os.lstat(path)
    target = follow_in_scope(path) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": go_base(path), "size": st.st_size, "mode": st.st_mode,
            "mtime_ns": st.st_mtime_ns, "link_target": target}


# Writing --------------------------------------------------------------------------------------

def _log(message: str) -> None:
    sys.stderr.write(message + "\n")


class TarWriter:
    """Writes entries to a binary stream; files are read as they are written (nothing is held in
    memory but one chunk)."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.links: dict[tuple[int, int], str] = {}

    def add(self, path: str, name: str, st: os.stat_result) -> None:
        """One entry from path (lstat'ed as st) named name; a file that vanished or cannot be
        read is logged and left out, as dockerd's Tarballer does with a live container."""
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)           # dockerd truncates to whole seconds
        fd = -1
        mode = st.st_mode
        try:
            if stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in self.links:
                    info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
                else:
                    # opened before the header is written, so a file gone meanwhile leaves
                    # no header without its data; the size is the open file's
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    fst = os.fstat(fd)
                    if not stat.S_ISREG(fst.st_mode):
                        raise OSError(errno.EINVAL, "changed while archiving", path)
                    info.size = fst.st_size
                    self._capability(fd, info)
                    if st.st_nlink > 1:
                        self.links[key] = name
            elif stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
            else:
                _log(f"archive: {path}: sockets cannot be archived, left out")
                return
            self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            if fd >= 0:
                self._copy(fd, info.size, path)
        except OSError as e:
            _log(f"archive: {path}: {e.strerror or e}, left out")
        finally:
            if fd >= 0:
                os.close(fd)

    def _capability(self, fd: int, info: tarfile.TarInfo) -> None:
        try:
            value = os.getxattr(fd, CAPABILITY_XATTR)
        except OSError:
            return
        if len(value) > 3 and value[3] == 3:
            # as go-archive: a v3 capability (with a root uid of its user namespace) means
            # nothing outside it; written as v2
            value = value[:3] + b"\x02" + value[4:20]
        info.pax_headers = {XATTR_PAX_PREFIX + CAPABILITY_XATTR:
                            value.decode("utf-8", "surrogateescape")}

    def _copy(self, fd: int, size: int, path: str) -> None:
        left = size
        while left > 0:
            chunk = os.read(fd, min(COPY_CHUNK, left))
            if not chunk:
                # the file shrank while being read: the entry keeps its announced size
                _log(f"archive: {path}: shrank while archiving, padded with zeros")
                self.out.write(bytes(left))
                left = 0
                break
            self.out.write(chunk)
            left -= len(chunk)
        if size % BLOCK:
            self.out.write(bytes(BLOCK - size % BLOCK))

    def close(self) -> None:
        self.out.write(bytes(2 * BLOCK))
        self.out.flush()


def walk(top: str, descend: Callable[[str, os.stat_result, os.stat_result], bool],
         ) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path, path relative to top, lstat) for top and all below it, depth first, each
    directory's entries in byte order (as Go's WalkDir). Symbolic links are not followed;
    descend(path, st, parent_st) says whether to enter a directory other than top."""
    st = os.lstat(top)
    yield top, ".", st
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [(top, ".", st, _names(top))]
    while stack:
        dirpath, rel, dst, names = stack[-1]
        if not names:
            stack.pop()
            continue
        name = names.pop()
        path = dirpath.rstrip("/") + "/" + name
        crel = name if rel == "." else rel + "/" + name
        try:
            cst = os.lstat(path)
        except OSError as e:
            _log(f"archive: {path}: {e.strerror or e}, left out")
            continue
        yield path, crel, cst
        if stat.S_ISDIR(cst.st_mode) and descend(path, cst, dst):
            stack.append((path, crel, cst, _names(path)))


def _names(path: str) -> list[str]:
    """A directory's names in reverse byte order (popped from the end: in order)."""
    try:
        names = os.listdir(path)
    except OSError as e:
        _log(f"archive: {path}: {e.strerror or e}, its entries left out")
        return []
    return sorted(names, key=os.fsencode, reverse=True)


def write_resource(out: BinaryIO, abs_path: str,
                   descend: Callable[[str, os.stat_result, os.stat_result], bool]) -> None:
    """The tar of GET /containers/{id}/archive: abs_path (as the client gave it, cleaned, its
    trailing '/' or '/.' kept) with entries named as dockerd's TarResourceRebase names them:
    a directory's contents under its base name ('quux/baz'; '/foo' for the root; './baz' for
    'quux/.'), a file or symbolic link as its base name."""
    writer = TarWriter(out)
    st = os.lstat(abs_path)
    rebase = go_base(abs_path)
    if stat.S_ISDIR(st.st_mode):
        prefix = "" if rebase == "/" else rebase
        for path, rel, est in walk(abs_path, descend):
            writer.add(path, prefix + "/" if rel == "." else f"{prefix}/{rel}", est)
    else:
        writer.add(abs_path, rebase, st)
    writer.close()


def write_tree(out: BinaryIO, top: str,
               descend: Callable[[str, os.stat_result, os.stat_result], bool]) -> None:
    """The tar of `docker export`: everything below top, named relative to it, top itself
    left out (dockerd's TarWithOptions of the container's root)."""
    writer = TarWriter(out)
    for path, rel, st in walk(top, descend):
        if rel != ".":
            writer.add(path, rel, st)
    writer.close()


# Extracting -----------------------------------------------------------------------------------

def extract(stream: BinaryIO, dest: str, *, owner: tuple[int, int] | None,
            no_overwrite_dir_non_dir: bool) -> int:
    """Unpack a tar stream (optionally gzip, bzip2 or xz compressed, as dockerd's Untar takes
    them) into the directory dest, as go-archive's Unpack does: existing entries replaced (a
    directory merged with a directory), missing parents made 0755, ownership from the archive
    unless owner is given, modes after ownership (chown clears set-id bits), directory times
    last. Returns the number of entries; raises ExtractError for a bad archive, OSError for
    the filesystem's refusals."""
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    count = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|*")
    except tarfile.ReadError as e:
        if str(e) == "empty file":
            return 0                    # an empty body extracts nothing, as dockerd's
        raise ExtractError(f"invalid tar archive: {e}") from None
    except (tarfile.CompressionError, EOFError, OSError) as e:
        raise ExtractError(f"invalid tar archive: {e}") from None
    try:
        for member in _members(tar):
            name = entry_name(member.name)
            if not name:
                continue
            path = dest.rstrip("/") + "/" + name
            _replace_existing(path, member, dest, no_overwrite_dir_non_dir)
            _implied_parents(dest, name)
            _create(tar, member, path, dest)
            uid, gid = owner if owner is not None else (member.uid, member.gid)
            os.chown(path, uid, gid, follow_symlinks=False)
            _xattrs(member, path)
            _chmod(member, path, dest)
            if member.isdir():
                dirs.append((path, member))
            else:
                _times(member, path, dest)
            count += 1
    finally:
        tar.close()
    for path, member in reversed(dirs):
        _times(member, path, dest)
    return count


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The archive's entries; a damaged or cut archive is the client's (ExtractError)."""
    while True:
        try:
            member = tar.next()
        except tarfile.ReadError as e:
            raise ExtractError(f"invalid tar archive: {e}") from None
        except (EOFError, tarfile.CompressionError) as e:
            raise ExtractError(f"invalid tar archive: {e}") from None
        if member is None:
            return
        yield member


def _replace_existing(path: str, member: tarfile.TarInfo, dest: str,
                      no_overwrite_dir_non_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    is_dir = stat.S_ISDIR(st.st_mode)
    if no_overwrite_dir_non_dir and is_dir and not member.isdir():
        raise ExtractError(f"cannot overwrite directory {_q(path)} with non-directory "
                           f"{_q(dest)}")
    if no_overwrite_dir_non_dir and not is_dir and member.isdir():
        raise ExtractError(f"cannot overwrite non-directory {_q(path)} with directory "
                           f"{_q(dest)}")
    if not (is_dir and member.isdir()):
        _remove_all(path)


def _remove_all(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    for name in os.listdir(path):
        _remove_all(path + "/" + name)
    os.rmdir(path)


def _implied_parents(dest: str, name: str) -> None:
    """Parents an archive names only through its files' paths: made 0755, owned by root."""
    parent = name.rpartition("/")[0]
    if not parent:
        return
    cur = dest.rstrip("/")
    for part in parent.split("/"):
        cur += "/" + part
        try:
            os.mkdir(cur, IMPLIED_DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(cur):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", cur) from None
            continue
        os.chmod(cur, IMPLIED_DIR_MODE)      # not the umask's


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, dest: str) -> None:
    perm = member.mode & 0o777
    if member.isreg():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     perm)
        try:
            source = tar.extractfile(member)
            while True:
                try:
                    chunk = source.read(COPY_CHUNK)
                except (tarfile.ReadError, EOFError) as e:
                    raise ExtractError(f"invalid tar archive: {e}") from None
                if not chunk:
                    break
                _write_all(fd, chunk)
        finally:
            os.close(fd)
    elif member.isdir():
        try:
            os.mkdir(path, perm)
        except FileExistsError:
            pass                        # merged with the directory already there
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target = entry_name(member.linkname)
        if not target:
            raise ExtractError(f"invalid hard link target {_q(member.linkname)}")
        os.link(dest.rstrip("/") + "/" + target, path, follow_symlinks=False)
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, perm | kind, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, perm)
    else:
        raise ExtractError(f"unhandled tar header type {member.type!r} of {_q(member.name)}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _xattrs(member: tarfile.TarInfo, path: str) -> None:
    for key, value in (member.pax_headers or {}).items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX):]
        try:
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            _log(f"extract: {path}: extended attribute {name} left out: {e.strerror}")


def _chmod(member: tarfile.TarInfo, path: str, dest: str) -> None:
    if member.issym():
        return
    if member.islnk():
        target = dest.rstrip("/") + "/" + entry_name(member.linkname)
        if stat.S_ISLNK(os.lstat(target).st_mode):
            return
    os.chmod(path, member.mode & 0o7777)


def _times(member: tarfile.TarInfo, path: str, dest: str) -> None:
    mtime_ns = int(member.mtime * 1_000_000_000)
    atime = member.pax_headers.get("atime") if member.pax_headers else None
    atime_ns = mtime_ns
    if atime:
        try:
            atime_ns = max(int(float(atime) * 1_000_000_000), mtime_ns)
        except ValueError:
            pass
    if member.islnk():
        target = dest.rstrip("/") + "/" + entry_name(member.linkname)
        if stat.S_ISLNK(os.lstat(target).st_mode):
            return
    os.utime(path, ns=(atime_ns, mtime_ns), follow_symlinks=not member.issym())
