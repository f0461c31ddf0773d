"""/containers/{id}/archive (GET, HEAD, PUT: `docker cp` both ways), /containers/{id}/export
and /containers/{id}/changes (`docker diff`). The work is in engine/archive.py and
engine/changes.py."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .. import archive, changes as fs_changes, rootfs
from ..errors import EngineError, InvalidParameter
from .http import json_response, query_bool

log = logging.getLogger("berthd.api")

TAR = "application/x-tar"


def _daemon(request: web.Request):
    return request.app["daemon"]


def _target(request: web.Request):
    """(container, the name as the client gave it, path); dockerd's ArchiveFormValues."""
    ref = request.match_info["name"]
    c = _daemon(request).containers.get(ref)
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    return c, ref, path


async def head_archive(request: web.Request) -> web.Response:
    c, ref, path = _target(request)
    stat = await archive.stat_path(_daemon(request), c, ref, path)
    return web.Response(status=200, headers={
        "X-Docker-Container-Path-Stat": archive.path_stat_header(stat)})


async def _stream(request: web.Request, resp: web.StreamResponse, chunks, what: str):
    """Send the child's tar; a failure once the headers are out cuts the connection, so
    that the client sees a broken transfer, not a short archive."""
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
    except EngineError as e:
        log.error("%s: %s", what, e.message)
        if request.transport is not None:
            request.transport.abort()
        return resp
    except ConnectionResetError:
        return resp         # the client went away
    await resp.write_eof()
    return resp


async def get_archive(request: web.Request) -> web.StreamResponse:
    c, ref, path = _target(request)
    async with archive.archive_path(_daemon(request), c, ref, path) as (stat, chunks):
        resp = web.StreamResponse(status=200, headers={
            "X-Docker-Container-Path-Stat": archive.path_stat_header(stat),
            "Content-Type": TAR})
        return await _stream(request, resp, chunks, f"archive of {path} in {c.id[:12]}")


async def put_archive(request: web.Request) -> web.Response:
    c, ref, path = _target(request)
    # as dockerd: overwriting a directory with a file (and back) is allowed unless asked not to
    no_overwrite = query_bool(request, "noOverwriteDirNonDir")
    await archive.extract_to_dir(_daemon(request), c, ref, path,
                                 request.content.iter_chunked(archive.CHUNK),
                                 copy_uid_gid=query_bool(request, "copyUIDGID"),
                                 no_overwrite_dir_non_dir=no_overwrite)
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    ref = request.match_info["name"]
    c = _daemon(request).containers.get(ref)
    async with archive.export(_daemon(request), c, ref) as chunks:
        resp = web.StreamResponse(status=200, headers={"Content-Type": TAR})
        return await _stream(request, resp, chunks, f"export of {c.id[:12]}")


async def changes(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    c = daemon.containers.get(request.match_info["name"])
    image = daemon.images.find(c.record["Image"])
    lower = [*map(str, daemon.images.lower_dirs(image))] if image else []
    upper = rootfs.upper_dir(daemon.cfg.data_root, c.id)
    async with c.lock:      # not removed while it is read
        found = await asyncio.to_thread(fs_changes.changes, upper, lower)
    # dockerd's list is a Go slice: null when there is no change
    return json_response([ch.json() for ch in found] or None)


ROUTES = [
    ("GET", "/containers/{name}/archive", get_archive),
    ("HEAD", "/containers/{name}/archive", head_archive),
    ("PUT", "/containers/{name}/archive", put_archive),
    ("GET", "/containers/{name}/export", export),
    ("GET", "/containers/{name}/changes", changes),
]
