"""The network layer's kernel side, as root on the real kernel: a named netns made where
/run/netns does not exist yet (as on a fresh machine), a veth into it with its address and
route, a bridge brought up with its rules in berth's chains and down again leaving nothing."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from engine.network import bridge, firewall, netlink, netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def fresh_netns_dir(monkeypatch):
    """netns.NETNS_DIR pointed at a directory that does not exist yet, under /run."""
    path = Path(f"/run/bt-netns-{os.getpid()}")
    monkeypatch.setattr(netns, "NETNS_DIR", path)
    yield path
    for entry in path.glob("*"):
        netns.remove(entry.name)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
    path.rmdir()


def _mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def test_a_named_netns_is_made_where_no_netns_dir_exists_yet(fresh_netns_dir):
    assert not fresh_netns_dir.exists()
    path = netns.create("berth-test")
    assert path.parent == fresh_netns_dir
    # the directory is a shared mount (as iproute2 makes it), the namespace bound in it
    line = next(ln for ln in _mountinfo().splitlines() if ln.split()[4] == str(fresh_netns_dir))
    assert "shared:" in line
    assert str(path) in _mountinfo()
    inode = os.stat(path).st_ino
    assert inode != os.stat("/proc/self/ns/net").st_ino
    assert os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/thread-self/ns/net").st_ino
    assert netns.run_in(path, lambda: os.stat("/proc/thread-self/ns/net").st_ino) == inode
    netns.remove("berth-test")
    assert not path.exists() and str(path) not in _mountinfo()


def test_a_veth_pair_into_a_netns_on_a_bridge(fresh_netns_dir):
    br, veth = f"btk{os.getpid() % 100000}", f"vethk{os.getpid() % 10000}"
    path = netns.create("berth-test")
    try:
        netlink.ensure_bridge(br, "10.251.7.1", 24)
        netlink.add_veth(veth, path, br, "10.251.7.2", 24, "10.251.7.1",
                         netlink.random_mac("10.251.7.2"))
        inside = subprocess.run(["nsenter", f"--net={path}", "ip", "-4", "-o", "addr"],
                                capture_output=True, text=True, check=True).stdout
        assert "eth0" in inside and "inet 10.251.7.2/24" in inside
        route = subprocess.run(["nsenter", f"--net={path}", "ip", "route"],
                               capture_output=True, text=True, check=True).stdout
        assert "default via 10.251.7.1 dev eth0" in route
        # the host, at the gateway address, reached from inside
        with socket.socket() as listener:
            listener.bind(("10.251.7.1", 0))
            listener.listen()

            def connect() -> str:
                with socket.create_connection(listener.getsockname(), timeout=5) as s:
                    return s.getsockname()[0]
            assert netns.run_in(path, connect) == "10.251.7.2"
        assert netlink.link_exists(veth)
    finally:
        netlink.delete_link(veth)
        netlink.delete_link(br)
        netns.remove("berth-test")
    assert not netlink.link_exists(veth) and not netlink.link_exists(br)


def _rules() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True).stdout


def test_a_bridge_up_and_down_leaves_no_rule_or_chain_of_its_own():
    net = {"Bridge": f"btf{os.getpid() % 100000}", "Subnet": "10.251.8.0/24",
           "Gateway": "10.251.8.1", "Internal": False}
    others = any(ln.startswith("-A BERTH") for ln in _rules().splitlines())
    try:
        bridge.up(net)
        bridge.up(net)          # again: no rule twice
        text = _rules()
        assert text.count(f"-A BERTH-POSTROUTING -s 10.251.8.0/24 ! -o {net['Bridge']} "
                          f"-j MASQUERADE") == 1
        assert "-A FORWARD -j BERTH-FORWARD" in text
        assert Path(f"/proc/sys/net/ipv4/conf/{net['Bridge']}/route_localnet").read_text() \
            .strip() == "1"
        rules = firewall.port_rules(net["Bridge"], "tcp", "127.0.0.1", 1, "10.251.8.2", 80)
        firewall.add(rules)
        assert "--to-destination 10.251.8.2:80" in _rules()
        firewall.delete_all(rules)
    finally:
        bridge.down(net)
    text = _rules()
    assert net["Bridge"] not in text and not netlink.link_exists(net["Bridge"])
    if not others:      # another berthd's rules keep berth's chains; else they are gone
        assert "BERTH" not in text


def test_a_released_veth_goes_with_its_namespace(fresh_netns_dir):
    """What detach relies on: off the bridge, then the namespace unmounted, the kernel deletes
    the pair by itself, soon."""
    import time
    br, veth = f"btr{os.getpid() % 100000}", f"vethr{os.getpid() % 10000}"
    path = netns.create("berth-test")
    try:
        netlink.ensure_bridge(br, "10.251.9.1", 24)
        netlink.add_veth(veth, path, br, "10.251.9.2", 24, None, netlink.random_mac("10.251.9.2"))
        netlink.release_link(veth)
        assert not Path(f"/sys/class/net/{veth}/master").exists()
        netns.remove("berth-test")
        deadline = time.monotonic() + 5
        while netlink.link_exists(veth) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not netlink.link_exists(veth)
    finally:
        netlink.delete_link(veth)
        netlink.delete_link(br)
        netns.remove("berth-test")
