"""Open a path inside a root as if the root were "/": symlinks and ".." cannot lead out of it.

A container image controls its rootfs, and a volume shared with a running container can change
under lowrt's feet, so a mount destination like /data/x could be, or become, a symlink to a
host directory. Resolving to a path string and mounting on that string later leaves a window
for such a swap (CVE-2021-30465). Everything here returns an O_PATH file descriptor instead:
what lowrt then mounts on, creates in or makes a node in is the very directory (or file) that
was resolved, whatever happens to the names afterwards.

Resolution uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) where the kernel has it: one
call, the kernel keeping the lookup inside the root atomically. Where it does not, and for the
directories and files that must be created on the way, `_walk` goes component by component:
each name opened with O_PATH | O_NOFOLLOW relative to the fd of its parent, a symlink read
and its target walked again from the root's fd (an absolute one) or from its parent, ".."
taken lexically (the parent fd is popped, never opened through ".."), missing directories
made with mkdirat on the parent's fd.

LOWRT_TEST_RESOLVE=walk in the environment makes lowrt use the walk even where openat2 works;
it is for tests, which must cover both.
"""
from __future__ import annotations

import errno
import os
import stat

from lowrt.linux import openat2 as _o2

_MAX_LINKS = 40          # as the kernel's MAXSYMLINKS
_O_PATH = os.O_PATH | os.O_CLOEXEC
_RESOLVE = _o2.RESOLVE_IN_ROOT | _o2.RESOLVE_NO_MAGICLINKS

use_openat2 = os.environ.get("LOWRT_TEST_RESOLVE") != "walk"


def open_in_root(root_fd: int, path: str, make: str = "", follow: bool = True) -> int:
    """An O_PATH, close-on-exec fd of path (absolute or not, taken from root_fd as "/").

    make: "" when it must exist (FileNotFoundError otherwise); "dir" to create what is missing
    as directories (mode 0755 less the umask); "file" to create missing parents as directories
    and the last component as an empty file (0644 less the umask). follow=False opens a last
    component that is a symlink as the symlink itself."""
    if use_openat2 and follow and _o2.available():
        try:
            return _openat2(root_fd, path)
        except FileNotFoundError:
            if not make:
                raise
    return _walk(root_fd, path, make, follow)


def _openat2(root_fd: int, path: str) -> int:
    for _ in range(16):
        try:
            return _o2.openat2(root_fd, path, _O_PATH, _RESOLVE)
        except BlockingIOError:  # EAGAIN: a rename anywhere raced a ".."; the kernel says retry
            continue
    raise OSError(errno.EAGAIN, f"resolve {path}: kept racing renames, giving up")


def _walk(root_fd: int, path: str, make: str, follow: bool) -> int:
    stack: list[int] = []  # fds we own, one per directory below the root; [-1] is the current one
    pending = _components(path)
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            parent = stack[-1] if stack else root_fd
            last = not pending
            try:
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=parent)
            except FileNotFoundError:
                if not make:
                    raise
                _create(parent, name, "file" if last and make == "file" else "dir")
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=parent)
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode) and (follow or not last):
                links += 1
                try:
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, f"resolve {path}: too many levels of symbolic links")
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                pending.extend(_components(target))
                continue
            if not last and not stat.S_ISDIR(mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR,
                                         f"resolve {path}: {name} is not a directory")
            stack.append(fd)
        if not stack:
            return os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=root_fd)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _components(path: str) -> list[str]:
    """path's names, last first (the walk pops from the end)."""
    parts = [p for p in path.split("/") if p and p != "."]
    parts.reverse()
    return parts


def _create(parent: int, name: str, kind: str) -> None:
    try:
        if kind == "dir":
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=parent))
    except FileExistsError:  # made meanwhile (or a dangling symlink): the open that follows says
        pass


def path_of(fd: int) -> str:
    """Where fd is, as the kernel names it (for checks and messages)."""
    return os.readlink(f"/proc/self/fd/{fd}")

