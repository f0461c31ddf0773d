"""The benchmarks' peers (dockerd, containerd) run where every v1 hierarchy the kernel offers
is mounted (issue 8, item 6), and the host's mounts stay as they were."""
from __future__ import annotations

import os
import subprocess

import pytest

from bench._cgroups import full_v1_cgroups
from tests.helpers import leaks


def _enabled_v1_controllers() -> set[str]:
    in_v2: set[str] = set()
    for point, _, options in leaks.cgroup_mounts():
        if not options:
            in_v2 |= set(open(f"{point}/cgroup.subtree_control").read().split())
    with open("/proc/cgroups") as f:
        rows = [line.split() for line in f if not line.startswith("#")]
    return {name for name, _, _, enabled in rows if enabled == "1"} - in_v2


@pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                    reason="a pure cgroup v2 host has no v1 hierarchies")
def test_bench_peers_see_every_v1_hierarchy_the_kernel_offers():
    before = leaks.mounts()
    argv = full_v1_cgroups(["cat", "/proc/self/mountinfo"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    mounted: set[str] = set()
    for line in out.splitlines():
        fields, _, tail = line.partition(" - ")
        kind, _, options = tail.split()[:3]
        if kind == "cgroup" and fields.split()[4].startswith("/sys/fs/cgroup/"):
            mounted |= set(options.split(","))
    assert _enabled_v1_controllers() <= mounted
    assert leaks.mounts() == before
