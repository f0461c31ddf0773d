"""The cgroups library on a pure cgroup v2 host, through the version-neutral API. Skipped on
hybrid/v1 hosts such as the CI machine; run on any cgroup v2 host (or in the v2 VM of
tests/helpers/lowrt_cgroups_v2vm.sh) to exercise memory, pids, cpu, io, hugetlb, freezer,
the device filter and OOM notification for real."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from lowrt import cgroups
from lowrt.cgroups import CgroupError
from tests.helpers.lowrt_cgroups_proc import HeldChild, unique_name

pytestmark = pytest.mark.skipif(cgroups.version() != 2 or os.geteuid() != 0,
                                reason="needs root on a pure cgroup v2 host")
DENY_ALL = [{"allow": False, "access": "rwm"}]


def read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def cg(request):
    made, children = [], []

    class Ctx:
        path = "/" + unique_name(request.node.name[5:20].strip("_-"))

        @staticmethod
        def manager(path=None, cid="unused"):
            m = cgroups.manager(path or Ctx.path, cid)
            made.append(m)
            return m

        @staticmethod
        def child(script):
            c = HeldChild(script)
            children.append(c)
            return c

    yield Ctx
    for c in children:
        c.kill()
    for m in reversed(made):
        m.destroy(kill=True)
        assert not os.path.exists(m.paths[""])


def test_v2_create_writes_converted_limits_and_add_joins(cg):
    m = cg.manager()
    notes = m.create({
        "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20,
                   "swappiness": 10},
        "pids": {"limit": 20},
        "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "devices": DENY_ALL,
    })
    assert any("swappiness" in n for n in notes)
    d = m.paths[""]
    assert d == f"/sys/fs/cgroup{cg.path}"
    assert {"memory", "pids", "cpu"} <= set(read("/sys/fs/cgroup/cgroup.subtree_control").split())
    assert read(f"{d}/memory.max") == str(64 << 20)
    if os.path.exists(f"{d}/memory.swap.max"):
        assert read(f"{d}/memory.swap.max") == str(32 << 20)
    assert read(f"{d}/memory.low") == str(16 << 20)
    assert read(f"{d}/pids.max") == "20"
    assert read(f"{d}/cpu.weight") == "39"
    assert read(f"{d}/cpu.max") == "20000 100000"
    assert read(f"{d}/cpuset.cpus") == "0"
    child = cg.child("sleep 30")
    m.add(child.pid)
    assert m.pids() == [child.pid]
    assert read(f"/proc/{child.pid}/cgroup") == f"0::{cg.path}"
    assert cgroups.manager_for_pid(child.pid).paths == m.paths
    st = m.stats()
    assert st["cgroup_version"] == 2 and st["memory_limit"] == 64 << 20
    assert (st["pids_current"], st["pids_limit"]) == (1, 20)
    assert "anon" in st["memory_stat"]
    ev = m.events_stats()
    assert ev["pids"] == {"current": 1, "limit": 20}
    assert ev["memory"]["usage"]["limit"] == 64 << 20


def test_v2_memory_limit_ooms_and_inotify_fd_reports_it(cg):
    m = cg.manager()
    m.create({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    fd = m.oom_fd()
    try:
        assert m.oom_kills() == 0
        child = cg.child(f"exec {sys.executable} -S -c 'b = bytearray(256 << 20)'")
        m.add(child.pid)
        child.release()
        assert child.finish()[0] == -signal.SIGKILL
        assert select.select([fd], [], [], 5)[0] == [fd]
        os.read(fd, 4096)
        assert m.oom_kills() >= 1 and m.stats()["oom_kills"] >= 1
    finally:
        os.close(fd)


def test_v2_pids_limit_makes_fork_fail(cg):
    m = cg.manager()
    m.create({"pids": {"limit": 4}})
    child = cg.child("for i in 1 2 3 4 5 6 7 8; do sleep 30 >/dev/null 2>&1 & done")
    m.add(child.pid)
    child.release()
    _, _, err = child.finish()  # the shell returns once every fork was tried
    st = m.stats()
    assert (st["pids_current"], st["pids_limit"]) == (3, 4)  # the shell itself has gone
    m.kill_all()
    assert "fork" in err.lower() or "resource temporarily unavailable" in err.lower()


def test_v2_cpu_quota_throttles(cg):
    m = cg.manager()
    m.create({"cpu": {"quota": 10000, "period": 20000}})
    child = cg.child("while :; do :; done")
    m.add(child.pid)
    child.release()
    time.sleep(0.5)
    st = m.stats()
    m.kill_all()
    assert st["cpu_throttled_periods"] > 0 and 0 < st["cpu_usage_ns"] < 0.5e9


def test_v2_freeze_thaw_and_kill(cg):
    m = cg.manager()
    m.create()
    child = cg.child("while :; do :; done")
    m.add(child.pid)
    child.release()
    m.freeze()
    assert m.frozen()
    before = m.stats()["cpu_usage_ns"]
    time.sleep(0.2)
    assert m.stats()["cpu_usage_ns"] == before
    m.thaw()
    assert not m.frozen()
    m.kill_all()  # cgroup.kill
    assert m.wait_empty()
    assert child.finish()[0] == -signal.SIGKILL


def test_v2_device_filter_is_enforced(cg):
    m = cg.manager()
    m.create({"devices": DENY_ALL + [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                      "access": "r"}]})
    child = cg.child("cat /dev/null && echo null-ok; true < /dev/kmsg && echo kmsg-ok; "
                     "true > /dev/kmsg || echo kmsg-write-denied")
    m.add(child.pid)
    child.release()
    _, out, err = child.finish()
    assert out.split() == ["null-ok", "kmsg-ok", "kmsg-write-denied"]


def test_v2_update_changes_live_limits(cg):
    m = cg.manager()
    m.create({"memory": {"limit": 64 << 20}, "pids": {"limit": 10}})
    m.update({"memory": {"limit": 128 << 20}, "pids": {"limit": -1},
              "cpu": {"shares": 2048}})
    d = m.paths[""]
    assert read(f"{d}/memory.max") == str(128 << 20)
    assert read(f"{d}/pids.max") == "max"
    assert read(f"{d}/cpu.weight") == "79"


def test_v2_io_throttle_on_a_loop_device(cg, short_tmp):
    image = short_tmp / "disk.img"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
    if dev.returncode != 0:
        pytest.skip(f"no loop device: {dev.stderr.strip()}")
    loop = dev.stdout.strip()
    try:
        st = os.stat(loop)
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        m = cg.manager()
        m.create({"blockIO": {"throttleReadBpsDevice": [
            {"major": major, "minor": minor, "rate": 4 << 20}]}})
        assert f"{major}:{minor} rbps={4 << 20}" in read(f"{m.paths['']}/io.max")
        child = cg.child(f"exec dd if={loop} of=/dev/null bs=64k count=32 iflag=direct")
        m.add(child.pid)
        start = time.monotonic()
        child.release()
        rc, _, err = child.finish()
        assert rc == 0, err
        assert time.monotonic() - start > 0.3
        assert m.stats()["blkio_read_bytes"] >= 2 << 20
        m.update({"blockIO": {"throttleReadBpsDevice": [
            {"major": major, "minor": minor, "rate": 0}]}})
        assert f"{major}:{minor}" not in read(f"{m.paths['']}/io.max")
    finally:
        subprocess.run(["losetup", "-d", loop])


def test_v2_hugetlb_limit(cg):
    m = cg.manager()
    m.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
    assert read(f"{m.paths['']}/hugetlb.2MB.max") == str(4 << 21)


def test_v2_relative_path_goes_under_the_parent_of_the_own_cgroup(cg):
    own = read("/proc/self/cgroup").split("::", 1)[1]
    name = cg.path.lstrip("/")
    m = cg.manager(name, name)
    m.create({"pids": {"limit": 5}})
    parent = os.path.dirname(own)
    assert m.paths[""] == os.path.normpath(f"/sys/fs/cgroup/{parent}/{name}")


def test_v2_no_internal_processes_gives_a_clear_error_and_leaves_nothing(cg):
    parent = cg.manager()
    parent.create()
    holder = cg.child("sleep 30")
    parent.add(holder.pid)
    inner = cgroups.manager(f"{cg.path}/inner", "x")
    with pytest.raises(CgroupError, match="memory controller is not enabled"):
        inner.create({"memory": {"limit": 64 << 20}})
    assert not os.path.exists(inner.paths[""])


def test_v2_events_stats_shape(cg):
    m = cg.manager()
    m.create({"memory": {"limit": 64 << 20}})
    out = m.events_stats()
    json.dumps(out)
    assert set(out) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                        "network_interfaces"}
    assert m.stats()["cpu_percpu_ns"] == []
