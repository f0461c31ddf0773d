"""The cgroups library against this host's real cgroup v1 hierarchies: files written, limits
enforced by the kernel, and nothing left behind."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from lowrt import cgroups
from lowrt.cgroups import CgroupError
from tests.helpers.lowrt_cgroups_proc import HeldChild, unique_name

pytestmark = pytest.mark.skipif(cgroups.version() != 1 or os.geteuid() != 0,
                                reason="needs root on a cgroup v1 host")

DENY_ALL = [{"allow": False, "access": "rwm"}]


@pytest.fixture
def cg(request):
    """A fresh absolute cgroup path and a list of managers/children to clean up."""
    made = []
    children = []

    class Ctx:
        path = "/" + unique_name(request.node.name[5:20].replace("[", "-").strip("_-"))

        @staticmethod
        def manager(path=None):
            m = cgroups.manager(path or Ctx.path, "unused")
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
    for m in made:
        m.destroy(kill=True)
        assert not any(os.path.exists(d) for d in m.paths.values()), m.paths


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_create_writes_limits_and_add_joins_every_hierarchy(cg):
    m = cg.manager()
    notes = m.create({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
        "pids": {"limit": 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0",
                "realtimePeriod": 1000000, "realtimeRuntime": 1000},
        "devices": DENY_ALL,
    })
    assert notes == []
    p = m.paths
    assert set(p) >= {"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer",
                      "blkio", "name=systemd"}
    assert read(f"{p['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert read(f"{p['memory']}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(f"{p['memory']}/memory.swappiness") == "10"
    assert read(f"{p['pids']}/pids.max") == "20"
    assert read(f"{p['cpu']}/cpu.shares") == "512"
    assert read(f"{p['cpu']}/cpu.cfs_quota_us") == "20000"
    assert read(f"{p['cpu']}/cpu.cfs_period_us") == "100000"
    assert read(f"{p['cpuset']}/cpuset.cpus") == "0"
    assert read(f"{p['cpu']}/cpu.rt_runtime_us") == "1000"
    devices_list = read(f"{p['devices']}/devices.list").splitlines()
    assert "c 1:3 rwm" in devices_list and "c 136:* rwm" in devices_list
    assert "a *:* rwm" not in devices_list

    child = cg.child("sleep 30")
    m.add(child.pid)
    assert m.pids() == [child.pid]
    own = cgroups.manager_for_pid(child.pid)
    assert own.paths == {k: v for k, v in p.items() if k in own.paths}
    with open(f"/proc/{child.pid}/cgroup") as f:
        lines = f.read()
    assert f"memory:{cg.path}" in lines and f"name=systemd:{cg.path}" in lines
    # hybrid host: the cgroup2 hierarchy is joined too, as runc does
    assert f"0::{cg.path}" in lines


def test_cpuset_is_filled_under_a_parent_another_start_made_and_has_not_filled_yet(cg):
    """Two containers starting at once: one has made the shared parent cgroup and not yet
    copied cpus and mems into it when the other makes its own cgroup below it."""
    parent = cg.manager()
    parent.create()
    for name in ("cpuset.cpus", "cpuset.mems"):
        with open(f"{parent.paths['cpuset']}/{name}", "w") as f:
            f.write("\n")
    inner = cg.manager(cg.path + "/inner")
    inner.create()
    assert read(f"{parent.paths['cpuset']}/cpuset.cpus") != ""
    assert read(f"{inner.paths['cpuset']}/cpuset.mems") != ""
    child = cg.child("sleep 30")
    inner.add(child.pid)
    assert inner.pids() == [child.pid]


def test_memory_limit_ooms_and_oom_fd_and_counter_report_it(cg):
    m = cg.manager()
    m.create({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    fd = m.oom_fd()
    try:
        assert m.oom_kills() == 0
        child = cg.child(f"exec {sys.executable} -S -c 'b = bytearray(256 << 20)'")
        m.add(child.pid)
        child.release()
        rc, _, _ = child.finish()
        assert rc == -signal.SIGKILL
        readable, _, _ = select.select([fd], [], [], 5)
        assert readable == [fd]
        assert int.from_bytes(os.read(fd, 4096), sys.byteorder) >= 1
        assert m.oom_kills() >= 1
        assert m.stats()["oom_kills"] >= 1
    finally:
        os.close(fd)


def test_pids_limit_makes_fork_fail(cg):
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


def test_cpu_quota_throttles_a_busy_loop(cg):
    m = cg.manager()
    m.create({"cpu": {"quota": 10000, "period": 10000 * 2}})
    child = cg.child("while :; do :; done")
    m.add(child.pid)
    child.release()
    time.sleep(0.5)
    st = m.stats()
    m.kill_all()
    assert st["cpu_throttled_periods"] > 0 and st["cpu_throttled_ns"] > 0
    assert 0 < st["cpu_usage_ns"] < 0.5e9
    assert st["cpu_user_ns"] + st["cpu_system_ns"] > 0


def test_freeze_stops_a_process_and_thaw_resumes_it(cg):
    m = cg.manager()
    m.create()
    child = cg.child("while :; do :; done")
    m.add(child.pid)
    child.release()
    m.freeze()
    assert m.frozen()
    time.sleep(0.05)
    state = read(f"/proc/{child.pid}/stat").rsplit(")", 1)[1].split()[0]
    assert state == "D"
    before = m.stats()["cpu_usage_ns"]
    time.sleep(0.2)
    assert m.stats()["cpu_usage_ns"] == before
    # A signal other than SIGKILL leaves a paused container paused.
    m.kill_all(signal.SIGTERM)
    assert m.frozen()
    m.thaw()
    assert not m.frozen()
    rc, _, _ = child.finish()
    assert rc == -signal.SIGTERM


def test_device_rules_deny_what_is_not_allowed(cg):
    m = cg.manager()
    m.create({"devices": DENY_ALL + [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                      "access": "r"}]})
    child = cg.child("cat /dev/null && echo null-ok; true < /dev/kmsg && echo kmsg-read-ok; "
                     "true > /dev/kmsg || echo kmsg-write-denied; "
                     "true < /dev/loop-control || echo loop-denied")
    m.add(child.pid)
    child.release()
    rc, out, err = child.finish()
    assert out.split() == ["null-ok", "kmsg-read-ok", "kmsg-write-denied", "loop-denied"]
    assert "Operation not permitted" in err


def test_update_changes_live_limits(cg):
    m = cg.manager()
    m.create({"memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 10}})
    child = cg.child("sleep 30")
    m.add(child.pid)
    m.update({"memory": {"limit": 128 << 20, "swap": 128 << 20}, "pids": {"limit": 0}})
    p = m.paths
    assert read(f"{p['memory']}/memory.limit_in_bytes") == str(128 << 20)
    assert read(f"{p['memory']}/memory.memsw.limit_in_bytes") == str(128 << 20)
    assert read(f"{p['pids']}/pids.max") == "max"
    m.update({"memory": {"limit": 48 << 20, "swap": 48 << 20}})  # shrinking: memory first
    assert read(f"{p['memory']}/memory.memsw.limit_in_bytes") == str(48 << 20)
    assert m.stats()["memory_limit"] == 48 << 20


@pytest.mark.parametrize("resources, words", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]}, "hugetlb"),
    ({"network": {"classID": 1048577}}, "net_cls"),
    ({"unified": {"memory.high": "1G"}}, "cgroup v1"),
    ({"memory": {"swappiness": 200}}, "swappiness"),
    ({"devices": [{"allow": False, "type": "x", "access": "rwm"}]}, "device type"),
])
def test_bad_or_unavailable_resources_fail_clearly_and_leave_nothing(cg, resources, words):
    m = cg.manager()
    with pytest.raises(CgroupError, match=words):
        m.create(resources)
    assert not any(os.path.exists(d) for d in m.paths.values())


def test_systemd_style_path_is_refused():
    with pytest.raises(CgroupError, match="systemd"):
        cgroups.manager("system.slice:docker:abc", "abc")


def test_relative_and_default_paths_resolve_under_own_cgroup(cg):
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            for c in ctrls.split(","):
                own[c] = path
    name = cg.path.lstrip("/")
    m = cg.manager(f"{name}/inner")
    m.create()
    assert m.paths["memory"] == os.path.normpath(
        f"/sys/fs/cgroup/memory{own['memory']}/{name}/inner")
    m.destroy()
    # the parent the relative path needed stays, as runc leaves it; remove it ourselves
    cg.manager(f"{name}").destroy()
    d = cgroups.manager(None, name)
    assert d.paths["pids"] == os.path.normpath(f"/sys/fs/cgroup/pids{own['pids']}/{name}")
    with pytest.raises(CgroupError, match="container id"):
        cgroups.manager("", "a/b")


def test_destroy_refuses_while_busy_then_kills_and_removes_subcgroups(cg):
    m = cg.manager()
    m.create()
    child = cg.child("sleep 30")
    m.add(child.pid)
    os.mkdir(f"{m.paths['memory']}/nested")
    with pytest.raises(CgroupError, match="still in it"):
        m.destroy()
    loaded = cgroups.load(m.paths)
    loaded.destroy(kill=True)
    assert not any(os.path.exists(d) for d in m.paths.values())
    rc, _, _ = child.finish()
    assert rc == -signal.SIGKILL


def test_stats_keys_are_the_shim_stats_response_fields(cg):
    pb2 = pytest.importorskip("protos.berth.shim.v1.shim_pb2")
    m = cg.manager()
    m.create({"memory": {"limit": 64 << 20}})
    child = cg.child("sleep 30")
    m.add(child.pid)
    st = m.stats()
    assert list(st) == [f.name for f in pb2.StatsResponse.DESCRIPTOR.fields]
    assert st["cgroup_version"] == 1
    assert st["memory_limit"] == 64 << 20
    assert st["pids_current"] == 1
    assert "rss" in st["memory_stat"] and "cache" in st["memory_stat"]
    assert len(st["cpu_percpu_ns"]) == os.cpu_count()
    pb2.StatsResponse(**st)  # every value has the field's type
    ev = m.events_stats()
    assert ev["memory"]["usage"]["limit"] == 64 << 20
    assert ev["pids"] == {"current": 1}
    assert set(ev) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                       "network_interfaces"}


def _shape(value):
    """The key structure of a JSON value (lists and numbers reduced to their kind)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return ["list"]
    return type(value).__name__ if value is not None else None


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_events_stats_has_the_shape_runc_prints(cg, short_tmp, busybox_rootfs):
    """runc itself runs a container in our cgroup path; `runc events --stats` and
    events_stats() on the same cgroup must have the same JSON structure and agree on values
    that do not move."""
    bundle = short_tmp / "b"
    bundle.mkdir()
    os.rename(busybox_rootfs, bundle / "rootfs")
    subprocess.run(["runc", "spec", "-b", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["sleep", "30"])
    config["linux"]["cgroupsPath"] = cg.path
    config["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 50})
    (bundle / "config.json").write_text(json.dumps(config))
    root = str(short_tmp / "r")
    cid = os.path.basename(cg.path)
    m = cg.manager()
    subprocess.run(["runc", "--root", root, "run", "-d", "-b", str(bundle), cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=30)
    try:
        out = subprocess.run(["runc", "--root", root, "events", "--stats", cid], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        theirs = json.loads(out)
        ours = m.events_stats()
    finally:
        subprocess.run(["runc", "--root", root, "delete", "-f", cid], timeout=30)
    assert theirs["type"] == "stats" and theirs["id"] == cid
    data = theirs["data"]
    # Fields that are zero on one side may be omitted by Go's omitempty: compare the
    # structure where both have a key, and require every non-empty runc section we know.
    assert set(data) == set(ours)
    for section in ("cpu", "memory", "pids", "cpuset", "blkio", "hugetlb"):
        assert set(_shape(data[section])) <= set(_shape(ours[section])) | {"cache"}, section
    assert _shape(data["memory"]["usage"]) == _shape(ours["memory"]["usage"])
    assert ours["memory"]["usage"]["limit"] == data["memory"]["usage"]["limit"] == 64 << 20
    assert ours["pids"] == data["pids"] == {"current": 1, "limit": 50}
    assert ours["cpuset"] == data["cpuset"]
    assert ours["cpu"] == data["cpu"]  # an idle container: its counters stand still
    assert _shape(ours["memory"]) == _shape(data["memory"])
    assert ours["network_interfaces"] == data["network_interfaces"] is None
    assert set(ours["memory"]["raw"]) == set(data["memory"]["raw"])


@pytest.fixture
def loop_device(short_tmp):
    """A loop device over a small file: a block device tests may read with O_DIRECT."""
    if shutil.which("losetup") is None:
        pytest.skip("no losetup")
    image = short_tmp / "disk.img"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                         text=True)
    if dev.returncode != 0:
        pytest.skip(f"cannot make a loop device: {dev.stderr.strip()}")
    path = dev.stdout.strip()
    try:
        yield path
    finally:
        subprocess.run(["losetup", "-d", path])


def test_blkio_throttle_is_enforced_counted_and_cleared(cg, loop_device):
    st = os.stat(loop_device)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    m = cg.manager()
    notes = m.create({"blockIO": {
        "leafWeight": 200,
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 4 << 20}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]}})
    d = m.paths["blkio"]
    assert notes == [] or "leafWeight" in notes[0]
    assert read(f"{d}/blkio.throttle.read_bps_device") == f"{major}:{minor} {4 << 20}"
    assert read(f"{d}/blkio.throttle.write_iops_device") == f"{major}:{minor} 100"
    child = cg.child(f"exec dd if={loop_device} of=/dev/null bs=64k count=32 iflag=direct")
    m.add(child.pid)
    start = time.monotonic()
    child.release()
    rc, _, err = child.finish()
    elapsed = time.monotonic() - start
    assert rc == 0, err
    assert elapsed > 0.3  # 2 MiB at 4 MiB/s; unthrottled it takes milliseconds
    assert m.stats()["blkio_read_bytes"] == 2 << 20
    m.update({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor,
                                                     "rate": 0}]}})
    assert read(f"{d}/blkio.throttle.read_bps_device") == ""


def _blkio_root() -> str:
    return next(d for d in (f"/sys/fs/cgroup/{n}" for n in os.listdir("/sys/fs/cgroup"))
                if os.path.exists(f"{d}/blkio.throttle.read_bps_device"))


def test_blkio_weight_is_applied_or_refused_clearly_on_a_kernel_without_cfq_or_bfq(cg):
    # Issue 8, item 1: kernels since 5.0 have no CFQ; one without BFQ has neither weight file
    root = _blkio_root()
    files = [f for f in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{root}/{f}")]
    m = cg.manager()
    if not files:
        with pytest.raises(CgroupError, match="neither blkio.weight nor blkio.bfq.weight"):
            m.create({"blockIO": {"weight": 300}})
        assert not any(os.path.exists(d) for d in m.paths.values())
        return
    m.create({"blockIO": {"weight": 300}})
    assert read(f"{m.paths['blkio']}/{files[0]}").split()[-1] == "300"
