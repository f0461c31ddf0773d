"""The hijacked connection of attach (and exec start): HTTP 101, then raw bytes both ways.

aiohttp serves it with two additions (docs/docker-api-surface.md §8): a payload parser installed
with `protocol.set_parser` receives the client's bytes (stdin) once the request is read, and
`eof_received` is patched so the client's half-close (the CLI always half-closes when it has no
stdin to send) reaches that parser as EOF instead of closing the socket we still write output to.
"""
from __future__ import annotations

import asyncio

import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from supervisor import errors as sup_errors

log = logging.getLogger("berthd.api")


class StdinReader:
    """The client's bytes after the upgrade; read() returns b'' at EOF."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.eof = False

    # the parser interface aiohttp's protocol feeds (as it feeds a WebSocketReader)
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data and not self.eof:
            self._queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        if not self.eof:
            self.eof = True
            self._queue.put_nowait(b"")

    async def read(self) -> bytes:
        return await self._queue.get()


_original_eof_received = RequestHandler.eof_received


def _eof_received(self: RequestHandler):
    parser = getattr(self, "_payload_parser", None)
    if isinstance(parser, StdinReader):
        parser.feed_eof()
        return True     # keep the transport open for writing: the half-close is not the end
    return _original_eof_received(self)


RequestHandler.eof_received = _eof_received


async def upgrade(request: web.Request, content_type: str) -> tuple[web.StreamResponse,
                                                                      StdinReader]:
    """Answer 101 UPGRADED (200 when the client asked for no upgrade, as dockerd) and return the
    prepared response, to write output to, and the reader of the client's bytes."""
    reader = StdinReader()
    # installed before the 101 goes out: the client sends stdin only after reading it
    request.protocol.set_parser(reader)
    connection = request.headers.get("Connection", "").lower()
    if "upgrade" in connection and request.headers.get("Upgrade"):
        resp = web.StreamResponse(status=101, reason="UPGRADED", headers={
            "Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    else:
        resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    resp.force_close()
    await resp.prepare(request)
    return resp, reader


async def pump(att, resp: web.StreamResponse, reader: StdinReader, pack, *, stdin: bool,
               close_stdin_at_eof: bool, what: str, detach_keys: bytes | None = None) -> bool:
    """Copy a supervisor attachment's output to the client (framed by pack) until it ends,
    and, with stdin, the client's bytes to the process; the client's EOF closes the process's
    stdin when close_stdin_at_eof. With detach_keys (a TTY session, as dockerd watches only
    those), typing them ends the session and leaves the process running: then True."""
    from ..detach_keys import Watcher

    watcher = Watcher(detach_keys) if detach_keys else None

    async def copy_stdin() -> bool:
        """True when the client typed the detach keys."""
        while True:
            data = await reader.read()
            if not data:
                if close_stdin_at_eof:
                    await att.close_stdin()
                return False
            detached = False
            if watcher is not None:
                data, detached = watcher.feed(data)
            if data:
                await att.write(data)
            if detached:
                log.info("%s: detach keys typed; the process keeps running", what)
                return True

    async def copy_output() -> None:
        async for stream, data in att:
            await resp.write(pack(stream, data))

    loop = asyncio.get_running_loop()
    output = loop.create_task(copy_output())
    feeder = loop.create_task(copy_stdin()) if stdin else None
    detached = False
    try:
        waiting = {output} | ({feeder} if feeder else set())
        while output in waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if (feeder in done and not feeder.cancelled() and feeder.exception() is None
                    and feeder.result()):
                detached = True   # end the session here (a failed feeder does not)
                break
        if output.done():
            output.result()
    except sup_errors.SupervisorError as e:
        log.warning("%s ended: %s", what, e)
    finally:
        att.close()
        for task in (output, feeder):
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in (output, feeder) if t], return_exceptions=True)
    return detached
