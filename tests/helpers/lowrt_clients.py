"""Private containerd and dockerd instances that use lowrt as their runtime, for tests.

Each lives under its own short temporary directory, with its own sockets, state and runtime
root; stop() ends it and removes what it made on the host: its processes, mounts under its
directories, and the cgroup parents it created (containerd's /<namespace>, docker's /docker)
when they did not exist before and are empty.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.engine_daemon import DOCKER, daemon_env
from tests.helpers.full_v1_cgroups import (full_v1_cgroups,
                                            remove_cgroups_left_in_added_hierarchies)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_parent_dirs(name: str) -> set[Path]:
    found = set()
    if not CGROUP_ROOT.is_dir():
        return found
    for hierarchy in CGROUP_ROOT.iterdir():
        for base in [hierarchy, *hierarchy.glob("process_api/*")]:
            if (base / name).is_dir():
                found.add(base / name)
    return found


def _remove_cgroup_dirs(dirs: set[Path]) -> None:
    for d in sorted(dirs, key=lambda p: -len(p.parts)):
        for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass


def _unmount_under(top: Path) -> None:
    """Unmount everything mounted below top, deepest first (overlay, shm, netns, ...)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(str(top) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def _kill_tree_by_dir(top: Path) -> None:
    """Kill processes whose command line names top (shims and the like the daemon left)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if str(top).encode() in cmd:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


class PrivateContainerd:
    def __init__(self, namespace: str = "default") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bt-ctr-", dir="/tmp"))
        self.address = self.dir / "c.sock"
        self.namespace = namespace
        self._cgroups_before = _cgroup_parent_dirs(namespace)
        config = self.dir / "config.toml"
        config.write_text(f'''version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.address}"
[ttrpc]
  address = "{self.address}.ttrpc"
[debug]
  address = "{self.dir}/debug.sock"
''')
        self.log = self.dir / "containerd.log"
        self.proc = subprocess.Popen(full_v1_cgroups(["containerd", "--config", str(config)]),
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait_for(self.address, self.proc, self.log)

    def ctr(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        argv = ["ctr", "--address", str(self.address), "--namespace", self.namespace, *args]
        out = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.decode()}")
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _kill_tree_by_dir(self.dir)
        _unmount_under(self.dir)
        _remove_cgroup_dirs(_cgroup_parent_dirs(self.namespace) - self._cgroups_before)
        remove_cgroups_left_in_added_hierarchies(self.namespace)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateDockerd:
    """Debian's dockerd with lowrt added as the runtime "lowrt"; no bridge, no iptables."""

    def __init__(self, lowrt: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bt-dk-", dir="/tmp"))
        self.host = f"unix://{self.dir}/d.sock"
        self._cgroups_before = _cgroup_parent_dirs("docker")
        self.log = self.dir / "dockerd.log"
        self.proc = subprocess.Popen(full_v1_cgroups(
            ["dockerd", "--data-root", f"{self.dir}/data", "--exec-root", f"{self.dir}/exec",
             "-H", self.host, "--pidfile", f"{self.dir}/d.pid", "--iptables=false",
             "--ip-masq=false", "--bridge=none", "--add-runtime", f"lowrt={lowrt}"]),
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            env=daemon_env())
        _wait_for(self.dir / "d.sock", self.proc, self.log)
        self.env = dict(os.environ, DOCKER_HOST=self.host)

    def docker(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        argv = [DOCKER, *args]
        out = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.decode()}")
        return out

    def stop(self) -> None:
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *[i.decode() for i in ids], check=False)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _kill_tree_by_dir(self.dir)
        _unmount_under(self.dir)
        _remove_cgroup_dirs(_cgroup_parent_dirs("docker") - self._cgroups_before)
        remove_cgroups_left_in_added_hierarchies("docker")
        shutil.rmtree(self.dir, ignore_errors=True)
