"""Reading and writing cgroup interface files, with errors that name the file and the value.

Everything here uses plain os calls on purpose: they are the cheapest way to touch a cgroup
file (no buffering, no text layer), and the create path of `lowrt run` is measured in
milliseconds.
"""
from __future__ import annotations

import errno as _errno
import os
import time


class CgroupError(OSError):
    """A cgroup operation failed; the message names the path or value, `errno` the cause
    (None for a refused configuration). An OSError, so that callers handling I/O errors
    handle these too; str() is the message alone."""

    def __init__(self, message: str, errno: int | None = None):
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _reason(err: OSError) -> str:
    return os.strerror(err.errno).lower() if err.errno else str(err)


def write(path: str, value: str) -> None:
    """Write one value to a cgroup file in a single write(2), as the kernel expects."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError(f"open {path}: {_reason(err)}", err.errno) from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise CgroupError(f"write {value!r} to {path}: {_reason(err)}", err.errno) from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    """The whole file as text; cgroup files are small, one read(2) is enough for most."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError(f"open {path}: {_reason(err)}", err.errno) from None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as err:
        raise CgroupError(f"read {path}: {_reason(err)}", err.errno) from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_optional(path: str) -> str | None:
    """The file's text, or None when the kernel does not offer it (no controller, old kernel)."""
    try:
        return read(path)
    except CgroupError as err:
        if err.errno in (_errno.ENOENT, _errno.ENODEV, _errno.EOPNOTSUPP):
            return None
        raise


def read_uint(path: str) -> int:
    """A single-number file; "max" reads as 2**64-1, the value runc reports for "no limit"."""
    text = read(path).strip()
    if text == "max":
        return UINT64_MAX
    try:
        return int(text)
    except ValueError:
        raise CgroupError(f"parse {path}: not a number: {text!r}") from None


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line: memory.stat, cpu.stat, memory.events)."""
    out = {}
    text = read_optional(path)
    if text is None:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def read_pids(path: str) -> list[int]:
    text = read_optional(path)
    return [int(p) for p in text.split()] if text else []


UINT64_MAX = 2**64 - 1


def rmdir_retry(path: str, timeout: float = 2.0) -> None:
    """rmdir a cgroup, waiting out EBUSY: the kernel unlinks exiting tasks asynchronously, so
    a cgroup whose last process was just reaped can still look populated for a moment."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno not in (_errno.EBUSY, _errno.EAGAIN) or time.monotonic() >= deadline:
                raise CgroupError(f"remove cgroup {path}: {_reason(err)}", err.errno) from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def remove_tree(path: str, timeout: float = 2.0) -> None:
    """Remove a cgroup and every cgroup below it, deepest first (a container may have made
    its own sub-cgroups); plain files inside a cgroup cannot be unlinked and need not be."""
    try:  # most cgroups have no sub-cgroup: one rmdir, no listing (EBUSY says there are some)
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError as err:
        if err.errno not in (_errno.EBUSY, _errno.EAGAIN, _errno.ENOTEMPTY):
            raise CgroupError(f"remove cgroup {path}: {_reason(err)}", err.errno) from None
    try:
        entries = os.scandir(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise CgroupError(f"list cgroup {path}: {_reason(err)}", err.errno) from None
    with entries:
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    for sub in subdirs:
        remove_tree(sub, timeout)
    rmdir_retry(path, timeout)
