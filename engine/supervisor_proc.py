"""berthd's own berth-supervisor, started and watched as dockerd starts and watches containerd.

The supervisor runs in its own session with its output in `<exec-root>/supervisor.log`, so it
survives berthd's death (a SIGKILL of berthd leaves containers and their supervisor running).
Its pid is kept in `<exec-root>/supervisor.pid`: a restarted berthd adopts a live one instead of
starting a second. If it dies, berthd starts it again; the new one re-adopts the shims.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("berthd.supervisor")

READY_TIMEOUT = 30.0
WATCH_INTERVAL = 0.5


def supervisor_binary() -> str:
    venv_bin = os.path.dirname(sys.executable)
    found = shutil.which("berth-supervisor", path=os.pathsep.join(
        [venv_bin, os.environ.get("PATH", "")]))
    if not found:
        raise RuntimeError("cannot find the berth-supervisor program (is berth installed?)")
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _accepts(sock_path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(sock_path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ManagedSupervisor:
    def __init__(self, *, exec_root: Path, data_root: Path, runtime: str | None = None,
                 debug: bool = False):
        self.exec_root = Path(exec_root)
        self.sock = self.exec_root / "supervisor.sock"
        self.address = f"unix://{self.sock}"
        self.state = Path(data_root) / "supervisor"
        self.pidfile = self.exec_root / "supervisor.pid"
        self.logfile = self.exec_root / "supervisor.log"
        self.runtime = runtime
        self.debug = debug
        self.pid: int | None = None
        self._child: subprocess.Popen | None = None
        self._watcher: asyncio.Task | None = None
        self._stopping = False
        self.up = asyncio.Event()
        self.restarts = 0       # how many times it was started again after dying

    def argv(self) -> list[str]:
        argv = [supervisor_binary(), "--address", self.address, "--state", str(self.state),
                "--root", str(self.exec_root)]
        if self.runtime:
            argv += ["--runtime", self.runtime]
        if self.debug:
            argv.append("--debug")
        return argv

    def _adoptable(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid) and self.address in _cmdline(pid):
            return pid
        return None

    def _spawn(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        if self.sock.exists():
            self.sock.unlink()
        with open(self.logfile, "ab") as out:
            self._child = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=out, start_new_session=True, close_fds=True)
        self.pid = self._child.pid
        self.pidfile.write_text(f"{self.pid}\n")
        log.info("started berth-supervisor (pid %d) at %s", self.pid, self.address)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _accepts(self.sock):
            if not self._running():
                raise RuntimeError(f"berth-supervisor exited at start: see {self.logfile}: "
                                   f"{self._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"berth-supervisor did not listen on {self.sock} within "
                                   f"{READY_TIMEOUT:.0f}s: see {self.logfile}")
            await asyncio.sleep(0.02)

    def _log_tail(self) -> str:
        try:
            return self.logfile.read_text(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            return "(no output)"

    def _running(self) -> bool:
        if self._child is not None:
            return self._child.poll() is None
        return self.pid is not None and _alive(self.pid)

    async def start(self) -> None:
        pid = self._adoptable()
        if pid is not None:
            self.pid, self._child = pid, None
            log.info("adopted running berth-supervisor (pid %d) at %s", pid, self.address)
        else:
            self._spawn()
        await self._wait_ready()
        self.up.set()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._stopping or self._running():
                continue
            self.up.clear()
            log.error("berth-supervisor (pid %s) died; starting it again", self.pid)
            while not self._stopping:
                try:
                    self._spawn()
                    await self._wait_ready()
                    break
                except (OSError, RuntimeError) as e:
                    log.error("cannot restart berth-supervisor: %s", e)
                    await asyncio.sleep(1.0)
            self.restarts += 1
            self.up.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the supervisor (its shims and containers keep running), SIGKILL if it lingers."""
        self._stopping = True
        if self._watcher:
            self._watcher.cancel()
        if self.pid is None or not self._running():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while self._running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._running():
            log.warning("berth-supervisor (pid %d) ignored SIGTERM; killing it", self.pid)
            os.kill(self.pid, signal.SIGKILL)
            while self._running():
                await asyncio.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
