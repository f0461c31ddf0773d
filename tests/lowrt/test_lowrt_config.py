"""Each item of the OCI Linux config takes effect inside the container: read back by /probe
(tests/helpers/lowrt_probe.c) from the kernel's own answers."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers.lowrt_env import make_bundle, unique_id, write_config

CAP = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
       "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
       "CAP_SYS_RESOURCE": 24, "CAP_AUDIT_WRITE": 29}


def mask(*names: str) -> int:
    return sum(1 << CAP[n] for n in names)


def host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def mountinfo_line(seen: dict, point: str) -> str:
    return next(line for line in seen["mountinfo"].splitlines() if line.split()[4] == point)


def test_new_namespaces_of_every_default_kind(probe):
    seen = probe()
    assert seen["pid"] == 1
    for kind in ("pid", "mnt", "net", "uts", "ipc"):
        assert seen["ns"][kind] != host_ns(kind), kind
    for kind in ("user", "cgroup", "time"):  # not asked for: shared with the host
        assert seen["ns"][kind] == host_ns(kind), kind


def test_user_namespace_with_uid_and_gid_maps(probe, userns_ok):
    config = {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network", "user")],
              "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
              "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}]}
    seen = probe(linux=config)
    assert seen["ns"]["user"] != host_ns("user")
    assert seen["uid_map"].split() == ["0", "200000", "65536"]
    assert seen["gid_map"].split() == ["0", "300000", "65536"]
    assert seen["uid"] == 0 and seen["gid"] == 0


def test_cgroup_and_time_namespaces(probe):
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network", "cgroup", "time")]
    seen = probe("file:/proc/uptime", linux={"namespaces": namespaces,
                                             "timeOffsets": {"boottime": {"secs": 86400 * 400}}})
    assert seen["ns"]["cgroup"] != host_ns("cgroup")
    assert seen["ns"]["time"] != host_ns("time")
    # in its own cgroup namespace the container's cgroup is the root
    assert all(line.endswith(":/") for line in seen["cgroup"].splitlines())
    assert float(seen["file:/proc/uptime"].split()[0]) > 86400 * 400


def test_joining_a_namespace_by_path(rt, probe, bundle, cid, short_tmp):
    b = bundle(["sleep", "60"], name="holder")
    rt.run("run", "-d", "--bundle", str(b), "--pid-file", str(short_tmp / "holder.pid"), cid)
    holder = int((short_tmp / "holder.pid").read_text())
    net = f"/proc/{holder}/ns/net"
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc")] + [{"type": "network", "path": net}]
    seen = probe(linux={"namespaces": namespaces})
    assert seen["ns"]["net"] == os.readlink(net)
    assert seen["ns"]["uts"] != os.readlink(f"/proc/{holder}/ns/uts")


def test_loopback_of_a_new_network_namespace_is_up(probe):
    # runc sets lo up in each network namespace it makes; flags 0x9 = IFF_UP | IFF_LOOPBACK
    seen = probe("file:/sys/class/net/lo/flags")
    assert int(seen["file:/sys/class/net/lo/flags"], 16) & 0x1, seen["file:/sys/class/net/lo/flags"]


def test_hostname_and_domainname(probe):
    seen = probe(hostname="box-one", domainname="example.test")
    assert seen["hostname"] == "box-one" and seen["domainname"] == "example.test"


def test_process_identity_cwd_env_umask(probe):
    seen = probe(process={"user": {"uid": 1000, "gid": 1001, "additionalGids": [20, 30], "umask": 0o027},
                          "cwd": "/tmp/work", "env": ["PATH=/bin", "FOO=bar baz"]})
    assert (seen["uid"], seen["euid"], seen["gid"], seen["egid"]) == (1000, 1000, 1001, 1001)
    assert sorted(seen["groups"]) == [20, 30]
    assert seen["umask"] == 0o027
    assert seen["cwd"] == "/tmp/work"
    assert "FOO=bar baz" in seen["env"] and "HOME=/" in seen["env"]


def test_home_comes_from_the_containers_passwd(probe):
    seen = probe(process={"user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
    assert "HOME=/root" in seen["env"]


@pytest.mark.parametrize("env, home", [(["HOME=/override"], "/override"), (["HOME="], "/root"),
                                       (["HOME=/override", "HOME="], "/root")])
def test_home_set_empty_is_taken_from_passwd_too(probe, env, home):
    # as runc: an empty HOME counts as unset; the last of several settings is the one
    seen = probe(process={"user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin", *env]})
    assert [e for e in seen["env"] if e.startswith("HOME=")] == [f"HOME={home}"]


def test_capabilities_all_five_sets(probe):
    caps = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL"]}
    seen = probe(process={"capabilities": caps, "user": {"uid": 1000, "gid": 1000}})
    assert seen["cap_bounding"] == mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP")
    # a non-root user keeps across exec only what is ambient (and inheritable)
    assert seen["cap_ambient"] == mask("CAP_KILL")
    assert seen["cap_inheritable"] == mask("CAP_KILL", "CAP_NET_RAW")
    assert seen["cap_permitted"] == mask("CAP_KILL")
    assert seen["cap_effective"] == mask("CAP_KILL")


def test_root_gets_the_configured_sets(probe):
    caps = {s: ["CAP_CHOWN", "CAP_SYS_ADMIN"] for s in ("bounding", "effective", "permitted")}
    seen = probe(process={"capabilities": caps})
    assert seen["cap_effective"] == seen["cap_permitted"] == seen["cap_bounding"] == mask(
        "CAP_CHOWN", "CAP_SYS_ADMIN")
    assert seen["cap_inheritable"] == 0 and seen["cap_ambient"] == 0


def test_capability_missing_from_lowrts_bounding_set_is_dropped_with_a_warning(rt, probe):
    with open("/proc/self/status") as f:
        bounding = int(next(l for l in f if l.startswith("CapBnd:")).split()[1], 16)
    if bounding & mask("CAP_SYS_RESOURCE"):
        pytest.skip("this host's root has CAP_SYS_RESOURCE: nothing to drop")
    caps = {s: ["CAP_CHOWN", "CAP_SYS_RESOURCE"] for s in ("bounding", "effective", "permitted")}
    seen = probe(process={"capabilities": caps})
    assert seen["cap_effective"] == mask("CAP_CHOWN")
    warnings = [json.loads(line) for line in rt.log.read_text().splitlines()]
    assert any(w["level"] == "warning" and "CAP_SYS_RESOURCE" in w["msg"] for w in warnings)


def test_unknown_capability_is_an_error_naming_it(rt, bundle, cid):
    b = bundle(["true"], process={"capabilities": {"bounding": ["CAP_CHOWN", "CAP_FLY"]}})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"CAP_FLY" in out.stderr
    assert not (rt.root / cid).exists()


def test_no_new_privileges_on_and_off(probe):
    assert probe(process={"noNewPrivileges": True})["no_new_privs"] == 1
    assert probe(process={"noNewPrivileges": False})["no_new_privs"] == 0


def test_rlimits(probe):
    seen = probe(process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
                                      {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]})
    assert (seen["nofile_soft"], seen["nofile_hard"]) == (321, 654)
    assert seen["core_soft"] == -1


def test_oom_score_adj_raised(probe):
    assert probe(process={"oomScoreAdj": 500})["oom_score_adj"].strip() == "500"


def test_readonly_rootfs_and_writable_rootfs(probe, short_tmp, busybox_rootfs):
    seen = probe("write:/etc/passwd")
    assert seen["write:/etc/passwd"] == 30  # EROFS: the spec's root is read-only
    assert mountinfo_line(seen, "/").split()[5].startswith("ro")
    rw = probe("write:/etc/passwd", name="rw", root={"readonly": False})
    assert rw["write:/etc/passwd"] == 0


def test_masked_and_readonly_paths(probe):
    seen = probe("file:/proc/timer_list", "write:/proc/sys/kernel/domainname",
                 "write:/proc/sysrq-trigger")
    assert seen["file:/proc/timer_list"] == ""          # masked by /dev/null
    assert seen["write:/proc/sys/kernel/domainname"] == 30
    assert mountinfo_line(seen, "/proc/acpi").split()[5].startswith("ro")   # masked dir: ro tmpfs


def test_mounts_with_options_and_propagation(probe, short_tmp):
    host_dir = short_tmp / "shared-data"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("from the host")
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/data", "type": "bind", "source": str(host_dir), "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"]},
        {"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
        {"destination": "/etc/hello.txt", "type": "none", "source": str(host_dir / "hello.txt"),
         "options": ["bind"]},
    ]
    seen = probe("file:/data/hello.txt", "file:/etc/hello.txt", "write:/data/hello.txt",
                 "stat:/scratch", mounts=mounts, root={"readonly": False})
    assert seen["file:/data/hello.txt"] == "from the host"
    assert seen["file:/etc/hello.txt"] == "from the host"
    assert seen["write:/data/hello.txt"] == 30
    scratch = mountinfo_line(seen, "/scratch")
    assert {"nosuid", "nodev", "noexec"} <= set(scratch.split()[5].split(","))
    assert "size=1024k" in scratch and seen["stat:/scratch"]["mode"] & 0o7777 == 0o1777
    assert "shared:" in mountinfo_line(seen, "/shared")
    assert "shared:" not in mountinfo_line(seen, "/data")


def test_recursive_readonly_bind(probe, short_tmp):
    src = short_tmp / "tree"
    (src / "inner").mkdir(parents=True)
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              # a /dev of its own: without one lowrt makes the device nodes in the rootfs
              {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/tree", "type": "bind", "source": str(src), "options": ["rbind", "rro"]}]
    seen = probe(mounts=mounts)
    assert mountinfo_line(seen, "/tree").split()[5].startswith("ro")


def test_rootfs_propagation_shared(probe):
    seen = probe(linux={"rootfsPropagation": "shared"})
    assert "shared:" in mountinfo_line(seen, "/")


def test_default_devices_and_links(probe):
    seen = probe("stat:/dev/null", "stat:/dev/zero", "stat:/dev/full", "stat:/dev/random",
                 "stat:/dev/urandom", "stat:/dev/tty", "stat:/dev/ptmx", "stat:/dev/fd",
                 "stat:/dev/stdin", "stat:/dev/shm", "write:/dev/null")
    for name, (major, minor) in {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                                 "urandom": (1, 9), "tty": (5, 0)}.items():
        st = seen[f"stat:/dev/{name}"]
        assert (st["major"], st["minor"]) == (major, minor), name
        assert st["mode"] & 0o777 == 0o666
    for link in ("ptmx", "fd", "stdin"):
        assert seen[f"stat:/dev/{link}"]["mode"] & 0o170000 == 0o120000, link
    assert seen["write:/dev/null"] == 0


def test_config_devices_are_created_and_allowed(probe):
    devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
                "uid": 1000, "gid": 1000},
               {"path": "/dev/sub/kmsg", "type": "c", "major": 1, "minor": 11}]
    seen = probe("stat:/dev/fuse", "stat:/dev/sub/kmsg", linux={"devices": devices})
    fuse = seen["stat:/dev/fuse"]
    assert (fuse["major"], fuse["minor"], fuse["uid"], fuse["gid"]) == (10, 229, 1000, 1000)
    assert fuse["mode"] & 0o777 == 0o640
    assert seen["stat:/dev/sub/kmsg"]["major"] == 1


def test_config_device_gets_only_the_access_its_cgroup_rules_give(rt, probe_rootfs, short_tmp):
    # as runc: linux.devices makes the node, resources.devices alone says how it may be used
    b = short_tmp / "b"
    script = "exec 3>/dev/kmsg2 && echo write-ok; exec 4</dev/kmsg2 && echo read-ok"
    make_bundle(b, probe_rootfs, ["sh", "-c", script],
                linux={"devices": [{"path": "/dev/kmsg2", "type": "c", "major": 1, "minor": 11}],
                       "resources": {"devices": [
                           {"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]}})
    out = rt.run("run", "-b", str(b), unique_id(), check=False)
    assert out.stdout == b"write-ok\n" and b"Operation not permitted" in out.stderr, out


def test_device_cgroup_denies_what_is_not_allowed(rt, probe_rootfs, short_tmp):
    """The spec's resources deny everything; a node made by hand inside stays unusable."""
    b = short_tmp / "b"
    make_bundle(b, probe_rootfs, ["sh", "-c", "mknod /dev/mem2 c 1 1 && cat /dev/mem2 >/dev/null"],
                process={"capabilities": {s: ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
                                          for s in ("bounding", "effective", "permitted")}})
    out = rt.run("run", "-b", str(b), unique_id(), check=False)
    assert out.returncode != 0 and b"Operation not permitted" in out.stderr


