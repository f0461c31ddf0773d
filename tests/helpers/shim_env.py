"""Running a real berth-shim against a real runtime in tests: bundles, configs, and cleanup.

A ShimEnv is one private directory (short_tmp) holding the bundle, the shim's socket and the
runtime's state. Its rootfs is an overlay over the shared busybox template, mounted by the shim
from the CreateRequest's rootfs mounts (as the supervisor passes them), so every test also
checks that the shim mounts and unmounts it. teardown() leaves nothing behind even when the test
or the shim failed: it asks the shim to delete, then kills it and runs `berth-shim delete`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from shim.client import ShimClient
from shim.errors import ShimError

BIN = Path(sys.executable).parent
SHIM = str(BIN / "berth-shim")


def oci_config(args: list[str], *, cgroups_path: str, terminal: bool = False,
               memory: int | None = None, pid_ns: bool = True, env: list[str] | None = None,
               readonly: bool = False, console_size: tuple[int, int] | None = None) -> dict:
    """A config.json as `runc spec` writes it, with the process and limits a test needs.
    console_size: (height, width) for process.consoleSize."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    namespaces = [{"type": t} for t in ("network", "ipc", "uts", "mount")]
    if pid_ns:
        namespaces.insert(0, {"type": "pid"})
    resources: dict = {"devices": [{"allow": False, "access": "rwm"}]}
    if memory:
        resources["memory"] = {"limit": memory, "swap": memory}
    process: dict = {"consoleSize": {"height": console_size[0], "width": console_size[1]}} \
        if console_size else {}
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            **process,
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "shimtest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": resources,
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def exec_spec(args: list[str], *, terminal: bool = False) -> dict:
    return {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"], "cwd": "/"}


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state letter) of pid's children, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return out


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


class ShimEnv:
    def __init__(self, tmp: Path, template: Path, runtime: str) -> None:
        self.tmp = tmp
        self.template = template
        self.runtime = runtime
        self.id = f"bt-{uuid.uuid4().hex[:10]}"
        self.namespace = "shimtest"
        self.bundle = tmp / "b"
        self.bundle.mkdir()
        self.socket = str(tmp / "s.sock")
        self.runtime_root = str(tmp / "rt")
        self.cgroups_path = f"/{self.id}"
        (tmp / "upper").mkdir()
        (tmp / "work").mkdir()
        self.shim_pid = 0
        self.client: ShimClient | None = None

    @property
    def rootfs_mounts(self) -> list[dict]:
        return [{"type": "overlay", "source": "overlay", "options": [
            f"lowerdir={self.template}", f"upperdir={self.tmp / 'upper'}",
            f"workdir={self.tmp / 'work'}"]}]

    def write_config(self, args: list[str], **kw) -> dict:
        config = oci_config(args, cgroups_path=self.cgroups_path, **kw)
        (self.bundle / "config.json").write_text(json.dumps(config))
        return config

    def argv(self, verb: str) -> list[str]:
        argv = [SHIM, "--namespace", self.namespace, "--id", self.id, "--bundle",
                str(self.bundle), "--runtime", self.runtime, "--runtime-root", self.runtime_root]
        if verb == "start":
            argv += ["--socket", self.socket, "--debug"]
        return argv + [verb]

    def start_shim(self) -> ShimClient:
        out = subprocess.run(self.argv("start"), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"berth-shim start failed: {out.stderr}"
        assert out.stdout.strip() == self.socket
        self.shim_pid = int((self.bundle / "shim.pid").read_text())
        self.client = ShimClient(self.socket, timeout=60)
        return self.client

    def create(self, args: list[str], *, terminal: bool = False, stdin: str = "",
               stdout: str = "", stderr: str = "", mounts: bool = True, **config_kw) -> int:
        """Write config.json for args, start the shim if needed, create the container."""
        self.write_config(args, terminal=terminal, **config_kw)
        if self.client is None:
            self.start_shim()
        return self.client.create(self.id, str(self.bundle), terminal=terminal, stdin=stdin,
                                  stdout=stdout, stderr=stderr,
                                  rootfs=self.rootfs_mounts if mounts else ())

    def shim_alive(self) -> bool:
        return bool(self.shim_pid) and not wait_gone(self.shim_pid, 0)

    def teardown(self) -> None:
        """Leave nothing behind: container, shim, mounts, runtime state, cgroups."""
        if self.client is not None and self.shim_alive():
            try:
                c = ShimClient(self.socket, timeout=10)
                try:
                    c.kill(self.id, signal.SIGKILL, all=True)
                except ShimError:
                    pass
                try:
                    c.wait(self.id, timeout=10)
                except ShimError:
                    pass
                c.delete(self.id)
            except (ShimError, OSError):
                pass
            try:
                ShimClient(self.socket, timeout=5).shutdown(now=True)
            except (ShimError, OSError):
                pass
            if not wait_gone(self.shim_pid, 5):
                try:
                    os.kill(self.shim_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_gone(self.shim_pid, 5)
        if self.client is not None:
            self.client.close()
        subprocess.run(self.argv("delete"), capture_output=True, timeout=30)
        subprocess.run([self.runtime, "--root", self.runtime_root, "delete", "--force", self.id],
                       capture_output=True, timeout=30)
        rootfs = self.bundle / "rootfs"
        while os.path.ismount(rootfs):
            subprocess.run(["umount", "-l", str(rootfs)], capture_output=True)
        for controller in Path("/sys/fs/cgroup").iterdir():
            path = controller / self.id
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError:
                    pass
