"""What a container may do, set by docker run's flags: --privileged, --cap-add/--cap-drop, and the
loopback device of its network namespace, through the docker CLI against berthd."""
from __future__ import annotations

import os
import stat

import pytest


def own_status(field: str) -> str:
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith(field + ":"))


def cap_eff(daemon, *args: str) -> int:
    p = daemon.docker("run", "--rm", *args, "busybox", "grep", "CapEff", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    return int(p.stdout.split()[1], 16)


@pytest.mark.parametrize("runtime", ["lowrt", "runc"])
def test_privileged_gets_every_capability_berthd_has_and_the_hosts_devices(daemon, runtime):
    # every capability in berthd's bounding set (this host's lacks CAP_SYS_RESOURCE, which runc
    # would refuse), all devices allowed, the host's device nodes, nothing masked
    host_dev = next(f"/dev/{n}" for n in sorted(os.listdir("/dev"))
                    if stat.S_ISCHR(os.lstat(f"/dev/{n}").st_mode) and n not in
                    ("null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"))
    script = (f"grep CapEff /proc/self/status; test -c {host_dev} && echo dev-ok; "
              "mount | grep -c ' /sys .*(rw,'")
    p = daemon.docker("run", "--rm", "--privileged", "--runtime", runtime, "busybox",
                      "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split("\n")
    assert int(lines[0].split()[1], 16) == int(own_status("CapBnd"), 16)
    assert lines[1] == "dev-ok", (host_dev, p.stdout)
    assert lines[2] == "1", p.stdout   # sysfs is writable


def test_cap_add_and_cap_drop(daemon):
    default = cap_eff(daemon)
    net_admin, chown = 1 << 12, 1 << 0
    assert default & net_admin == 0 and default & chown
    assert cap_eff(daemon, "--cap-add", "NET_ADMIN", "--cap-drop", "chown") == \
        (default | net_admin) & ~chown
    assert cap_eff(daemon, "--cap-add", "ALL") == int(own_status("CapBnd"), 16)
    assert cap_eff(daemon, "--cap-drop", "ALL", "--cap-add", "CAP_KILL") == 1 << 5


def test_unknown_capability_is_refused_at_create_and_leaves_no_container(daemon):
    p = daemon.docker("run", "--rm", "--cap-add", "FOO", "busybox", "true")
    assert p.returncode == 125
    assert b'invalid CapAdd: unknown capability: "CAP_FOO"' in p.stderr
    p = daemon.docker("create", "--cap-drop", "nosuch", "busybox", "true")
    assert p.returncode != 0 and b'invalid CapDrop: unknown capability: "CAP_NOSUCH"' in p.stderr
    assert daemon.docker("ps", "-aq").stdout == b""


@pytest.mark.parametrize("network", ["default", "none"])
def test_loopback_is_up_in_the_containers_network_namespace(daemon, network):
    args = [] if network == "default" else ["--network", network]
    p = daemon.docker("run", "--rm", *args, "busybox", "cat", "/sys/class/net/lo/flags")
    assert p.returncode == 0, p.stderr
    assert int(p.stdout, 16) & 0x1, p.stdout   # IFF_UP
