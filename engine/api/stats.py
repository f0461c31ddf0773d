"""/containers/{id}/stats and /containers/{id}/top: what runs in a container and what it uses."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .. import stats as statsmod, timefmt, top as topmod
from ..version import api_at_least
from .http import JSON, json_response, query_bool

INTERVAL = 1.0          # between samples of a stream, as dockerd's collector
PRIME_INTERVAL = 0.5    # stream=0: a first sample this long before, for precpu_stats


def _container(request: web.Request):
    return request.app["daemon"].containers.get(request.match_info["name"])


async def _sample(daemon, c) -> dict:
    metrics = await daemon.containers.metrics(c)
    if metrics is None:
        return statsmod.empty(c.id, c.name)
    system_ns, online = statsmod.system_cpu()
    networks = None
    if c.host_config.get("NetworkMode") != "host" and c.state["Pid"]:
        networks = statsmod.network_stats(c.state["Pid"])
    return statsmod.sample(c.id, c.name, metrics, read_ns=timefmt.now_ns(), system_ns=system_ns,
                           online=online, machine_memory=statsmod.mem_total(),
                           networks=networks)


async def stats(request: web.Request) -> web.StreamResponse:
    daemon = request.app["daemon"]
    c = _container(request)
    stream = query_bool(request, "stream", True)
    one_shot = api_at_least(request["api_version"], "1.41") and query_bool(request, "one-shot")
    if not stream:
        if not c.running or c.restarting:
            return json_response(statsmod.empty(c.id, c.name))
        first = await _sample(daemon, c)
        if one_shot:
            return json_response(first)
        await asyncio.sleep(PRIME_INTERVAL)
        return json_response(statsmod.with_previous(await _sample(daemon, c), first))
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    await resp.prepare(request)
    previous = None
    try:
        while True:
            current = statsmod.with_previous(await _sample(daemon, c), previous)
            await resp.write(json.dumps(current).encode() + b"\n")
            previous = current
            await asyncio.sleep(INTERVAL)
            if c.removed:
                break
    except ConnectionResetError:
        pass        # the client stopped reading
    return resp


async def top(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    ps_args = request.query.get("ps_args", "")
    topmod.validate_ps_args(ps_args)
    c = _container(request)
    pids = await daemon.containers.pids(c)
    result = await topmod.top(ps_args, pids)
    daemon.events.container(c, "top")
    return json_response(result)


ROUTES = [
    ("GET", "/containers/{name}/stats", stats),
    ("GET", "/containers/{name}/top", top),
]
