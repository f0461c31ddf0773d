"""Where a task's files live, and running `berth-shim … start` / `berth-shim … delete`.

Layout under the supervisor's --root (docs/internals.md):
    tasks/<namespace>/<id>/     the bundle (config.json, rootfs/, init.exit, shim.log, ...)
    s/<24 hex>.sock             the shim's socket (sha256 of "<namespace>/<id>": short and fixed)
    runtime/<name>/<namespace>/ the OCI runtime's --root
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from supervisor import errors

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
DELETE_TIMEOUT = 30.0
MNT_DETACH = 2


@dataclass(frozen=True)
class Layout:
    root: Path

    def bundle(self, namespace: str, id: str) -> Path:
        return self.root / "tasks" / namespace / id

    def socket(self, namespace: str, id: str) -> Path:
        digest = hashlib.sha256(f"{namespace}/{id}".encode()).hexdigest()[:24]
        return self.root / "s" / f"{digest}.sock"

    def runtime_root(self, runtime_name: str, namespace: str) -> Path:
        return self.root / "runtime" / runtime_name / namespace

    def bundles(self) -> list[tuple[str, str, Path]]:
        """(namespace, id, path) of every bundle directory present."""
        out = []
        tasks = self.root / "tasks"
        if not tasks.is_dir():
            return out
        for ns_dir in sorted(tasks.iterdir()):
            if ns_dir.is_dir():
                out += [(ns_dir.name, b.name, b) for b in sorted(ns_dir.iterdir()) if b.is_dir()]
        return out


@dataclass(frozen=True)
class ShimArgs:
    """What identifies one shim on its command line."""
    binary: str
    namespace: str
    id: str
    bundle: str
    runtime: str
    runtime_root: str

    def argv(self, *tail: str) -> list[str]:
        return [self.binary, "--namespace", self.namespace, "--id", self.id, "--bundle", self.bundle,
                *tail]


async def _run(argv: list[str], timeout: float, what: str) -> tuple[int, str, str]:
    """Run argv to its exit: (exit status, its last stdout line, its stderr when it failed).

    The shim's `start` leaves a daemon behind that may hold the pipes open, so stdout is read
    line by line as it comes, never to EOF."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    got_line = asyncio.Event()

    async def read_lines():
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            if line.strip():
                lines.append(line.decode(errors="replace").strip())
                got_line.set()

    reader = asyncio.ensure_future(read_lines())
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        reader.cancel()
        raise errors.Unavailable(f"{what}: {os.path.basename(argv[0])} did not finish in "
                                 f"{timeout:.0f}s") from None
    # Whatever it printed before exiting is in the pipe already: wait for its end or its
    # first line (the one line both verbs print), not for the daemon to close the pipe.
    waiter = asyncio.ensure_future(got_line.wait())
    await asyncio.wait({reader, waiter}, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    reader.cancel()
    err = ""
    if rc != 0:
        try:
            err = (await asyncio.wait_for(proc.stderr.read(65536), 0.2)).decode(errors="replace")
        except asyncio.TimeoutError:
            pass
    return rc, (lines[-1] if lines else ""), err


_background: set[asyncio.Task] = set()


async def start(args: ShimArgs, socket: str) -> str:
    """Start the shim daemon; returns the socket path it printed once its socket accepts.

    `start` prints that line only on success, just before it exits: the line is the signal,
    so the interpreter's own exit is not waited for (it is reaped in the background)."""
    argv = args.argv("--socket", socket, "--runtime", args.runtime,
                     "--runtime-root", args.runtime_root, "start")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    line = asyncio.ensure_future(proc.stdout.readline())
    exited = asyncio.ensure_future(proc.wait())
    done, _ = await asyncio.wait({line, exited}, timeout=START_TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    if line in done and line.result().strip():
        exited.cancel()
        _reap_later(proc)
        return line.result().decode(errors="replace").strip()
    line.cancel()
    if exited not in done:
        try:
            rc = await asyncio.wait_for(exited, 1.0)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise errors.Unavailable(f"start shim for task {args.id}: berth-shim did not finish "
                                     f"in {START_TIMEOUT:.0f}s") from None
    else:
        rc = exited.result()
    try:
        err = (await asyncio.wait_for(proc.stderr.read(65536), 0.2)).decode(errors="replace")
    except asyncio.TimeoutError:
        err = ""
    raise errors.Internal(f"start shim for task {args.id}: exit status {rc}: "
                          f"{_last_line(err) or 'no error message'}")


def _reap_later(proc) -> None:
    async def reap():
        try:
            await asyncio.wait_for(proc.wait(), START_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    task = asyncio.ensure_future(reap())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def cleanup(args: ShimArgs) -> dict:
    """`berth-shim … delete`: the runtime's delete --force, unmount, and the init's exit from
    init.exit: {"pid", "exit_status", "exited_at", "reason"?}."""
    argv = args.argv("--runtime", args.runtime, "--runtime-root", args.runtime_root, "delete")
    try:
        rc, out, err = await _run(argv, DELETE_TIMEOUT, f"clean up after shim of task {args.id}")
    except (OSError, errors.SupervisorError) as e:
        log.warning("cleanup of task %s/%s: %s", args.namespace, args.id, e)
        return {"pid": 0, "exit_status": 255, "exited_at": 0, "reason": str(e)}
    try:
        result = json.loads(out) if out else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        reason = _last_line(err) or f"berth-shim delete exited {rc}"
        log.warning("cleanup of task %s/%s: %s", args.namespace, args.id, reason)
        return {"pid": 0, "exit_status": 255, "exited_at": 0, "reason": reason}
    return result


def read_exit_file(bundle: Path) -> dict | None:
    """The init's exit as the shim recorded it (`init.exit`, written atomically), or None."""
    try:
        record = json.loads((Path(bundle) / "init.exit").read_text())
        return {"pid": int(record["pid"]), "exit_status": int(record["exit_status"]),
                "exited_at": int(record["exited_at"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def process_alive(pid: int, marker: str) -> bool:
    """pid runs and its command line holds marker (guards against pid reuse)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    if not cmdline:  # a zombie
        return False
    return marker.encode() in cmdline


async def wait_exit(pid: int, timeout: float) -> bool:
    """Wait until pid has exited (it need not be our child); False on timeout. A pidfd turns
    readable at the exit itself, so this costs no polling."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:   # no pidfd (kernel older than 5.3): poll
        deadline = loop.time() + timeout
        while process_alive(pid, ""):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(True))
    try:
        await asyncio.wait_for(done, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def read_pid_file(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


_libc = None


def _umount(path: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {path}: {os.strerror(err)}")


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under path, deepest first (from mountinfo: a bind mount within one
    filesystem is invisible to os.path.ismount)."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if "\\" in point:   # octal escapes: \040 for a space, and so on
                point = point.encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def remove_bundle(bundle: Path) -> None:
    """Remove a bundle; whatever the shim left mounted in it is detached first, so rmtree never
    walks into a container's filesystem (or the host directory bound there)."""
    if not bundle.exists():
        return
    left = mounts_below(bundle)
    for _ in range(8):
        if not left:
            break
        for point in left:
            _umount(point)
        left = mounts_below(bundle)
    if left:
        raise OSError(errno.EBUSY, f"remove bundle {bundle}: {left[0]} is still mounted")
    shutil.rmtree(bundle, ignore_errors=True)
    try:
        bundle.parent.rmdir()   # the namespace directory, once empty
    except OSError:
        pass
