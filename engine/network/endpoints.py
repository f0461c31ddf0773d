"""A container's endpoint settings (NetworkingConfig.EndpointsConfig at create, the
EndpointConfig of `network connect`): what berth applies (--network-alias, --ip on a user network
with a subnet of the user's, --link) checked with dockerd's words, what it cannot (--ip6,
--link-local-ip, --mac-address, --driver-opt) refused naming the flag. Pure logic."""
from __future__ import annotations

import ipaddress

from ..errors import InvalidParameter
from ..errors import Forbidden

PREDEFINED_MODES = ("bridge", "default", "host", "none")


def _cannot(flag: str, where: str, why: str) -> InvalidParameter:
    return InvalidParameter(f"berth cannot apply {flag} yet ({where}): {why}")


def check(net_name: str, ep: dict, user_network: bool) -> None:
    """One endpoint's settings; user_network: net_name is not a predefined network."""
    where = f"NetworkingConfig.EndpointsConfig[{net_name}]"
    ipam = ep.get("IPAMConfig") or {}
    for flag, value in (("--ip6", ipam.get("IPv6Address")),
                        ("--link-local-ip", ipam.get("LinkLocalIPs")),
                        ("--mac-address", ep.get("MacAddress")),
                        ("--driver-opt", ep.get("DriverOpts"))):
        if value:
            raise _cannot(flag, where, "berth's endpoints take an IPv4 address, aliases and "
                          "links only")
    v4 = ipam.get("IPv4Address")
    if v4:
        try:
            if ipaddress.ip_address(v4).version != 4:
                raise ValueError
        except ValueError:
            raise InvalidParameter(f"invalid IPv4 address: {v4}") from None
        if not user_network:
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
    if ep.get("Aliases") and not user_network:
        raise InvalidParameter("network-scoped alias is supported only for containers in user "
                               "defined networks")
    if ep.get("Links") and not user_network:
        raise InvalidParameter("links are supported only for containers in user defined "
                               "networks (on the default bridge, --link is HostConfig.Links)")


def from_create(mode: str, networking: dict | None) -> dict:
    """The EndpointsConfig a new container keeps, each endpoint checked."""
    configs = dict((networking or {}).get("EndpointsConfig") or {})
    out = {}
    for name, ep in configs.items():
        ep = dict(ep or {})
        if mode in ("host", "none") or mode.startswith("container:"):
            if any(ep.get(k) for k in ("Aliases", "IPAMConfig", "Links", "MacAddress")):
                raise InvalidParameter("conflicting options: networking settings (--ip, "
                                       "--network-alias, --link) and the network mode "
                                       f"{mode}")
            continue
        check(name, ep, name not in PREDEFINED_MODES)
        keep = {k: ep[k] for k in ("Aliases", "IPAMConfig", "Links") if ep.get(k)}
        out["bridge" if name == "default" else name] = keep
    return out


def check_connect(mode: str, net: dict, ep: dict) -> None:
    """`network connect`: dockerd's refusals for containers not on a bridge of their own."""
    if net["Name"] == "host" or mode == "host":
        raise Forbidden("container cannot be disconnected from host network or connected to "
                         "host network")
    if mode.startswith("container:"):
        raise Forbidden("container sharing network namespace with another container or host "
                         "cannot be connected to any other network")
    if net["Name"] == "none" or mode == "none":
        raise Forbidden("container cannot be connected to multiple networks with one of the "
                         "networks in private (none) mode")
    check(net["Name"], ep, not net.get("Predefined"))


def check_mode(hc: dict, config: dict, warnings: list[str]) -> None:
    """What a network mode rules out, with dockerd's words (runconfig's conflicts); published
    ports of a host-mode container are dropped with dockerd's warning."""
    mode = hc.get("NetworkMode") or "bridge"
    if mode.startswith("container:"):
        if not mode.partition(":")[2]:
            raise InvalidParameter("invalid container format container:<name|id>")
        for present, message in (
                (config.get("Hostname"), "conflicting options: hostname and the network mode"),
                (hc.get("Links"), "conflicting options: container type network can't be used "
                                  "with links. This would result in undefined behavior"),
                (hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions"),
                 "conflicting options: dns and the network mode"),
                (hc.get("ExtraHosts"), "conflicting options: custom host-to-IP mapping and the "
                                       "network mode"),
                (any(hc.get("PortBindings") or {}) or hc.get("PublishAllPorts"),
                 "conflicting options: port publishing and the container type network mode"),
                (config.get("ExposedPorts"), "conflicting options: port exposing and the "
                                             "container type network mode")):
            if present:
                raise InvalidParameter(message)
    if mode == "host":
        if hc.get("Links"):
            raise InvalidParameter("conflicting options: host type networking can't be used "
                                   "with links. This would result in undefined behavior")
        if any(hc.get("PortBindings") or {}) or hc.get("PublishAllPorts"):
            warnings.append("Published ports are discarded when using host network mode")
            hc["PortBindings"], hc["PublishAllPorts"] = {}, False
