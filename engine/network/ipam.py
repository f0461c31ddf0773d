"""Address management, pure logic: which subnet a network gets, which address an endpoint
gets. The state (a network's allocations) is plain data kept in the network's record, which
manager.py persists, so a restarted berthd hands out no address twice."""
from __future__ import annotations

import ipaddress
from typing import Iterable

from ..errors import Conflict, InvalidParameter

Net = ipaddress.IPv4Network

# dockerd's default local address pools: 172.17-31.0.0/16, then 192.168.0.0/20 blocks
DEFAULT_POOLS: list[Net] = ([Net(f"172.{i}.0.0/16") for i in range(17, 32)]
                            + [Net(f"192.168.{i}.0/20") for i in range(0, 256, 16)])


def pick_subnet(taken: Iterable[Net], pools: Iterable[Net] = DEFAULT_POOLS) -> Net:
    """The first pool that overlaps none of the taken subnets (host routes, other networks)."""
    taken = list(taken)
    for pool in pools:
        if not any(pool.overlaps(t) for t in taken):
            return pool
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the "
                   "defaults to assign to the network")


def parse_subnet(text: str) -> Net:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid subnet {text}: not a CIDR address") from None
    if net.version != 4:
        raise InvalidParameter(f"berth cannot apply --subnet {text} yet: berth's networks are "
                               f"IPv4 only")
    if net.prefixlen > 30:
        raise InvalidParameter(f"invalid subnet {text}: too small for a gateway and an address")
    return net


def parse_address(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidParameter(f"invalid {what} {text}: not an IP address") from None
    if addr.version != 4:
        raise InvalidParameter(f"berth cannot apply {what} {text} yet: IPv4 only")
    return addr


def check_overlap(subnet: Net, others: dict[str, Net]) -> None:
    """dockerd's message for a subnet that overlaps another network's."""
    for name, other in others.items():
        if subnet.overlaps(other):
            raise Conflict(f"invalid pool request: Pool overlaps with other one on this address "
                           f"space (network {name} has {other})")


def default_gateway(subnet: Net) -> str:
    return str(subnet.network_address + 1)


def allocate(subnet: Net, ip_range: Net | None, gateway: str, used: Iterable[str],
             want: str | None = None, last: str | None = None) -> str:
    """An address of the subnet for an endpoint: `want` when it is free and in the subnet
    (dockerd's errors otherwise), else the first free one in ip_range (or the subnet) after
    `last`, the one handed out before, wrapping round: as dockerd's IPAM, an address (and the
    MAC made from it) is not given again at once, while the veth of the container that had it
    may still be going away."""
    used = set(used) | {gateway}
    if want:
        addr = parse_address(want, "IPv4 address")
        if addr not in subnet:
            raise InvalidParameter(f"invalid --ip {want}: no configured subnet contains IP "
                                   f"address {want}")
        if addr in (subnet.network_address, subnet.broadcast_address):
            raise InvalidParameter(f"invalid --ip {want}: it is the subnet's network or "
                                   f"broadcast address")
        if str(addr) in used:
            raise Conflict(f"Address already in use: {want}")
        return str(addr)
    pool = ip_range or subnet
    # integers, not pool.hosts(): a /16 has 65534 addresses, and a start waits on this
    first, end = int(pool.network_address) + 1, int(pool.broadcast_address) - 1
    if pool.prefixlen >= 31:
        first, end = int(pool.network_address), int(pool.broadcast_address)
    start = first
    if last and first <= int(ipaddress.IPv4Address(last)) < end:
        start = int(ipaddress.IPv4Address(last)) + 1
    size = end - first + 1
    for i in range(size):
        addr = ipaddress.IPv4Address(first + (start - first + i) % size)
        if str(addr) not in used and addr in subnet and addr != subnet.broadcast_address:
            return str(addr)
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {pool}")
