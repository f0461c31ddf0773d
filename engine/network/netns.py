"""Named network namespaces, made as `ip netns add` makes them: an empty file under /run/netns
with a new namespace bind-mounted on it, so the namespace outlives every process in it and the
runtime can join it by path (the spec's linux.namespaces network "path").

The calls (unshare, setns, mount) are made in a short-lived thread: unshare(CLONE_NEWNET) and
setns() move only the calling thread, so berthd's other threads never change namespace."""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), b"none", flags, None),
           f"mount {source} on {target}")


def _ensure_dir() -> None:
    """/run/netns made shared, as iproute2 does on first use: mounts made in it then show in
    every mount namespace (the runtime's and the shims') that has it as a slave or peer."""
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    if _libc.mount(b"", str(NETNS_DIR).encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:      # EINVAL: not a mount point yet
        _check(-1, f"make {NETNS_DIR} shared")
    _mount(str(NETNS_DIR), str(NETNS_DIR), MS_BIND | MS_REC)
    _check(_libc.mount(b"", str(NETNS_DIR).encode(), b"none", MS_SHARED | MS_REC, None),
           f"make {NETNS_DIR} shared")


def in_thread(fn: Callable[[], T]) -> T:
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = e
    t = threading.Thread(target=run, name="berth-netns")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def path(name: str) -> Path:
    return NETNS_DIR / name


def create(name: str) -> Path:
    """A new, empty network namespace (only a down lo) at /run/netns/<name>."""
    _ensure_dir()
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)

    def make() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            try:
                _mount("/proc/thread-self/ns/net", str(target), MS_BIND)
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back")
        finally:
            os.close(own)
    try:
        in_thread(make)
    except OSError:
        target.unlink(missing_ok=True)
        raise
    return target


def remove(name: str) -> None:
    """Unmount and delete /run/netns/<name>; the namespace goes with its last user."""
    target = path(name)
    if not target.exists():
        return
    _libc.umount2(str(target).encode(), MNT_DETACH)
    try:
        target.unlink()
    except FileNotFoundError:
        pass


def run_in(ns_path: str | Path, fn: Callable[[], T]) -> T:
    """fn() called in the network namespace at ns_path (a thread that enters it and comes
    back): what it makes there, a netlink socket say, stays bound to that namespace."""
    def enter() -> T:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {ns_path}")
            try:
                return fn()
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back")
        finally:
            os.close(fd)
            os.close(own)
    return in_thread(enter)