def test_sysctls(probe):
    seen = probe("file:/proc/sys/net/ipv4/ip_forward", "file:/proc/sys/kernel/shmmax",
                 linux={"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}})
    assert seen["file:/proc/sys/net/ipv4/ip_forward"].strip() == "1"
    assert seen["file:/proc/sys/kernel/shmmax"].strip() == "123456789"


def test_sysctl_outside_a_namespace_is_refused(rt, bundle, cid):
    b = bundle(["true"], linux={"sysctl": {"vm.swappiness": "10"}})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"vm.swappiness" in out.stderr


def test_new_session_keyring_and_no_new_keyring(rt, probe_rootfs, short_tmp):
    b = short_tmp / "kr"
    make_bundle(b, probe_rootfs, ["/probe"])
    cid = unique_id()
    seen = json.loads(rt.run("run", "-b", str(b), cid).stdout)
    assert seen["session_keyring"].endswith(f";_ses.{cid}")
    other = unique_id()
    kept = json.loads(rt.run("run", "--no-new-keyring", "-b", str(b), other).stdout)
    assert not kept["session_keyring"].endswith(other)  # the caller's own session keyring


def test_no_pivot_chroots_instead(rt, probe_rootfs, short_tmp):
    b = short_tmp / "np"
    make_bundle(b, probe_rootfs, ["/probe", "file:/etc/passwd"])
    seen = json.loads(rt.run("run", "--no-pivot", "-b", str(b), unique_id()).stdout)
    assert seen["file:/etc/passwd"].startswith("root:x:0:0")
    assert seen["pid"] == 1


def test_lowering_oom_score_adj_without_cap_sys_resource_warns(rt, probe):
    with open("/proc/self/status") as f:
        bounding = int(next(l for l in f if l.startswith("CapBnd:")).split()[1], 16)
    if bounding & (1 << 24):
        pytest.skip("this host's root may lower oom_score_adj")
    current = int(open("/proc/self/oom_score_adj").read())
    seen = probe(process={"oomScoreAdj": current - 100})
    assert int(seen["oom_score_adj"]) == current
    assert any("oomScoreAdj" in json.loads(line)["msg"] for line in rt.log.read_text().splitlines())


def test_features_describes_lowrt_and_its_capability_policy():
    out = subprocess.run([os.path.join(os.path.dirname(__import__("sys").executable), "lowrt"),
                          "features"], capture_output=True, text=True, check=True)
    features = json.loads(out.stdout)
    assert "createRuntime" in features["hooks"] and "rro" in features["mountOptions"]
    assert {"pid", "mount", "user", "cgroup", "network"} <= set(features["linux"]["namespaces"])
    assert features["linux"]["seccomp"]["enabled"] is True
    assert features["annotations"]["org.lowrt.capabilities.policy"] == "drop-unavailable-with-warning"


def test_personality_linux32(rt, bundle, cid):
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 is checked on x86_64")
    b = bundle(["uname", "-m"], linux={"personality": {"domain": "LINUX32"}})
    assert rt.run("run", "-b", str(b), cid).stdout.strip() == b"i686"


def test_apparmor_profile_on_a_host_without_apparmor_warns(rt, bundle, cid):
    if os.path.exists("/sys/module/apparmor/parameters/enabled"):
        pytest.skip("this host has AppArmor")
    b = bundle(["true"], process={"apparmorProfile": "docker-default"})
    assert rt.run("run", "-b", str(b), cid).returncode == 0
    assert any("apparmor" in json.loads(line)["msg"] for line in rt.log.read_text().splitlines())


def test_selinux_label_without_selinux_is_an_error(rt, bundle, cid):
    b = bundle(["true"], process={"selinuxLabel": "system_u:system_r:container_t:s0"})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"selinux" in out.stderr and not (rt.root / cid).exists()


def test_tmpfs_keeps_the_mode_of_the_directory_it_covers_unless_told(rt, busybox_rootfs, short_tmp):
    # as runc: without mode= the tmpfs takes its mountpoint's mode, set bits included
    (busybox_rootfs / "tmp").chmod(0o7777)
    (busybox_rootfs / "given").mkdir(mode=0o755)
    b = short_tmp / "b"
    config = make_bundle(b, busybox_rootfs, ["stat", "-c", "%a", "/tmp", "/given"])
    config["mounts"] += [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {"destination": "/given", "type": "tmpfs", "source": "tmpfs", "options": ["mode=0444"]}]
    write_config(b, config)
    out = rt.run("run", "-b", str(b), unique_id())
    assert out.stdout.split() == [b"7777", b"444"]
