"""Pure logic of the cgroups library, without root: conversions, mount and path resolution,
device rules as v1 lines and as an eBPF program, and the stats shapes."""
from __future__ import annotations

import itertools

import pytest

import lowrt.cgroups as cgroups
from lowrt.cgroups import devices, mounts, resources, stats
from lowrt.cgroups.fs import CgroupError
from tests.helpers.lowrt_cgroups_ebpf import disassemble, reference, run

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,freezer
"""
PURE_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_shares_to_weight_matches_runc():
    assert resources.shares_to_weight(0) == 0
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(1024) == 39
    assert resources.shares_to_weight(262144) == 10000


def test_blkio_weight_to_io_weight_matches_runc():
    assert resources.blkio_weight_to_io_weight(0) == 0
    assert resources.blkio_weight_to_io_weight(10) == 1
    assert resources.blkio_weight_to_io_weight(500) == 4950
    assert resources.blkio_weight_to_io_weight(1000) == 10000


@pytest.mark.parametrize("swap, memory, want", [
    (0, 0, 0), (-1, 100, -1), (0, -1, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0),
])
def test_swap_to_v2(swap, memory, want):
    assert resources.swap_to_v2(swap, memory) == want


@pytest.mark.parametrize("swap, memory, words", [
    (300, 0, "without a memory limit"), (300, -1, "without a memory limit"),
    (50, 100, ">= the memory limit"),
])
def test_swap_to_v2_refuses_nonsense(swap, memory, words):
    with pytest.raises(CgroupError, match=words):
        resources.swap_to_v2(swap, memory)


def test_cpu_max_pids_max_and_io_max_lines():
    assert resources.cpu_max(50000, 100000) == "50000 100000"
    assert resources.cpu_max(None, 50000) == "max 50000"
    assert resources.cpu_max(-1, None) == "max 100000"
    assert resources.cpu_max(20000, None) == "20000 100000"
    assert resources.pids_max(10) == "10"
    assert resources.pids_max(0) == "max"
    assert resources.pids_max(-1) == "max"
    assert resources.io_max_line(8, 0, "rbps", 1048576) == "8:0 rbps=1048576"
    assert resources.io_max_line(8, 16, "wiops", 0) == "8:16 wiops=max"
    assert resources.v2_limit(-1) == "max"


def test_throttle_entries_map_every_oci_list():
    bio = {k: [{"major": 8, "minor": 0, "rate": n}] for n, k in enumerate(
        ["throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
         "throttleWriteIOPSDevice"], start=1)}
    assert resources.throttle_entries(bio) == [
        ("blkio.throttle.read_bps_device", "rbps", 8, 0, 1),
        ("blkio.throttle.write_bps_device", "wbps", 8, 0, 2),
        ("blkio.throttle.read_iops_device", "riops", 8, 0, 3),
        ("blkio.throttle.write_iops_device", "wiops", 8, 0, 4)]
    with pytest.raises(CgroupError, match=r"throttleReadBpsDevice\[0\]"):
        resources.throttle_entries({"throttleReadBpsDevice": [{"major": 8, "rate": 1}]})


def test_page_sizes_are_named_as_the_kernel_names_them():
    assert resources.kb_to_pagesize(2048) == "2MB"
    assert resources.kb_to_pagesize(1048576) == "1GB"
    assert resources.kb_to_pagesize(64) == "64KB"


def test_bad_values_name_the_field():
    with pytest.raises(CgroupError, match=r"memory\.limit: expected an integer"):
        resources.get_int({"limit": "1G"}, "limit", "memory")
    with pytest.raises(CgroupError, match="pageSize"):
        resources.hugepage_limits({"hugepageLimits": [{"limit": 1}]})
    with pytest.raises(CgroupError, match="not offered by this kernel"):
        resources.hugepage_limits({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


def test_mountinfo_hybrid_layout():
    lay = mounts.parse_mountinfo(HYBRID)
    assert lay.version == 1
    assert lay.v1["cpu"] is lay.v1["cpuacct"]
    assert lay.v1["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert lay.v1["name=systemd"].mountpoint == "/sys/fs/cgroup/systemd"
    assert lay.v1["freezer"].mountpoint == "/mnt/with space"
    assert lay.unified.mountpoint == "/sys/fs/cgroup/unified"
    assert len(lay.v1_mounts()) == 5
    # a mount that shows only a subtree maps hierarchy paths below it
    assert lay.v1["pids"].dir_for("/docker/abc/x") == "/sys/fs/cgroup/pids/x"
    assert lay.v1["pids"].dir_for("/docker/abc") == "/sys/fs/cgroup/pids"
    assert lay.v1["memory"].dir_for("/") == "/sys/fs/cgroup/memory"


def test_mountinfo_pure_v2_layout():
    lay = mounts.parse_mountinfo(PURE_V2)
    assert lay.version == 2 and lay.v1 == {} and lay.unified.mountpoint == "/sys/fs/cgroup"


def test_proc_cgroup_parsing(tmp_path, monkeypatch):
    text = "12:cpu,cpuacct:/a\n1:name=systemd:/s\n0::/user.slice/x.scope\n"
    monkeypatch.setattr(mounts, "read", lambda path: text)
    assert mounts.proc_cgroups(1) == {"cpu": "/a", "cpuacct": "/a", "name=systemd": "/s",
                                      "": "/user.slice/x.scope"}


@pytest.mark.parametrize("path, want", [
    ("/docker/abc", "/docker/abc"), ("//a//b/", "/a/b"), ("/a/../../b", "/b"),
    ("a/b", "a/b"), ("../../etc/x", "etc/x"), ("a/./b/..", "a"), ("", ""),
])
def test_clean_path_keeps_relative_paths_from_climbing(path, want):
    assert mounts.clean_path(path) == want


@pytest.fixture
def fake_host(monkeypatch):
    def use(mountinfo, own):
        monkeypatch.setattr(cgroups, "layout", lambda: mounts.parse_mountinfo(mountinfo))
        monkeypatch.setattr(cgroups, "proc_cgroups", lambda pid="self": own)
    return use


def test_v1_paths_absolute_relative_and_default(fake_host):
    fake_host(HYBRID, {"cpu": "/rt", "cpuacct": "/rt", "memory": "/rt", "pids": "/docker/abc",
                       "name=systemd": "/"})
    m = cgroups.manager("/docker/c1", "c1")
    assert m.paths == {"cpu": "/sys/fs/cgroup/cpu,cpuacct/docker/c1",
                       "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/c1",
                       "memory": "/sys/fs/cgroup/memory/docker/c1",
                       "pids": "/sys/fs/cgroup/pids/docker/c1",
                       "name=systemd": "/sys/fs/cgroup/systemd/docker/c1",
                       "freezer": "/mnt/with space/docker/c1",
                       "": "/sys/fs/cgroup/unified/docker/c1"}
    m = cgroups.manager("../x", "c1")
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/rt/x"
    assert m.paths["pids"] == "/sys/fs/cgroup/pids/x"
    assert m.paths[""] == "/sys/fs/cgroup/unified/x"  # own cgroup2 path: "/" (absent)
    assert cgroups.manager(None, "c1").paths["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/rt/c1"
    for bad in ("/", ".", "/a/.."):
        with pytest.raises(CgroupError, match="root cgroup"):
            cgroups.manager(bad, "c1")


def test_v2_paths_go_under_the_parent_of_the_own_cgroup(fake_host):
    fake_host(PURE_V2, {"": "/user.slice/user-0.slice/session-1.scope"})
    assert cgroups.manager("/berth/c1", "c1").paths == {"": "/sys/fs/cgroup/berth/c1"}
    assert cgroups.manager("c1", "c1").paths == {
        "": "/sys/fs/cgroup/user.slice/user-0.slice/c1"}
    assert cgroups.manager(None, "c2").paths == {
        "": "/sys/fs/cgroup/user.slice/user-0.slice/c2"}
    m = cgroups.load({"": "/sys/fs/cgroup/x"})
    assert m.version == 2 and m.root == "/sys/fs/cgroup"


def test_systemd_paths_are_refused_by_name():
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        cgroups.manager("system.slice:docker:abc", "abc")


# -- devices --------------------------------------------------------------------------

RULE_KEYS = ("allow", "type", "major", "minor", "access")


def rules(*specs, defaults=False):
    return devices.parse_rules([dict(zip(RULE_KEYS, s, strict=True)) for s in specs],
                               defaults=defaults)


def test_device_rules_as_v1_lines():
    rs = rules((False, "a", None, None, "rwm"), (True, "c", 1, 3, "rw"),
               (False, "b", 8, None, "mwr"), (True, "a", None, None, "m"))
    assert devices.v1_writes(rs) == [
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rw"),
        ("devices.deny", "b 8:* rwm"),
        # "a" with less than everything would read as "everything" to the kernel
        ("devices.allow", "b *:* m"),
        ("devices.allow", "c *:* m"),
    ]


@pytest.mark.parametrize("entry, words", [
    ({"allow": True, "access": ""}, "access"),
    ({"allow": True, "access": "rwx"}, "access"),
    ({"allow": "yes", "access": "r"}, "allow"),
    ({"allow": True, "type": "p", "access": "r"}, "device type"),
    ({"allow": True, "major": "1", "access": "r"}, "major"),
])
def test_bad_device_rules_are_named(entry, words):
    with pytest.raises(CgroupError, match=words):
        devices.parse_rules([entry])


def test_device_filter_disassembles_to_the_expected_program():
    prog = devices.bpf_program(rules((False, "a", None, None, "rwm"),
                                     (True, "c", 1, 3, "rw"),
                                     (False, "c", 1, None, "w")))
    assert disassemble(prog) == [
        "r2 = *(u32 *)(r1 + 0)",
        "w2 &= 65535",
        "r3 = *(u32 *)(r1 + 0)",
        "w3 >>= 16",
        "r4 = *(u32 *)(r1 + 4)",
        "r5 = *(u32 *)(r1 + 8)",
        # last rule first: deny c 1:* w  (matches when any requested bit is w)
        "if r2 != 2 goto +6",
        "w1 = w3",
        "w1 &= 4",
        "if r1 == 0 goto +3",
        "if r4 != 1 goto +2",
        "w0 = 0",
        "exit",
        # allow c 1:3 rw  (matches when every requested bit is r or w)
        "if r2 != 2 goto +7",
        "w1 = w3",
        "w1 &= 6",
        "if r1 != r3 goto +4",
        "if r4 != 1 goto +3",
        "if r5 != 3 goto +2",
        "w0 = 1",
        "exit",
        # the deny-all reset is the default
        "w0 = 0",
        "exit",
    ]


RULE_SETS = [
    [],
    [(False, "a", None, None, "rwm")],
    [(False, "a", None, None, "rwm"), (True, "c", 1, 3, "rwm"), (True, "c", 136, None, "rw")],
    [(True, "c", 1, 3, "rwm"), (False, "c", 1, 3, "w"), (True, "b", None, None, "m")],
    [(False, "a", None, None, "rwm"), (True, "a", None, None, "r"), (False, "c", 5, 1, "rwm"),
     (True, "a", None, None, "rwm"), (False, "b", 8, 0, "rw"), (True, "b", 8, 0, "r")],
    [(False, "a", 1, None, "m"), (True, "c", None, 9, "wm")],
]
REQUESTS = list(itertools.product(
    ("b", "c"), (1, 5, 8, 136), (0, 1, 3, 9), ("r", "w", "m", "rw", "rwm", "wm")))


@pytest.mark.parametrize("specs", RULE_SETS)
@pytest.mark.parametrize("with_defaults", [False, True])
def test_device_filter_decides_as_the_rules_say(specs, with_defaults):
    rs = rules(*specs, defaults=with_defaults)
    prog = devices.bpf_program(rs)
    for dtype, major, minor, access in REQUESTS:
        access_type = devices.BPF_DEVCG_DEV[dtype] | sum(
            devices.BPF_DEVCG_ACC[c] for c in access) << 16
        got = run(prog, access_type, major, minor)
        assert got == int(reference(rs, dtype, major, minor, access)), (
            dtype, major, minor, access, rs)


def test_default_rules_follow_the_config_and_allow_the_standard_nodes():
    rs = devices.parse_rules([{"allow": False, "access": "rwm"}])
    prog = devices.bpf_program(rs)
    null = devices.BPF_DEVCG_DEV["c"] | (2 | 4) << 16
    assert run(prog, null, 1, 3) == 1         # /dev/null
    assert run(prog, null, 136, 7) == 1       # /dev/pts/7
    assert run(prog, null, 1, 11) == 0        # /dev/kmsg
    mknod_block = devices.BPF_DEVCG_DEV["b"] | 1 << 16
    assert run(prog, mknod_block, 8, 0) == 1  # mknod of anything
    assert run(prog, devices.BPF_DEVCG_DEV["b"] | 2 << 16, 8, 0) == 0


# -- stats shapes ---------------------------------------------------------------------

def test_shim_stats_sum_blkio_and_copy_fields():
    raw = stats.new_raw()
    raw["blkio"]["io_service_bytes_recursive"] = stats.parse_blkio_v1(
        "8:0 Read 100\n8:0 Write 7\n8:0 Total 107\n8:16 Read 5\nTotal 112\n")
    raw["cpu"].update(total=10, user=4, kernel=5, percpu=[6, 4])
    raw["memory"]["usage"].update(usage=50, limit=100, max=70)
    raw["memory"]["stat"] = {"rss": 1}
    raw["pids"].update(current=2, limit=9)
    raw["oom_kills"] = 3
    st = stats.to_shim(raw, 1)
    assert st["blkio_read_bytes"] == 105 and st["blkio_write_bytes"] == 7
    assert (st["cpu_usage_ns"], st["cpu_user_ns"], st["cpu_system_ns"]) == (10, 4, 5)
    assert st["cpu_percpu_ns"] == [6, 4]
    assert (st["memory_usage"], st["memory_limit"], st["memory_max_usage"]) == (50, 100, 70)
    assert st["memory_stat"] == {"rss": 1}
    assert (st["pids_current"], st["pids_limit"], st["oom_kills"]) == (2, 9, 3)
    assert st["cgroup_version"] == 1


def test_v2_io_stat_maps_to_v1_entries():
    blkio = stats.new_raw()["blkio"]
    stats.parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n", blkio)
    assert blkio["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 10},
        {"major": 8, "minor": 0, "op": "Write", "value": 20}]
    assert [e["value"] for e in blkio["io_serviced_recursive"]] == [1, 2]


def test_runc_events_shape_drops_empty_fields_as_go_does():
    raw = stats.new_raw()
    raw["memory"]["usage"].update(limit=100, usage=5)
    out = stats.to_runc(raw)
    assert out == {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                   "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                   "memory_pressure": 0, "sched_load_balance": 0,
                   "sched_relax_domain_level": 0},
        "memory": {"usage": {"limit": 100, "usage": 5, "failcnt": 0},
                   "swap": {"limit": 0, "failcnt": 0}, "kernel": {"limit": 0, "failcnt": 0},
                   "kernelTCP": {"limit": 0, "failcnt": 0}},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def test_cpuset_lists_parse():
    assert stats.parse_list("0-3,7,9-10\n") == [0, 1, 2, 3, 7, 9, 10]
    assert stats.parse_list("") == []
