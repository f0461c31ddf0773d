"""--blkio-weight as dockerd treats it (issue 8, item 1): applied where the kernel has a
proportional I/O scheduler's weight, and otherwise discarded with dockerd's warning, which the
docker CLI prints, and left out of `inspect`. The throttles are applied either way."""
from __future__ import annotations

import glob
import os

import pytest

WARNING = (b"Your kernel does not support Block I/O weight or the cgroup is not mounted. "
           b"Weight discarded.")


def _kernel_has_blkio_weight() -> bool:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "io" in open("/sys/fs/cgroup/cgroup.controllers").read().split()
    return bool(glob.glob("/sys/fs/cgroup/*/blkio.weight")
                + glob.glob("/sys/fs/cgroup/*/blkio.bfq.weight"))


def _blkio_weight(daemon, name: str) -> int:
    return daemon.api("GET", f"/containers/{name}/json").json()["HostConfig"]["BlkioWeight"]


def test_blkio_weight_is_discarded_with_dockerds_warning_on_a_kernel_without_one(daemon):
    p = daemon.docker("run", "--name", "bw", "--blkio-weight", "300", "busybox", "true")
    assert p.returncode == 0, p.stderr
    if _kernel_has_blkio_weight():
        assert WARNING not in p.stderr and _blkio_weight(daemon, "bw") == 300
        p = daemon.docker("run", "--rm", "--blkio-weight", "5", "busybox", "true")
        assert p.returncode == 125 and b"Range of blkio weight is from 10 to 1000" in p.stderr
        return
    assert WARNING in p.stderr
    assert _blkio_weight(daemon, "bw") == 0

    p = daemon.docker("run", "-d", "--name", "bw-up", "busybox", "sleep", "60")
    assert p.returncode == 0, p.stderr
    p = daemon.docker("update", "--blkio-weight", "500", "bw-up")
    assert p.returncode == 0 and WARNING in p.stdout + p.stderr, p.stderr   # (update: stdout)
    assert _blkio_weight(daemon, "bw-up") == 0


def test_create_reply_carries_the_warning(daemon):
    if _kernel_has_blkio_weight():
        pytest.skip("this kernel gives block I/O weights")
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"BlkioWeight": 300}}
    reply = daemon.api("POST", "/containers/create", body)
    assert reply.status == 201 and reply.json()["Warnings"] == [WARNING.decode()]
