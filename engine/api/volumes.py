"""The volume API (`docker volume create/ls/inspect/rm/prune`): POST /volumes/create,
GET /volumes, GET /volumes/{name}, DELETE /volumes/{name}, POST /volumes/prune, over
engine/volumes (the local driver)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .. import disk_usage
from ..errors import EngineError, InvalidParameter
from ..version import api_at_least
from . import filters as list_filters
from .http import check_filter_keys, json_response, parse_filters, query_bool, read_json

log = logging.getLogger("berthd.api")

CREATE_FIELDS = ("Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec")


def _volumes(request: web.Request):
    return request.app["daemon"].containers.volumes


def _string_map(body: dict, key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"invalid JSON: {key}: want an object of strings")
    return value


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    for key in ("Name", "Driver"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise InvalidParameter(f"invalid JSON: {key}: want a string")
    if body.get("ClusterVolumeSpec"):
        raise InvalidParameter("berth cannot create cluster volumes (ClusterVolumeSpec): "
                               "berthd is no swarm node")
    volume, _ = _volumes(request).create(body.get("Name") or "", body.get("Driver") or "",
                                         _string_map(body, "DriverOpts"),
                                         _string_map(body, "Labels"))
    return json_response(volume.view(), 201)


def _matches(volume, filters: dict[str, list[str]]) -> bool:
    if "dangling" in filters:
        dangling = list_filters.bool_filter(filters, "dangling", False)
        if dangling != (not volume.users):
            return False
    if filters.get("driver") and "local" not in filters["driver"]:
        return False
    if filters.get("name") and not any(n in volume.name for n in filters["name"]):
        return False
    if not all(list_filters.label_matches(volume.labels, v) for v in filters.get("label", [])):
        return False
    return True


async def list_volumes(request: web.Request) -> web.Response:
    filters = parse_filters(request)
    check_filter_keys(filters, ("dangling", "driver", "label", "name"))
    if "dangling" in filters:
        list_filters.bool_filter(filters, "dangling", False)    # a bad value: 400
    found = [v.view() for v in _volumes(request).all() if _matches(v, filters)]
    return json_response({"Volumes": found, "Warnings": []})


async def inspect(request: web.Request) -> web.Response:
    return json_response(_volumes(request).get(request.match_info["name"]).view())


async def remove(request: web.Request) -> web.Response:
    _volumes(request).remove(request.match_info["name"],
                             force=query_bool(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    """Every volume no container uses; from API 1.42 only the anonymous ones unless
    all=true, as dockerd. SpaceReclaimed: each volume's bytes, measured before it goes."""
    volumes = _volumes(request)
    filters = parse_filters(request)
    check_filter_keys(filters, ("label", "label!", "all"))
    everything = list_filters.bool_filter(filters, "all", False)
    if not api_at_least(request["api_version"], "1.42"):
        if "all" in filters:
            raise InvalidParameter("invalid filter 'all'")
        everything = True
    deleted, reclaimed = [], 0
    for volume in volumes.all():
        if volume.users or volume.active or (not everything and not volume.anonymous):
            continue
        if not all(list_filters.label_matches(volume.labels, v)
                   for v in filters.get("label", [])):
            continue
        if any(list_filters.label_matches(volume.labels, v) for v in filters.get("label!", [])):
            continue
        size = await asyncio.to_thread(disk_usage.tree_size, volume.path)
        try:
            volumes.remove(volume.name)
        except EngineError as e:
            log.warning("prune: cannot remove volume %s: %s", volume.name, e.message)
            continue
        deleted.append(volume.name)
        reclaimed += size
    request.app["daemon"].events.log("volume", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


ROUTES = [
    ("POST", "/volumes/create", create),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes", list_volumes),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]
