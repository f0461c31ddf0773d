"""cgroup v2: the real cgroup2 mount this host has (/sys/fs/cgroup/unified: no resource
controllers but hugetlb, yet cgroup.procs, freeze, kill, events and device filters work), and
a recording fake tree for the v2 resource files this host cannot show."""
from __future__ import annotations

import errno
import json
import os
import signal
import time

import pytest

from lowrt.cgroups import fs, mounts
from lowrt.cgroups.fs import CgroupError
from lowrt.cgroups.v2 import V2Manager
from tests.helpers.lowrt_cgroups_proc import HeldChild, unique_name

UNIFIED = mounts.layout().unified
DENY_ALL = [{"allow": False, "access": "rwm"}]


def read(path):
    with open(path) as f:
        return f.read().strip()


# -- the real cgroup2 mount ------------------------------------------------------------

real = pytest.mark.skipif(UNIFIED is None or os.geteuid() != 0,
                          reason="needs root and a cgroup2 mount")


@pytest.fixture
def v2(request):
    """A manager on the real cgroup2 mount; restores the root's subtree_control (create()
    enables what the root offers, as runc does) and removes everything."""
    root = UNIFIED.mountpoint
    before = read(f"{root}/cgroup.subtree_control").split()
    made, children = [], []

    class Ctx:
        @staticmethod
        def manager():
            m = V2Manager(f"{root}/{unique_name('v2')}", root)
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
        assert not os.path.exists(m.path)
    for c in set(read(f"{root}/cgroup.subtree_control").split()) - set(before):
        try:
            fs.write(f"{root}/cgroup.subtree_control", f"-{c}")
        except CgroupError:
            pass  # another run's cgroup still uses it; it will restore it


@real
def test_real_v2_create_add_pids_and_destroy(v2):
    m = v2.manager()
    assert m.create() == []
    child = v2.child("sleep 30")
    m.add(child.pid)
    assert m.pids() == [child.pid]
    with open(f"/proc/{child.pid}/cgroup") as f:
        assert f"0::/{os.path.basename(m.path)}\n" in f.read()
    assert m.stats()["cgroup_version"] == 2
    m.destroy(kill=True)
    assert not os.path.exists(m.path)
    assert child.finish()[0] == -signal.SIGKILL


@real
def test_real_v2_freeze_waits_for_frozen_and_thaw_resumes(v2):
    m = v2.manager()
    m.create()
    child = v2.child("while :; do :; done")
    m.add(child.pid)
    child.release()
    m.freeze()
    assert m.frozen()
    assert fs.read_keyed(f"{m.path}/cgroup.events")["frozen"] == 1
    before = m.stats()["cpu_usage_ns"]
    time.sleep(0.2)
    assert m.stats()["cpu_usage_ns"] == before
    m.thaw()
    assert not m.frozen()
    time.sleep(0.2)
    assert m.stats()["cpu_usage_ns"] > before


@real
def test_real_v2_kill_all_uses_cgroup_kill_and_reaches_every_process(v2):
    m = v2.manager()
    m.create()
    child = v2.child("sleep 30 & sleep 30 & wait")
    m.add(child.pid)
    child.release()
    deadline = time.monotonic() + 10
    while len(m.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(m.pids()) == 3
    m.kill_all()
    assert m.wait_empty()
    assert child.finish()[0] == -signal.SIGKILL


@real
def test_real_v2_device_filter_is_attached_enforced_and_replaced(v2):
    from lowrt.linux import bpf
    m = v2.manager()
    m.create({"devices": DENY_ALL + [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                      "access": "r"}]})
    script = ("cat /dev/null && echo null-ok; true < /dev/kmsg && echo kmsg-ok; "
              "true < /dev/loop-control && echo loop-ok; true")
    child = v2.child(script)
    m.add(child.pid)
    child.release()
    assert child.finish()[1].split() == ["null-ok", "kmsg-ok"]

    m.update({"devices": DENY_ALL + [{"allow": True, "type": "c", "major": 10,
                                      "minor": 237, "access": "rw"}]})
    dfd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(dfd)
    child = v2.child(script)
    m.add(child.pid)
    child.release()
    rc, out, err = child.finish()
    assert out.split() == ["null-ok", "loop-ok"]
    assert "Operation not permitted" in err


