"""GET /events: the remembered events from `since`, then live ones until `until` (without it the
stream stays open until the client goes)."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .. import timefmt
from ..errors import InvalidParameter
from ..events import Filter, legacy_view
from ..version import api_at_least
from .http import JSON, parse_filters


def _time(request: web.Request, key: str) -> int:
    value = request.query.get(key, "")
    if not value:
        return 0
    try:
        return timefmt.parse_unix_timestamp(value)
    except ValueError as e:
        raise InvalidParameter(f"invalid value for '{key}': {e}") from None


async def events(request: web.Request) -> web.StreamResponse:
    log = request.app["daemon"].events
    since, until = _time(request, "since"), _time(request, "until")
    if until and until < since:
        raise InvalidParameter(f"`since` time ({request.query['since']}) cannot be after "
                               f"`until` time ({request.query['until']})")
    filt = Filter(parse_filters(request))
    legacy = not api_at_least(request["api_version"], "1.52")
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    await resp.prepare(request)

    async def send(ev: dict) -> None:
        await resp.write(json.dumps(legacy_view(ev) if legacy else ev).encode() + b"\n")

    past, sub = log.subscribe(since, until, filt)
    try:
        for ev in past:
            await send(ev)
        now = timefmt.now_ns()
        if until and until <= now:
            return resp
        deadline = asyncio.get_running_loop().time() + (until - now) / 1e9 if until else None
        while True:
            timeout = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if timeout is not None and timeout <= 0:
                break
            try:
                ev = await asyncio.wait_for(sub.get(), timeout)
            except asyncio.TimeoutError:
                break
            await send(ev)
        await resp.write_eof()
    except ConnectionResetError:
        pass            # the client went away
    finally:
        sub.close()
    return resp


ROUTES = [("GET", "/events", events)]
