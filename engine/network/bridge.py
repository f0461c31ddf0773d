"""One bridge network's kernel side: the bridge with its gateway address, the sysctls, and
its firewall rules; brought up when its first container starts, down when the network is
removed or berthd exits with nothing attached, so that nothing of it stays behind a berthd that
is gone. Its record (subnet, gateway, ...) lives on in the state file."""
from __future__ import annotations

import ipaddress

from . import firewall, netlink


def rules(net: dict) -> list[firewall.Rule]:
    return firewall.network_rules(net["Bridge"], net["Subnet"], bool(net.get("Internal")))


def up(net: dict) -> None:
    """Idempotent: each part made when it is missing."""
    prefix = ipaddress.IPv4Network(net["Subnet"]).prefixlen
    netlink.ensure_bridge(net["Bridge"], net["Gateway"], prefix)
    # as dockerd: forwarding on for the host, and the host's 127.0.0.1 may be DNATed out of
    # the bridge (a published port reached on the loopback)
    netlink.set_sysctl("net.ipv4.ip_forward", "1")
    netlink.bridge_sysctl(net["Bridge"], "route_localnet", "1")
    firewall.ensure_chains()
    wanted = rules(net)
    firewall.delete(wanted)          # never twice, whatever a crash left
    firewall.add(wanted)


def down(net: dict) -> None:
    firewall.delete_all(rules(net))
    netlink.delete_link(net["Bridge"])
    firewall.remove_chains_if_unused()