@real
def test_real_v2_make_then_configure_and_destroy_takes_the_parents_it_made(v2):
    # lowrt makes the directories before it clones the container's process into them, and
    # sets the limits and the device filter afterwards (lowrt.lifecycle)
    from lowrt.linux import bpf
    root = UNIFIED.mountpoint
    top = f"{root}/{unique_name('v2made')}"
    m = V2Manager(f"{top}/mid/leaf", root)
    m.make({"devices": DENY_ALL})
    dfd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE) == []
        assert m.configure({"devices": DENY_ALL}) == []
        assert len(bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(dfd)
        m.destroy()
    assert not os.path.exists(top)


@real
def test_real_v2_bad_settings_are_refused_before_anything_is_made(v2):
    m = v2.manager()
    with pytest.raises(CgroupError, match="no slashes"):
        m.make({"unified": {"../x": "1"}})
    assert not os.path.exists(m.path)


@real
def test_real_v2_no_program_when_everything_is_allowed(v2):
    from lowrt.linux import bpf
    m = v2.manager()
    m.create({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3,
                           "access": "rwm"}]})
    dfd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE) == []
    finally:
        os.close(dfd)


@real
@pytest.mark.skipif(UNIFIED is None or "hugetlb" not in (
    fs.read_optional(f"{UNIFIED.mountpoint}/cgroup.controllers") or ""),
    reason="no hugetlb controller on the cgroup2 mount")
def test_real_v2_hugetlb_limit_is_written_and_reported(v2):
    m = v2.manager()
    m.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
    assert read(f"{m.path}/hugetlb.2MB.max") == str(4 << 21)
    m.update({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 21}]})
    assert read(f"{m.path}/hugetlb.2MB.max") == str(2 << 21)
    assert m.events_stats()["hugetlb"]["2MB"] == {"failcnt": 0}


@real
def test_real_v2_unified_keys_are_written_through(v2):
    m = v2.manager()
    m.create({"unified": {"cgroup.max.descendants": "3", "cgroup.max.depth": "2"}})
    assert read(f"{m.path}/cgroup.max.descendants") == "3"
    assert read(f"{m.path}/cgroup.max.depth") == "2"
    os.makedirs(f"{m.path}/a/b")
    with pytest.raises(OSError):
        os.mkdir(f"{m.path}/a/b/c")  # the kernel enforces the depth just set
    m.update({"unified": {"cgroup.max.descendants": "max"}})
    assert read(f"{m.path}/cgroup.max.descendants") == "max"


@real
@pytest.mark.skipif(UNIFIED is None or "memory" in (
    fs.read_optional(f"{UNIFIED.mountpoint}/cgroup.controllers") or ""),
    reason="the cgroup2 mount has a memory controller")
def test_real_v2_missing_controller_is_named_and_nothing_is_left(v2):
    m = v2.manager()
    with pytest.raises(CgroupError, match="the memory controller is not enabled"):
        m.create({"memory": {"limit": 1 << 26}})
    assert not os.path.exists(m.path)
    m.create()
    with pytest.raises(CgroupError, match="memory.events"):
        m.oom_fd()
    assert m.oom_kills() == 0


# -- a recording fake cgroup2 tree -----------------------------------------------------

