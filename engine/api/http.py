"""Request and response helpers with dockerd's conventions: exact JSON content type, booleans
and filters as dockerd parses them, errors as {"message": ...}."""
from __future__ import annotations

import json

from aiohttp import web

from ..errors import EngineError, InvalidParameter

JSON = "application/json"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW_STREAM = "application/vnd.docker.raw-stream"


def json_response(obj, status: int = 200) -> web.Response:
    """JSON with Content-Type exactly application/json: the Go client compares the whole string
    (web.json_response adds '; charset=utf-8', which makes the CLI print error bodies raw)."""
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type=JSON)


def error_response(err: EngineError) -> web.Response:
    if err.status == 304:
        return web.Response(status=304)
    return json_response({"message": err.message}, err.status)


def parse_bool(value: str | None, default: bool = False) -> bool:
    """dockerd's BoolValue: '', 0, no, false, none are false; anything else is true (so
    docker-py's 'False' is false and the CLI's '1' true)."""
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    return parse_bool(request.query.get(name), default)


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}: not an integer") from None


def parse_filters(request: web.Request) -> dict[str, list[str]]:
    """`filters` as {"key": {"value": true}} (or the older {"key": ["value"]}) -> key -> values."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid filter: {raw!r} is not JSON") from None
    if not isinstance(obj, dict):
        raise InvalidParameter(f"invalid filter: {raw!r}")
    out: dict[str, list[str]] = {}
    for key, values in obj.items():
        if isinstance(values, dict):
            out[key] = [v for v, on in values.items() if on]
        elif isinstance(values, list):
            out[key] = [str(v) for v in values]
        else:
            raise InvalidParameter(f"invalid filter: {key}={values!r}")
    return out


def check_filter_keys(filters: dict[str, list[str]], allowed: tuple[str, ...]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")


async def read_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    data = await request.read()
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidParameter(f"invalid JSON body: {e}") from None
