"""The real peers' daemons (dockerd, containerd) of the tests and benchmarks run where every v1
hierarchy the kernel has is mounted (issue 8, item 6): a hierarchy that another program mounted
privately stays in the kernel, unmounted, while cgroups in it exist, and containerd's shim then
fails to load a container's cgroups. The host's mounts stay as they were."""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.helpers import leaks
from tests.helpers.full_v1_cgroups import (full_v1_cgroups,
                                           remove_cgroups_left_in_added_hierarchies)

CONTROLLER = "net_cls"


def _hierarchy(controller: str) -> str:
    with open("/proc/cgroups") as f:
        return next(line.split()[1] for line in f if line.split()[0] == controller)


def _mounted_controllers(mountinfo: str | None = None) -> set[str]:
    return {o for point, _, options in leaks.cgroup_mounts(mountinfo)
            if point.startswith("/sys/fs/cgroup/") for o in options}


@pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                    reason="a pure cgroup v2 host has no v1 hierarchies")
def test_peers_see_a_hierarchy_that_another_program_left_unmounted():
    if CONTROLLER in _mounted_controllers():
        pytest.skip(f"{CONTROLLER} is mounted on this host")
    if _hierarchy(CONTROLLER) == "0" and CONTROLLER in open(
            "/sys/fs/cgroup/unified/cgroup.subtree_control").read().split():
        pytest.skip(f"{CONTROLLER} is in use by cgroup v2")
    # another program's private mount, and a cgroup of its own left in it
    parent = "bt-peer-" + uuid.uuid4().hex[:8]
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f"mount -t tmpfs t /sys/fs/cgroup && mkdir /sys/fs/cgroup/x && "
                    f"mount -t cgroup -o {CONTROLLER} c /sys/fs/cgroup/x && "
                    f"mkdir /sys/fs/cgroup/x/{parent}"], check=True)
    try:
        assert _hierarchy(CONTROLLER) != "0"
        before = leaks.mounts()
        seen = subprocess.run(full_v1_cgroups(["cat", "/proc/self/mountinfo"]),
                              capture_output=True, text=True, timeout=30, check=True).stdout
        assert CONTROLLER in _mounted_controllers(seen)
        assert leaks.mounts() == before
    finally:
        remove_cgroups_left_in_added_hierarchies(parent)
    # gone where only a private mount reaches (the kernel lets the hierarchy go some minutes
    # later, once the cgroup has finished dying)
    subprocess.run(full_v1_cgroups(["test", "!", "-e", f"/sys/fs/cgroup/{CONTROLLER}/{parent}"]),
                   timeout=30, check=True)
