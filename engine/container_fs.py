"""The one place berthd enters a container's filesystem: a short-lived child process that gets
into the container's root, chroots there, and stats, archives or extracts for `docker cp` and
`docker export`. Every mount, namespace change and chroot of berthd's is here, in this child, so
berthd itself never leaves its own root or mount namespace (setns and unshare act on a whole
process, and on a multithreaded one not at all).

    python3 -I -S -X utf8 engine/container_fs.py REQUEST-JSON

How it gets in, by what the request's "view" says:
- a running container (pid): chroot into /proc/PID/root, the container's root with every mount
  the container has (binds, /etc/hosts and its siblings, tmpfs): paths resolve as the container
  resolves them, and the kernel keeps absolute links and `..` inside it. The process is checked
  to be the container's (its cgroup names the container) before anything is done through it.
  With "clean" (export): setns into its mount namespace and chroot into a non-recursive clone
  of its root mount (open_tree), the root filesystem without anything mounted over it.
- a stopped one (overlay): unshare a mount namespace of its own, made private so nothing
  propagates out, mount the container's overlay (its image's layers under its writable layer)
  on the container's merged/ directory there, and bind what the container would see over it
  (its /etc/hostname, /etc/hosts, /etc/resolv.conf, its -v binds and its volumes, parents
  first) as dockerd's openContainerFS does. Everything mounted goes when this process ends, however it ends.

It answers on stdout: one JSON line ({"stat": ...}, {"ready": true}, {"ok": true} or
{"error": ...}), then for an archive or an export the tar stream; for an extraction it reads
the tar on stdin after its "ready" line and ends with a last JSON line.
"""
from __future__ import annotations

import ctypes
import errno
import importlib.machinery
import json
import os
import signal
import stat
import sys

if __name__ == "__main__":      # run by path with -I: the package is the script's grandparent
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import fs_tar  # noqa: E402
from lowrt.units import ascii_digits  # noqa: E402

# linux/sched.h, linux/mount.h, linux/fcntl.h, linux/prctl.h
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
PR_SET_PDEATHSIG = 1
# the new mount API's calls have the same numbers on every architecture berth runs on
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442

# statfs f_type of the kernel's own filesystems: an archive of a running container does not
# walk into them (dockerd's view of a container has none of them mounted)
PSEUDO_FILESYSTEMS = {
    0x9FA0,         # proc
    0x62656572,     # sysfs
    0x27E0EB,       # cgroup
    0x63677270,     # cgroup2
    0x1CD1,         # devpts
    0x19800202,     # mqueue
    0x73636673,     # securityfs
    0x64626720,     # debugfs
    0x74726163,     # tracefs
    0xCAFE4A11,     # bpf
    0x65735543,     # fusectl
    0x6165676C,     # pstore
    0x62656570,     # configfs
    0x42494E4D,     # binfmt_misc
}

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]


class Refusal(Exception):
    """The request cannot be done as asked (kind: 'invalid', 'gone'), with dockerd's words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _Statfs(ctypes.Structure):
    # struct statfs on 64-bit Linux: f_type first, the rest is room
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]


def _check(result: int, what: str, path: str = "") -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path or None)
    return result


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), "mount", target)


def _open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_libc.syscall(SYS_OPEN_TREE, dirfd, path.encode(), flags), "open_tree", path)


def _move_mount(fd: int, target: str) -> None:
    _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(),
                         MOVE_MOUNT_F_EMPTY_PATH), "move_mount", target)


def _read_only(fd: int) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                         ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr")


def _fs_type(path: str) -> int:
    buf = _Statfs()
    if _libc.statfs(path.encode(), ctypes.byref(buf)) < 0:
        return 0
    return buf.f_type & 0xFFFFFFFF


# Getting in -----------------------------------------------------------------------------------

def _container_process(pid: int, cid: str) -> None:
    """Refuse a pid that is no longer the container's: gone, or reused by another process."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if not any(line.rsplit(":", 1)[-1].rstrip("/").endswith("/" + cid) for line in lines):
        raise Refusal("gone", f"container {cid[:12]} has no running process any more")


