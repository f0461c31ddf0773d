"""Issue 2, done-when 1 and 2: hello-world through all four layers (CLI -> berthd ->
berth-supervisor -> berth-shim -> lowrt), from a process with its own pid, mount, uts, ipc and
network namespaces and its own cgroup, checked against the host's."""
from __future__ import annotations

import os
import re

import pytest

from tests.helpers import leaks

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net")


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def cgroup_v2(daemon) -> bool:
    return daemon.api("GET", "/info").json()["CgroupVersion"] == "2"


def check_greeting(out: str, daemon) -> None:
    # (the greeting's text, and the layers it names, are constants of the program: what
    # follows is what it saw, which can only be right if it ran in a container of its own)
    assert "Hello from berth!" in out
    assert re.search(r"^  pid:\s+1 \(the first process of its own pid namespace\)$", out, re.M)
    hostname = re.search(r"^  hostname:\s+([0-9a-f]{12}) ", out, re.M)
    assert hostname, out
    cgroup = re.search(r"^  cgroup:\s+(\S+)$", out, re.M).group(1)
    if cgroup_v2(daemon):
        assert cgroup == "0::/"          # a private cgroup namespace, docker's v2 default
    else:
        assert f"{daemon.cgroup_parent}/{hostname.group(1)}" in cgroup
    for name in NAMESPACES:
        seen = re.search(rf"^    {name}\s+({name}:\[\d+\])$", out, re.M)
        assert seen, f"no {name} namespace line in:\n{out}"
        assert seen.group(1) != host_ns(name), f"{name} namespace is the host's"


def test_berth_run_hello_world(daemon):
    p = daemon.berth("run", "--rm", "hello-world")
    assert p.returncode == 0, p.stderr
    check_greeting(p.stdout.decode(), daemon)


def test_docker_run_hello_world(daemon):
    before = daemon.container_ids()
    p = daemon.docker("run", "--rm", "hello-world")
    assert p.returncode == 0, p.stderr
    check_greeting(p.stdout.decode(), daemon)
    assert daemon.container_ids() == before      # --rm: the daemon removed it


def test_each_namespace_and_the_cgroup_are_the_containers_own(daemon):
    script = ("for n in pid mnt uts ipc net; do echo ns $n $(readlink /proc/self/ns/$n); done; "
              "echo host $(hostname); echo procs $(ls /proc | grep '^[0-9]' | sort -n | tr '\\n' ' '); "
              "echo links $(ls /sys/class/net); cat /proc/self/cgroup")
    p = daemon.berth("run", "--rm", "--name", "ns-proof", "busybox", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    seen = dict(re.findall(r"^ns (\w+) (\S+)$", out, re.M))
    assert set(seen) == set(NAMESPACES)
    for name in NAMESPACES:
        assert seen[name] != host_ns(name), f"{name}: {seen[name]} is the host's"
    # uts: its own hostname; pid: it sees only its own few processes, the first being 1;
    # net: its own, with the default bridge's eth0 beside lo
    assert re.search(r"^host [0-9a-f]{12}$", out, re.M)
    pids = [int(p) for p in re.search(r"^procs (.*)$", out, re.M).group(1).split()]
    assert pids[0] == 1 and len(pids) <= 6 and max(pids) < 100, pids
    assert re.search(r"^links eth0 lo$", out, re.M)
    cgroup_lines = [ln for ln in out.splitlines() if re.match(r"^\d+:", ln)]
    host_cgroups = open("/proc/self/cgroup").read()
    if cgroup_v2(daemon):
        assert cgroup_lines == ["0::/"]           # its own cgroup namespace
        return
    # in every v1 hierarchy mounted here, the container has a cgroup of its own under the
    # daemon's parent (a hierarchy mounted nowhere, as the kernel may keep one for a while after
    # another program's private mount of it, has nowhere to put one)
    inside = {frozenset(ln.split(":")[1].split(",")): ln.split(":", 2)[2] for ln in cgroup_lines}
    v1 = [options for _, _, options in leaks.cgroup_mounts() if options]
    assert v1
    for options in v1:
        path = next(p for controllers, p in inside.items()
                    if controllers and controllers <= options)
        assert path.startswith(f"{daemon.cgroup_parent}/"), (options, cgroup_lines)
        assert f":{path}" not in host_cgroups


@pytest.mark.parametrize("tool", ["berth", "docker"])
def test_memory_and_pids_limits_land_in_the_containers_cgroup(daemon, tool):
    name = f"limits-{tool}"
    run = daemon.berth if tool == "berth" else daemon.docker
    p = run("run", "-d", "--name", name, "-m", "48m", "--pids-limit", "7", "busybox",
            "sleep", "30")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.decode().strip()
    pid = daemon.api("GET", f"/containers/{cid}/json").json()["State"]["Pid"]
    assert pid > 0
    cgroups = dict(line.split(":", 2)[1:] for line in open(f"/proc/{pid}/cgroup").read().split())
    if "memory" in cgroups:           # cgroup v1
        mem = f"/sys/fs/cgroup/memory{cgroups['memory']}/memory.limit_in_bytes"
        pids = f"/sys/fs/cgroup/pids{cgroups['pids']}/pids.max"
    else:
        mem = f"/sys/fs/cgroup{cgroups['']}/memory.max"
        pids = f"/sys/fs/cgroup{cgroups['']}/pids.max"
    assert cid in mem
    assert open(mem).read().strip() == str(48 << 20)
    assert open(pids).read().strip() == "7"
    assert daemon.api("DELETE", f"/containers/{cid}?force=1").status == 204


def test_the_kernel_enforces_the_limits(daemon):
    # 64 MiB in one buffer under a 16 MiB limit (32 MiB with swap): the OOM killer ends it
    p = daemon.docker("run", "--name", "oom", "-m", "16m", "busybox", "dd", "if=/dev/zero",
                      "of=/dev/null", "bs=64M", "count=1")
    assert p.returncode == 137, p.stderr
    assert daemon.api("GET", "/containers/oom/json").json()["State"]["OOMKilled"] is True
    p = daemon.docker("run", "--rm", "--pids-limit", "4", "busybox", "sh", "-c",
                      "for i in 1 2 3 4 5 6; do sleep 1 & done; wait")
    assert b"can't fork" in p.stderr or b"Resource temporarily unavailable" in p.stderr, p.stderr
