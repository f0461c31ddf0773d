"""The network API (`docker network create/ls/inspect/rm/prune/connect/disconnect`):
POST /networks/create, GET /networks, GET /networks/{id}, DELETE /networks/{id},
POST /networks/prune, POST /networks/{id}/connect and /disconnect, over engine/network, in the
shapes dockerd gives them."""
from __future__ import annotations

from aiohttp import web

from .. import body_types as bt, timefmt
from ..errors import InvalidParameter
from . import filters as list_filters
from .http import check_filter_keys, json_response, parse_filters, read_json

IPAM_CONFIG = bt.Struct("network.IPAMConfig", {
    "Subnet": bt.STRING, "IPRange": bt.STRING, "Gateway": bt.STRING,
    "AuxiliaryAddresses": bt.STRING_MAP})
CREATE_REQUEST = bt.Struct("network.CreateRequest", {
    "Name": bt.STRING, "CheckDuplicate": bt.BOOL, "Driver": bt.STRING, "Scope": bt.STRING,
    "EnableIPv4": bt.BOOL, "EnableIPv6": bt.BOOL, "Internal": bt.BOOL, "Attachable": bt.BOOL,
    "Ingress": bt.BOOL, "ConfigOnly": bt.BOOL,
    "ConfigFrom": bt.Struct("network.ConfigReference", {"Network": bt.STRING}),
    "IPAM": bt.Struct("network.IPAM", {"Driver": bt.STRING, "Options": bt.STRING_MAP,
                                       "Config": bt.Slice(IPAM_CONFIG)}),
    "Options": bt.STRING_MAP, "Labels": bt.STRING_MAP})
CONNECT_REQUEST = bt.Struct("network.ConnectOptions", {
    "Container": bt.STRING, "EndpointConfig": bt.ENDPOINT_SETTINGS})
DISCONNECT_REQUEST = bt.Struct("network.DisconnectOptions", {
    "Container": bt.STRING, "Force": bt.BOOL})


def _networks(request: web.Request):
    return request.app["daemon"].containers.networks


def _containers(request: web.Request):
    return request.app["daemon"].containers


def view(nets, net: dict, with_containers: bool) -> dict:
    """dockerd's network.Inspect."""
    ipam_config = []
    if net.get("Subnet"):
        conf = {"Subnet": net["Subnet"], "Gateway": net["Gateway"]}
        if net.get("IPRange"):
            conf["IPRange"] = net["IPRange"]
        ipam_config.append(conf)
    containers = {}
    if with_containers:
        for cid, ep in nets.endpoints(net["Id"]).items():
            containers[cid] = {"Name": ep["Name"].lstrip("/"), "EndpointID": ep["EndpointID"],
                               "MacAddress": ep["MacAddress"],
                               "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}",
                               "IPv6Address": ""}
    return {
        "Name": net["Name"], "Id": net["Id"], "Created": net["Created"], "Scope": "local",
        "Driver": net["Driver"], "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if net.get("Predefined") else {},
                 "Config": ipam_config},
        "Internal": bool(net.get("Internal")), "Attachable": bool(net.get("Attachable")),
        "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": dict(net.get("Options") or {}), "Labels": dict(net.get("Labels") or {}),
    }


async def create(request: web.Request) -> web.Response:
    body = bt.check(await read_json(request), CREATE_REQUEST)
    if body.get("EnableIPv4") is False:
        raise InvalidParameter("berth cannot apply --ipv4=false yet: its networks are IPv4")
    net, warning = _networks(request).create(body)
    return json_response({"Id": net["Id"], "Warning": warning}, 201)


def _matches(nets, net: dict, filters: dict[str, list[str]]) -> bool:
    if filters.get("name") and not any(n in net["Name"] for n in filters["name"]):
        return False
    if filters.get("id") and not any(net["Id"].startswith(i) for i in filters["id"]):
        return False
    if filters.get("driver") and net["Driver"] not in filters["driver"]:
        return False
    if filters.get("scope") and "local" not in filters["scope"]:
        return False
    kind = "builtin" if net.get("Predefined") else "custom"
    for t in filters.get("type", []):
        if t not in ("builtin", "custom"):
            raise InvalidParameter(f"invalid filter: 'type'='{t}'")
    if filters.get("type") and kind not in filters["type"]:
        return False
    if "dangling" in filters:
        dangling = list_filters.bool_filter(filters, "dangling", False)
        unused = not net.get("Predefined") and not nets.endpoints(net["Id"])
        if dangling != unused:
            return False
    return all(list_filters.label_matches(net.get("Labels") or {}, v)
               for v in filters.get("label", []))


FILTER_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")


async def list_networks(request: web.Request) -> web.Response:
    nets = _networks(request)
    filters = parse_filters(request)
    check_filter_keys(filters, FILTER_KEYS)
    found = [view(nets, n, False) for n in nets.networks.values() if _matches(nets, n, filters)]
    return json_response(found)


async def inspect(request: web.Request) -> web.Response:
    nets = _networks(request)
    return json_response(view(nets, nets.find(request.match_info["id"]), True))


async def remove(request: web.Request) -> web.Response:
    await _networks(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    """Every user network no container is on (labels and until filters as dockerd)."""
    nets = _networks(request)
    filters = parse_filters(request)
    check_filter_keys(filters, ("label", "label!", "until"))
    deleted = []
    for net in list(nets.networks.values()):
        if net.get("Predefined") or nets.endpoints(net["Id"]):
            continue
        labels = net.get("Labels") or {}
        if not all(list_filters.label_matches(labels, v) for v in filters.get("label", [])):
            continue
        if any(list_filters.label_matches(labels, v) for v in filters.get("label!", [])):
            continue
        if filters.get("until"):
            limit = min(list_filters.timestamp_ns(v) for v in filters["until"])
            if timefmt.parse_rfc3339(net["Created"]) >= limit:
                continue
        if any(net["Id"] in (c.record.get("EndpointsConfig") or {}) or net["Name"] in
               (c.record.get("EndpointsConfig") or {}) or
               (c.host_config.get("NetworkMode") in (net["Name"], net["Id"]))
               for c in _containers(request).all()):
            continue        # a stopped container would start on it (dockerd keeps it too)
        await nets.remove(net["Id"])
        deleted.append(net["Name"])
    return json_response({"NetworksDeleted": deleted or None})


async def connect(request: web.Request) -> web.Response:
    body = bt.check(await read_json(request), CONNECT_REQUEST)
    containers = _containers(request)
    c = containers.get(body.get("Container") or "")
    await containers.connect_network(c, request.match_info["id"],
                                     body.get("EndpointConfig") or {})
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = bt.check(await read_json(request), DISCONNECT_REQUEST)
    containers = _containers(request)
    c = containers.get(body.get("Container") or "")
    await containers.disconnect_network(c, request.match_info["id"], bool(body.get("Force")))
    return web.Response(status=200)


ROUTES = [
    ("POST", "/networks/create", create), ("GET", "/networks", list_networks),
    ("POST", "/networks/prune", prune), ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove), ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
