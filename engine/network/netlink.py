"""Every kernel call of the network layer that is not a namespace's own (netns.py): links,
addresses and routes through pyroute2's netlink, and the sysctls dockerd sets. No `ip`
process is run: a netlink message costs microseconds, a process milliseconds."""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Callable, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns

ENOENT_CODES = (19, 2)      # ENODEV, ENOENT: the link is gone already
# pyroute2 logs each socket's setup at debug level: noise in berthd's --debug log
logging.getLogger("pyroute2").setLevel(logging.WARNING)
T = TypeVar("T")


def _off_loop(fn: Callable[..., T]) -> Callable[..., T]:
    """pyroute2's synchronous API runs an event loop of its own, which cannot be done in a
    thread whose loop runs (berthd's): there the call is made in a short-lived thread."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        return netns.in_thread(lambda: fn(*args, **kwargs))
    return wrapper


def _host() -> IPRoute:
    return IPRoute()


@_off_loop
def host_routes(exclude_dev: str | None = None) -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations the host routes now (its main table), but those through
    exclude_dev, to pick a subnet that clashes with none."""
    out = []
    with _host() as ipr:
        skip = ipr.link_lookup(ifname=exclude_dev) if exclude_dev else []
        for r in ipr.get_routes(family=socket.AF_INET):
            if r.get_attr("RTA_OIF") in skip:
                continue
            dst = r.get_attr("RTA_DST")
            if dst:
                out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
    return out


@_off_loop
def link_exists(name: str) -> bool:
    with _host() as ipr:
        return bool(ipr.link_lookup(ifname=name))


@_off_loop
def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """The bridge `name`, up, with the gateway address (made if missing; kept if there)."""
    with _host() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            ipr.link("add", ifname=name, kind="bridge")
            found = ipr.link_lookup(ifname=name)
        idx = found[0]
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in ipr.get_addr(index=idx, family=socket.AF_INET)}
        if (gateway, prefixlen) not in have:
            net = ipaddress.IPv4Network(f"{gateway}/{prefixlen}", strict=False)
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen,
                     broadcast=str(net.broadcast_address))
        ipr.link("set", index=idx, state="up")


@_off_loop
def delete_link(name: str) -> None:
    with _host() as ipr:
        try:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("del", index=found[0])
        except NetlinkError as e:
            if e.code not in ENOENT_CODES:
                raise


@_off_loop
def release_link(name: str) -> None:
    """Off its bridge and down (3 ms, where a delete waits 15-30 ms for RCU): a veth whose
    namespace is going, for the kernel to delete with it, that must meanwhile carry no frame
    into the bridge."""
    with _host() as ipr:
        try:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("set", index=found[0], master=0, state="down")
        except NetlinkError as e:
            if e.code not in ENOENT_CODES:
                raise


@_off_loop
def add_veth(host_name: str, ns_path: Path, bridge: str, address: str, prefixlen: int,
             gateway: str | None, mac: str, ifname: str = "eth0") -> None:
    """A veth pair: `host_name` on the host, enslaved to the bridge and up; its peer made
    straight in the namespace as `ifname`, with the address, the MAC, and a default route via
    the gateway (none on an internal network, as dockerd)."""
    with _host() as ipr:
        ipr.link("add", ifname=host_name, kind="veth",
                 peer={"ifname": ifname, "net_ns_fd": str(ns_path), "address": mac})
        try:
            idx = ipr.link_lookup(ifname=host_name)[0]
            br = ipr.link_lookup(ifname=bridge)[0]
            ipr.link("set", index=idx, master=br, state="up")
        except BaseException:
            delete_link(host_name)
            raise

    def inside() -> None:
        with IPRoute() as ns:
            idx = ns.link_lookup(ifname=ifname)[0]
            ns.addr("add", index=idx, address=address, prefixlen=prefixlen)
            ns.link("set", index=idx, state="up")
            if gateway:
                ns.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)
    netns.run_in(ns_path, inside)


@_off_loop
def loopback_up(ns_path: Path) -> None:
    """lo up in the namespace (a runtime brings it up too; done here so that a namespace berthd
    made is usable before the container starts)."""
    def inside() -> None:
        with IPRoute() as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
    netns.run_in(ns_path, inside)


def set_sysctl(key: str, value: str) -> None:
    """A /proc/sys write (dockerd's ip_forward, the bridge's route_localnet), skipped when the
    value is already there."""
    path = Path("/proc/sys") / key.replace(".", "/")
    try:
        if path.read_text().strip() == value:
            return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(value)


def bridge_sysctl(bridge: str, key: str, value: str) -> None:
    set_sysctl(f"net.ipv4.conf.{bridge}.{key}", value)


def random_mac(address: str) -> str:
    """dockerd's generated MAC: 02:42 then the IPv4 address's four bytes (locally
    administered, unique per address in the network)."""
    parts = [int(x) for x in address.split(".")]
    return "02:42:" + ":".join(f"{b:02x}" for b in parts)


def veth_name() -> str:
    """"veth" and 7 hex digits, as dockerd names the host end."""
    return "veth" + os.urandom(4).hex()[:7]