def enter_running(pid: int, cid: str, clean: bool) -> None:
    root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    ns_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC) if clean else -1
    _container_process(pid, cid)       # after the opens: what they hold is the container's
    if clean:
        _check(_libc.setns(ns_fd, CLONE_NEWNS), "setns")
        tree = _open_tree(root_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)
        os.fchdir(tree)
    else:
        os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")


def enter_stopped(overlay: str, mountpoint: str, binds: list[dict]) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    # private first: a mount under a shared one would show up in the host's namespace too
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("overlay", mountpoint, "overlay", 0, overlay)
    trees = []
    for bind in binds:
        try:
            fd = _open_tree(AT_FDCWD, bind["source"],
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
        except FileNotFoundError:
            sys.stderr.write(f"bind source {bind['source']} is gone: left out\n")
            continue
        if bind.get("readonly"):
            _read_only(fd)
        trees.append((fd, bind, stat.S_ISDIR(os.stat(bind["source"]).st_mode)))
    os.chdir(mountpoint)
    os.chroot(".")
    os.chdir("/")
    # inside now: each destination resolves within the container's root, as at its start
    for fd, bind, is_dir in trees:
        dest = fs_tar.clean_abs(bind["destination"])
        _mountpoint(dest, is_dir)
        _move_mount(fd, dest)
        os.close(fd)


def _mountpoint(dest: str, is_dir: bool) -> None:
    """The bind's destination, made as the runtime makes it at start when the image lacks it."""
    if os.path.lexists(dest):
        return
    parent = os.path.dirname(dest)
    os.makedirs(parent, 0o755, exist_ok=True)
    if is_dir:
        os.mkdir(dest, 0o755)
    else:
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


def enter(view: dict, clean: bool) -> None:
    """Into the container's root, or Refusal: a failure here is never about the path asked."""
    try:
        if "pid" in view:
            enter_running(int(view["pid"]), view["cid"], clean)
        else:
            enter_stopped(view["overlay"], view["mountpoint"], [] if clean else view["binds"])
    except OSError as e:
        if "pid" in view and e.errno in (errno.ENOENT, errno.ESRCH):
            raise Refusal("gone", f"container {view['cid'][:12]} has no running process any "
                                  f"more") from None
        text = e.strerror or str(e)
        where = f" {e.filename}" if e.filename else ""
        raise Refusal("system", f"cannot enter the filesystem of the container:{where} "
                                f"{text[:1].lower()}{text[1:]}") from None


def _seal_imports() -> None:
    """Inside the container nothing may be imported: a lazy import would run the container's
    own /usr/lib/python3*/ files as root. Imports now fail instead."""
    machinery = importlib.machinery
    sys.path[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [m for m in sys.meta_path
                        if m in (machinery.BuiltinImporter, machinery.FrozenImporter)]


def _prewarm() -> None:
    """What tarfile imports on first use (decompressors, codecs), imported while outside."""
    import codecs
    for name in ("zlib", "bz2", "lzma", "gzip"):
        try:
            __import__(name)
        except ImportError:
            pass
    for name in ("utf-8", "ascii", "latin-1", "iso8859-1"):
        codecs.lookup(name)


# Inside ---------------------------------------------------------------------------------------

def _descend_live(path: str, st: os.stat_result, parent: os.stat_result) -> bool:
    """Walk into a directory unless it is the mount point of a kernel filesystem."""
    return st.st_dev == parent.st_dev or _fs_type(path) not in PSEUDO_FILESYSTEMS


def _descend_same_fs(path: str, st: os.stat_result, parent: os.stat_result) -> bool:
    return True


def lookup_owner(user: str) -> tuple[int, int]:
    """Config.User as dockerd's copyUIDGID reads it in the container's /etc/passwd and
    /etc/group: a known name or uid gives its primary group, an unknown uid group 0."""
    name, _, group = user.partition(":")
    uid = gid = 0
    if name:
        entry = _lookup("/etc/passwd", name)
        if entry:
            uid, gid = int(entry[2]), int(entry[3])
        elif ascii_digits(name):
            uid = int(name)
        else:
            raise Refusal("invalid", f"unable to find user {name}: no matching entries in "
                                     f"passwd file")
    if group:
        entry = _lookup("/etc/group", group)
        if entry:
            gid = int(entry[2])
        elif ascii_digits(group):
            gid = int(group)
        else:
            raise Refusal("invalid", f"unable to find group {group}: no matching entries in "
                                     f"group file")
    return uid, gid


def _lookup(path: str, key: str) -> list[str] | None:
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 22).decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and (fields[0] == key or fields[2] == key):
            ids = fields[2:4] if path.endswith("passwd") else fields[2:3]
            if all(ascii_digits(i) for i in ids):
                return fields
    return None


def _check_writable(path: str, mounts: list[dict], readonly_rootfs: bool) -> None:
    """dockerd's checkWritablePath: a read-only bind, or a read-only root outside any."""
    best = None
    for m in mounts:
        dest = fs_tar.clean_abs(m["destination"])
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            if best is None or len(dest) > len(best[0]):
                best = (dest, m)
    if best is not None:
        if best[1].get("readonly"):
            raise Refusal("invalid", "mounted volume is marked read-only")
        return
    if readonly_rootfs:
        raise Refusal("invalid", "container rootfs is marked read-only")


def _answer(out, obj: dict) -> None:
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()


def _os_error(e: OSError, what: str) -> dict:
    """As Go words it: 'lstat /etc/passwd/: not a directory'."""
    text = e.strerror or str(e)
    text = text[:1].lower() + text[1:]
    where = f" {e.filename}" if e.filename else ""
    return {"error": {"errno": e.errno, "message": f"{what}{where}: {text}"}}


def run(request: dict, out) -> int:
    op = request["op"]
    what = "lstat"
    try:
        _prewarm()
        enter(request["view"], clean=op == "export")
        _seal_imports()
        descend = _descend_live if "pid" in request["view"] else _descend_same_fs
        if op == "export":
            _answer(out, {"ok": True})
            fs_tar.write_tree(out, "/", _descend_same_fs)
            return 0
        given = request["path"]
        if op in ("stat", "archive"):
            path = fs_tar.preserve_trailing(fs_tar.clean_abs(given), given)
            _answer(out, {"stat": fs_tar.path_stat(path)})
            if op == "archive":
                fs_tar.write_resource(out, path, descend)
            return 0
        if op == "extract":
            what = "extract"
            # as dockerd: every link followed, the last one too, so a link to a directory
            # is a place to extract to
            real = os.path.realpath(fs_tar.clean_abs(given), strict=True)
            path = fs_tar.preserve_trailing(real, given)
            what = "lstat"
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise Refusal("invalid", "extraction point is not a directory")
            what = "extract"
            _check_writable(real, request.get("mounts") or [], bool(request.get("readonly")))
            owner = lookup_owner(request["user"]) if request.get("user") else None
            _answer(out, {"ready": True})
            count = fs_tar.extract(sys.stdin.buffer, path, owner=owner,
                                   no_overwrite_dir_non_dir=bool(request.get("no_overwrite")))
            _answer(out, {"ok": True, "entries": count})
            return 0
        raise Refusal("invalid", f"unknown operation {op!r}")
    except Refusal as e:
        _answer(out, {"error": {"kind": e.kind, "message": e.message}})
    except fs_tar.ExtractError as e:
        _answer(out, {"error": {"kind": "invalid", "message": str(e)}})
    except BrokenPipeError:
        pass                    # berthd stopped reading: its client went away
    except OSError as e:
        _answer(out, _os_error(e, what))
    return 1


def main() -> int:
    # die with berthd: nothing of this child may outlive the request it serves
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    request = json.loads(sys.argv[1])
    if os.getppid() != request.get("parent", os.getppid()):
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    out = open(1, "wb", buffering=1 << 20, closefd=False)
    try:
        return run(request, out)
    except BaseException as e:      # nothing may print a traceback from inside the container
        try:
            _answer(out, {"error": {"message": f"internal error: {type(e).__name__}: {e}"}})
        except OSError:
            pass
        return 1
    finally:
        try:
            out.flush()
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
