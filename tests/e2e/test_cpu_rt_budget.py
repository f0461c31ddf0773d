"""berthd --cpu-rt-runtime (dockerd's daemon option): the containers' cgroup parent gets a
real-time budget, so that a container's --cpu-rt-runtime is applied; without the option the
kernel refuses the container's budget (the case cpu-rt-runtime of test_docker_run_flags.py).
Where the kernel has no RT group scheduling, or on cgroup v2, berthd refuses the option at
start with dockerd's words."""
from __future__ import annotations

import os

import pytest

from engine import sysinfo
from tests.helpers.engine_daemon import BerthDaemon

RT = (not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
      and sysinfo.cpu_realtime(False))


def _started(*args: str) -> BerthDaemon:
    d = BerthDaemon(extra_args=args)
    try:
        d.start(timeout=30)
    except RuntimeError:
        pass
    return d


@pytest.mark.skipif(not RT, reason="no cgroup v1 RT group scheduling (CONFIG_RT_GROUP_SCHED)")
def test_the_parent_gets_the_budget_and_a_container_its_share():
    d = _started("--cpu-rt-runtime", "95000")
    try:
        assert d.proc.poll() is None, d.log_tail()
        parent = f"/sys/fs/cgroup/cpu/{d.cgroup_parent.lstrip('/')}"
        with open(f"{parent}/cpu.rt_runtime_us") as f:
            assert f.read().strip() == "95000"
        # the kernel takes a container's budget only within its parent's
        p = d.docker("run", "--rm", "--cpu-rt-runtime", "10000", "busybox",
                     "cat", "/sys/fs/cgroup/cpu/cpu.rt_runtime_us")
        assert p.returncode == 0 and p.stdout == b"10000\n", p
        # a container's own --cgroup-parent gets the budget at its start, as under dockerd
        other = f"{d.cgroup_parent.lstrip('/')}-other"
        try:
            p = d.docker("run", "--rm", "--cgroup-parent", f"/{other}", "--cpu-rt-runtime",
                         "10000", "busybox", "cat", "/sys/fs/cgroup/cpu/cpu.rt_runtime_us")
            assert p.returncode == 0 and p.stdout == b"10000\n", p
        finally:
            for hierarchy in os.listdir("/sys/fs/cgroup"):
                if os.path.isdir(f"/sys/fs/cgroup/{hierarchy}/{other}"):
                    os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{other}")
    finally:
        d.cleanup()


@pytest.mark.skipif(not RT, reason="no cgroup v1 RT group scheduling (CONFIG_RT_GROUP_SCHED)")
def test_a_budget_the_kernel_refuses_stops_berthd_with_its_words():
    d = _started("--cpu-rt-period", "1000000", "--cpu-rt-runtime", "2000000")
    try:
        assert d.proc.wait(30) == 1
        assert "failed to init CPU RT controller: write /sys/fs/cgroup/cpu/" in d.log_tail()
        assert "cpu.rt_runtime_us: invalid argument" in d.log_tail()
    finally:
        d.cleanup()


@pytest.mark.skipif(RT, reason="this host has RT group scheduling")
def test_a_host_without_rt_group_scheduling_refuses_the_option():
    d = _started("--cpu-rt-runtime", "95000")
    try:
        assert d.proc.wait(30) == 1
        assert "daemon-scoped cpu-rt-period and cpu-rt-runtime are not" in d.log_tail()
    finally:
        d.cleanup()
