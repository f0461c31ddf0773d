"""/containers/{id}/exec and /exec/{id}/...: create, start (hijacked, or detached), resize,
inspect."""
from __future__ import annotations

import asyncio

from aiohttp import web

from .. import body_types
from ..detach_keys import parse as parse_detach_keys
from ..errors import EngineError
from ..version import api_at_least
from . import hijack
from .containers import frame, stream_type
from .http import json_response, query_uint32, read_json

# docker-py reads the upgraded stream from under http.client's buffered reader: bytes that
# arrive with the 101 are lost to it (docker-api-surface.md §4). Output waits this long after
# the 101, which the start of the process almost always takes anyway.
FIRST_OUTPUT_AFTER = 0.05
DRAIN_AFTER_EXIT = 2.0      # output still open after the exit is recorded: cut after this
EXIT_AFTER_OUTPUT = 10.0    # output closed but the process goes on: the stream ends after this


async def create(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    body = body_types.check(await read_json(request), body_types.EXEC_OPTIONS)
    ref = request.match_info["name"]
    c = daemon.containers.get(ref)
    if not api_at_least(request["api_version"], "1.42"):
        body.pop("ConsoleSize", None)
    ex = daemon.execs.create(c, ref, body)
    return json_response({"Id": ex.id}, 201)


async def start(request: web.Request) -> web.StreamResponse:
    daemon = request.app["daemon"]
    body = body_types.check(await read_json(request), body_types.EXEC_START)
    ex = daemon.execs.get(request.match_info["id"])
    daemon.execs.check_startable(ex)          # refused with a status, before the upgrade
    tty = bool(body.get("Tty"))
    console = body.get("ConsoleSize") if tty and api_at_least(request["api_version"],
                                                                "1.42") else None
    if body.get("Detach"):
        await daemon.execs.start(ex, console_size=console, attach=False)
        return web.Response(status=200)
    resp, reader = await hijack.upgrade(request, stream_type(request, tty))
    loop = asyncio.get_running_loop()
    first_output_at = loop.time() + FIRST_OUTPUT_AFTER

    def pack(stream: int, data: bytes) -> bytes:
        return data if tty else frame(stream, data)

    class Delayed:
        """The response, holding back the first bytes until FIRST_OUTPUT_AFTER has passed."""

        async def write(self, data: bytes) -> None:
            wait = first_output_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await resp.write(data)

    try:
        try:
            att = await daemon.execs.start(ex, console_size=console, attach=True)
        except EngineError as e:
            # as dockerd: the reason goes into the stream (stdout), the exit code is recorded
            await Delayed().write(pack(1, f"{e.message}\r\n".encode()))
            return resp
        # as dockerd: with a TTY the client's EOF leaves the process's stdin open, and its
        # detach keys end the session, the process running on
        pumping = loop.create_task(hijack.pump(
            att, Delayed(), reader, pack, stdin=ex.open_stdin, close_stdin_at_eof=not tty,
            detach_keys=parse_detach_keys(ex.detach_keys) if tty else None,
            what=f"exec {ex.id[:12]}"))
        done = loop.create_task(ex.done.wait())
        try:
            await asyncio.wait({pumping, done}, return_when=asyncio.FIRST_COMPLETED)
            if pumping.done():
                if pumping.exception() is not None:
                    raise pumping.exception()       # the client went away
                if pumping.result():
                    return resp                     # detached: the process runs on
                # the output ended, so the process did (almost always): the client reads
                # ExitCode as soon as the stream closes, so it must be recorded first
                await asyncio.wait({done}, timeout=EXIT_AFTER_OUTPUT)
            else:
                await asyncio.wait({pumping}, timeout=DRAIN_AFTER_EXIT)
        finally:
            for task in (pumping, done):
                task.cancel()
            await asyncio.gather(pumping, done, return_exceptions=True)
    except ConnectionResetError:
        pass    # the client went away; the process goes on, as under dockerd
    return resp


async def resize(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    height = query_uint32(request, "h", "resize height")
    width = query_uint32(request, "w", "resize width")
    ex = daemon.execs.get(request.match_info["id"])
    await daemon.execs.resize(ex, height, width)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    ex = request.app["daemon"].execs.get(request.match_info["id"])
    return json_response(ex.inspect())


ROUTES = [
    ("POST", "/containers/{name}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]