LEAF_FILES = {
    "cgroup.procs": "", "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids",
    "memory.max": "max", "memory.swap.max": "max", "memory.low": "0", "memory.high": "max",
    "memory.current": "4096", "memory.peak": "8192", "memory.swap.current": "0",
    "memory.stat": "anon 4096\nfile 100\n",
    "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
    "cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
    "cpu.stat": "usage_usec 7\nuser_usec 3\nsystem_usec 4\nnr_periods 5\nnr_throttled 2\n"
                "throttled_usec 9\n",
    "io.weight": "default 100", "io.max": "", "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n",
    "pids.max": "max", "pids.current": "3", "cpuset.cpus": "", "cpuset.mems": "",
    "hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max",
}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """root/ with cgroup.controllers and subtree_control, and a pre-made leaf root/ctr/c1
    whose interface files exist; fs.write records (file, value) and replaces the content."""
    root = tmp_path / "cg"
    (root / "ctr" / "c1").mkdir(parents=True)
    for d in (root, root / "ctr"):
        (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
        (d / "cgroup.subtree_control").write_text("")
    for name, text in LEAF_FILES.items():
        (root / "ctr" / "c1" / name).write_text(text)
    writes = []

    def write(path, value):
        if not os.path.exists(path):
            raise CgroupError(f"open {path}: no such file or directory", errno.ENOENT)
        with open(path, "w") as f:
            f.write(value)
        writes.append((os.path.relpath(path, root), value))

    monkeypatch.setattr(fs, "write", write)
    device_rules = []
    monkeypatch.setattr(V2Manager, "_set_devices",
                        lambda self, rules: device_rules.append(rules))

    class Ctx:
        manager = V2Manager(str(root / "ctr" / "c1"), str(root))

        @staticmethod
        def writes_to(prefix="ctr/c1/"):
            return [(p[len(prefix):], v) for p, v in writes if p.startswith(prefix)]

    Ctx.all_writes = writes
    Ctx.device_rules = device_rules
    Ctx.root = root
    yield Ctx


def test_fake_create_enables_controllers_down_the_path_then_writes_in_runc_order(fake):
    notes = fake.manager.create({
        "devices": DENY_ALL,
        "memory": {"limit": 256 << 20, "swap": 512 << 20, "reservation": 128 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 22}],
        "unified": {"memory.high": "200000000"},
    })
    assert notes == []
    subtree = "+cpuset +cpu +io +memory +hugetlb +pids"
    assert fake.all_writes[:2] == [("cgroup.subtree_control", subtree),
                                   ("ctr/cgroup.subtree_control", subtree)]
    assert fake.writes_to() == [
        ("pids.max", "100"),
        ("memory.swap.max", str(256 << 20)),
        ("memory.max", str(256 << 20)),
        ("memory.low", str(128 << 20)),
        ("io.weight", "default 4950"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wiops=max"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("hugetlb.2MB.max", str(1 << 22)),
        ("memory.high", "200000000"),
    ]
    assert fake.device_rules == [DENY_ALL]


@pytest.mark.parametrize("memory, want", [
    ({"limit": 100 << 20, "swap": 100 << 20}, [("memory.swap.max", "0"),
                                                ("memory.max", str(100 << 20))]),
    ({"limit": 100 << 20, "swap": -1}, [("memory.swap.max", "max"),
                                         ("memory.max", str(100 << 20))]),
    ({"limit": -1}, [("memory.swap.max", "max"), ("memory.max", "max")]),
    ({"limit": 100 << 20}, [("memory.max", str(100 << 20))]),
    ({"reservation": 5 << 20}, [("memory.low", str(5 << 20))]),
])
def test_fake_memory_and_swap(fake, memory, want):
    fake.manager.update({"memory": memory})
    assert fake.writes_to() == want


def test_fake_notes_for_what_v2_cannot_do(fake):
    notes = fake.manager.update({
        "memory": {"swappiness": 60, "disableOOMKiller": True, "kernel": 1 << 20},
        "network": {"classID": 1}})
    assert fake.writes_to() == []
    assert len(notes) == 4
    assert any("swappiness" in n for n in notes) and any("OOM" in n for n in notes)
    assert any("net_cls" in n for n in notes) and any("kernel" in n for n in notes)


@pytest.mark.parametrize("resources, words", [
    ({"memory": {"swap": 1 << 20}}, "without a memory limit"),
    ({"memory": {"limit": 2 << 20, "swap": 1 << 20}}, ">= the memory limit"),
    ({"cpu": {"realtimeRuntime": 1000}}, "realtime"),
    ({"unified": {"../memory.max": "1"}}, "no slashes"),
    ({"unified": {"rdma.max": "x"}}, "the rdma controller is not enabled"),
    ({"cpu": {"shares": "many"}}, "cpu.shares: expected an integer"),
])
def test_fake_bad_resources_are_named(fake, resources, words):
    with pytest.raises(CgroupError, match=words):
        fake.manager.update(resources)


def test_fake_bfq_takes_blkio_weights_as_they_are(fake):
    (fake.root / "ctr" / "c1" / "io.bfq.weight").write_text("default 100")
    fake.manager.update({"blockIO": {"weight": 500, "weightDevice": [
        {"major": 8, "minor": 0, "weight": 300}]}})
    assert fake.writes_to() == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 300")]


def test_fake_update_touches_only_what_is_given(fake):
    fake.manager.update({"pids": {"limit": -1}, "cpu": {"period": 50000}})
    assert fake.writes_to() == [("pids.max", "max"), ("cpu.max", "max 50000")]
    assert fake.device_rules == []


def test_fake_oom_fd_is_an_inotify_watch_on_memory_events(fake):
    import select
    fd = fake.manager.oom_fd()
    try:
        assert select.select([fd], [], [], 0)[0] == []
        with open(fake.root / "ctr" / "c1" / "memory.events", "a") as f:
            f.write("oom_kill 2\n")
        assert select.select([fd], [], [], 2)[0] == [fd]
        assert len(os.read(fd, 4096)) >= 16  # one struct inotify_event
    finally:
        os.close(fd)


def test_fake_stats_read_v2_files(fake):
    st = fake.manager.stats()
    assert st["cgroup_version"] == 2
    assert (st["cpu_usage_ns"], st["cpu_user_ns"], st["cpu_system_ns"]) == (7000, 3000, 4000)
    assert (st["cpu_throttled_periods"], st["cpu_throttled_ns"]) == (2, 9000)
    assert st["cpu_percpu_ns"] == []
    assert (st["memory_usage"], st["memory_max_usage"]) == (4096, 8192)
    assert st["memory_limit"] == 2**64 - 1
    assert st["memory_stat"] == {"anon": 4096, "file": 100}
    assert (st["pids_current"], st["pids_limit"]) == (3, 0)
    assert (st["blkio_read_bytes"], st["blkio_write_bytes"]) == (10, 20)
    assert st["oom_kills"] == 1 == fake.manager.oom_kills()
    ev = fake.manager.events_stats()
    assert ev["memory"]["cache"] == 100
    assert ev["memory"]["usage"] == {"limit": 2**64 - 1, "usage": 4096, "max": 8192,
                                     "failcnt": 2}
    assert ev["cpu"]["throttling"] == {"periods": 5, "throttledPeriods": 2,
                                       "throttledTime": 9000}


# -- the container's process cloned into its cgroup (lowrt/spawn.py, lowrt/linux/clone.py) --

def _v2_line() -> str:
    with open("/proc/self/cgroup") as f:
        return next(line.strip() for line in f if line.startswith("0::"))


def _spawn_and_see(manager) -> dict:
    """spawn.start a process for manager's cgroup; what it saw: its cgroup2 line before any of
    lowrt's code ran in it (launch.preload is the child's first call) and once entered."""
    from lowrt import spawn

    launch = spawn.Launch()
    launch.cgroup = manager
    first: list[str] = []
    launch.preload = lambda: first.append(_v2_line())

    def stage(launch, chan):
        chan.send("seen", f"{int(launch.in_cgroup)} {first[0]} {_v2_line()}")
        os._exit(0)

    chan, pid = spawn.start(launch, stage)
    try:
        kind, payload = chan.recv()
    finally:
        chan.close()
        os.waitpid(pid, 0)
    assert kind == "seen", payload
    cloned, at_birth, entered = payload.split()
    return {"cloned": cloned == "1", "at_birth": at_birth, "entered": entered}


@real
def test_real_v2_child_is_cloned_into_its_cgroup_and_never_migrates(v2):
    m = v2.manager()
    m.create()
    want = "0::/" + os.path.relpath(m.path, UNIFIED.mountpoint)
    seen = _spawn_and_see(m)
    assert seen == {"cloned": True, "at_birth": want, "entered": want}


@real
def test_real_v2_clone3_refused_by_seccomp_falls_back_to_fork_and_migration(v2):
    # as under a container engine whose seccomp profile predates clone3 (ENOSYS for it)
    from lowrt import seccomp
    from lowrt.linux import prctl

    m = v2.manager()
    m.create()
    want = "0::/" + os.path.relpath(m.path, UNIFIED.mountpoint)
    program = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter stays in this throwaway process
        code = 1
        try:
            os.close(r)
            prctl.set_no_new_privs()
            seccomp.install(program)
            os.write(w, json.dumps(_spawn_and_see(m)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    seen = json.loads(out)
    assert seen["cloned"] is False and seen["at_birth"] != want and seen["entered"] == want
