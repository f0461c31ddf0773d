"""The volume API (`docker volume create/ls/inspect/rm/prune`): POST /volumes/create,
GET /volumes, GET /volumes/{name}, DELETE /volumes/{name}, POST /volumes/prune, over
engine/volumes (the local driver)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .. import body_types as bt, disk_usage
from ..errors import EngineError, InvalidParameter
from ..version import api_at_least
from . import filters as list_filters
from .http import check_filter_keys, json_response, parse_filters, query_bool, read_json

log = logging.getLogger("berthd.api")

# the body of POST /volumes/create (dockerd's volume.CreateOptions; ClusterVolumeSpec, for
# swarm's cluster volumes, only as far as saying that berth has none)
CREATE_OPTIONS = bt.Struct("volume.CreateOptions", {
    "Name": bt.STRING, "Driver": bt.STRING, "DriverOpts": bt.STRING_MAP,
    "Labels": bt.STRING_MAP, "ClusterVolumeSpec": bt.EMPTY_STRUCT})


def _volumes(request: web.Request):
    return request.app["daemon"].containers.volumes


async def create(request: web.Request) -> web.Response:
    body = bt.check(await read_json(request), CREATE_OPTIONS)
    if body.get("ClusterVolumeSpec"):
        raise InvalidParameter("berth cannot create cluster volumes (ClusterVolumeSpec): "
                               "berthd is no swarm node")
    volume, _ = _volumes(request).create(body.get("Name") or "", body.get("Driver") or "",
                                         body.get("DriverOpts"), body.get("Labels"))
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
