"""A private containerd for the benchmarks that compare against it: config, root, state and
sockets under a temporary directory, CRI disabled, so nothing of a host's own containerd is used."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.helpers.full_v1_cgroups import (full_v1_cgroups,
                                            remove_cgroups_left_in_added_hierarchies)


def start_containerd(tmp: Path) -> tuple[subprocess.Popen, Path]:
    sock = tmp / "containerd.sock"
    config = tmp / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{tmp}/root"\n'
        f'state = "{tmp}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
        f'[ttrpc]\n  address = "{tmp}/containerd.sock.ttrpc"\n'
        '[metrics]\n  address = ""\n')
    log = open(tmp / "containerd.log", "wb")
    daemon = subprocess.Popen(full_v1_cgroups(["containerd", "--config", str(config)]),
                              stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 15
    while not sock.exists():
        if time.monotonic() > deadline or daemon.poll() is not None:
            raise RuntimeError(f"containerd did not start: {(tmp / 'containerd.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return daemon, sock


def stop_containerd(daemon: subprocess.Popen) -> None:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(15)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def remove_cgroup_parent(namespace: str) -> None:
    """ctr puts a namespace's containers under /<namespace> in every cgroup hierarchy, and
    containerd leaves that parent behind (where the host sees it, and where only containerd's
    mount namespace did)."""
    for ctl in Path("/sys/fs/cgroup").iterdir():
        parent = ctl / namespace
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError:
                pass
    remove_cgroups_left_in_added_hierarchies(namespace)
