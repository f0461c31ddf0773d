"""A private berth-supervisor for tests, OCI specs for busybox containers, and a cleanup that
leaves nothing behind (containers, shims, mounts, cgroups, files) even when a test failed.

Everything a private supervisor makes lives under one base directory (`/tmp/bt-*`): its socket,
its database (`state/`), bundles, shim sockets and runtime state (`root/`). Every shim and
runtime process carries that path on its command line, which is how cleanup finds them.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from supervisor.client import Client

VENV_BIN = Path(sys.executable).parent
SUPERVISOR = str(VENV_BIN / "berth-supervisor")
SHIM = str(VENV_BIN / "berth-shim")
START_TIMEOUT = 15.0


def runtime_binary(name: str) -> str:
    if name == "lowrt":
        return str(VENV_BIN / "lowrt")
    return shutil.which(name) or name


def busybox_spec(args: list[str], *, root: str = "rootfs", readonly: bool = False,
                 terminal: bool = False, env: list[str] | None = None,
                 tmpfs_tmp: bool = True, memory_limit: int | None = None) -> dict:
    """A spec like `runc spec`'s (namespaces, proc/dev/sys mounts, a few capabilities), for a
    busybox rootfs, with no cgroupsPath (the runtime then names the cgroup after the id)."""
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    if tmpfs_tmp:
        mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777"]})
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": root, "readonly": readonly},
        "hostname": "bt",
        "mounts": mounts,
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    if memory_limit is not None:
        spec["linux"]["resources"]["memory"] = {"limit": memory_limit, "swap": memory_limit}
    return spec


def process_spec(args: list[str], *, terminal: bool = False) -> dict:
    """An OCI Process for an exec."""
    return {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": list(args),
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
            "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True}


class SupervisorProcess:
    """One private berth-supervisor, started as a subprocess."""

    def __init__(self, base: Path, runtime: str = "runc", debug: bool = False):
        self.base = Path(base)
        self.runtime = runtime
        self.debug = debug
        self.socket = self.base / "sup.sock"
        self.address = f"unix://{self.socket}"
        self.state = self.base / "state"
        self.root = self.base / "root"
        self.log_path = self.base / "supervisor.log"
        self.proc: subprocess.Popen | None = None
        self._clients: list[Client] = []

    def start(self) -> "SupervisorProcess":
        argv = [SUPERVISOR, "--address", self.address, "--state", str(self.state),
                "--root", str(self.root), "--runtime", self.runtime]
        if self.debug:
            argv.append("--debug")
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        with Client(self.address) as probe:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"berth-supervisor exited {self.proc.returncode}:\n{self.log()}")
                try:
                    probe.version()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"berth-supervisor did not answer:\n{self.log()}") from None
                    time.sleep(0.02)
        return self

    def client(self, namespace: str = "default") -> Client:
        c = Client(self.address, namespace)
        self._clients.append(c)
        return c

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM and wait: the graceful stop (the shims keep running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def shim_pids(self) -> list[int]:
        """Every berth-shim process serving a bundle under this supervisor's root."""
        return [pid for pid, cmd in _processes_mentioning(str(self.root)) if "berth-shim" in cmd]

    def cleanup(self) -> None:
        """Stop the supervisor, then remove every container, shim, mount and file it made."""
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self.kill9()
        cleanup_root(self.root)
        shutil.rmtree(self.base, ignore_errors=True)


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    out = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd:
            out.append((int(entry), cmd.replace(b"\0", b" ").decode(errors="replace")))
    return out


def cleanup_root(root: Path) -> None:
    """Force-delete every container whose runtime state is under root, kill every shim and
    runtime process mentioning root, unmount what is mounted below it."""
    root = Path(root)
    runtime_dir = root / "runtime"
    if runtime_dir.is_dir():
        for rdir in runtime_dir.iterdir():
            binary = runtime_binary(rdir.name)
            for ns_dir in (p for p in rdir.iterdir() if p.is_dir()):
                for state in (p for p in ns_dir.iterdir() if p.is_dir()):
                    subprocess.run([binary, "--root", str(ns_dir), "delete", "--force", state.name],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    for _ in range(50):
        procs = _processes_mentioning(str(root))
        if not procs:
            break
        for pid, _cmd in procs:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    for point in sorted(_mounts_below(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


def clear_namespace(client: Client) -> None:
    """Kill and delete every task, then delete every container, in the client's namespace."""
    for task in client.list_tasks():
        cid = task["id"]
        try:
            if task["status"] not in ("stopped",):
                if task["status"] == "paused":
                    client.resume(cid)
                client.kill(cid, signal.SIGKILL, all=True)
                client.wait(cid)
        except Exception:
            pass
        try:
            client.delete_task(cid)
        except Exception:
            pass
    for c in client.list_containers():
        try:
            client.delete_container(c["id"])
        except Exception:
            pass


def caller_is_chrooted() -> bool:
    """Whether this process's root is other than its mount namespace's root (a chroot, as the
    fresh-root harness runs the suite in). setns into a mount namespace lands at the
    namespace's root, so a process that joins our own sees another /."""
    st = os.stat("/")
    out = subprocess.run(["nsenter", f"--mount=/proc/{os.getpid()}/ns/mnt", "stat", "-c",
                          "%d:%i", "/"], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() != f"{st.st_dev}:{st.st_ino}"


def read_file(path: Path, timeout: float = 5.0, want: bytes | None = None) -> bytes:
    """A file's content, waiting (up to timeout) until it holds want."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            data = b""
        if want is None or want in data or time.monotonic() > deadline:
            return data
        time.sleep(0.02)


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
