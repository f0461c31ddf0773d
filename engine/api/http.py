"""Request and response helpers with dockerd's conventions: exact JSON content type, booleans
and filters as dockerd parses them, errors as {"message": ...}."""
from __future__ import annotations

import json

import aiohttp
import aiohttp.http_exceptions
from aiohttp import web

from ..body_types import GoFloat
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
    """An integer query parameter as Go's strconv.Atoi reads one (an optional sign, ASCII
    digits, within int64); 400 naming it otherwise."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    digits = value[1:] if value[:1] in "+-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidParameter(f"invalid value for {name}: {value!r}: not an integer")
    number = int(value)
    if not -(1 << 63) <= number < 1 << 63:
        raise InvalidParameter(f"invalid value for {name}: {value!r}: value out of range")
    return number


def query_uint32(request: web.Request, name: str, what: str) -> int:
    """A uint32 query parameter that must be given (a terminal's height or width), refused as
    dockerd refuses it: 'invalid resize height "-1": value out of range'."""
    value = request.query.get(name, "")
    digits = value[1:] if value.startswith("-") else value
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidParameter(f"invalid {what} {json.dumps(value)}: invalid syntax")
    if value.startswith("-") or int(digits) >= 1 << 32:
        raise InvalidParameter(f"invalid {what} {json.dumps(value)}: value out of range")
    return int(digits)


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


# The JSON bodies berthd reads (create, update, exec) describe a process and its settings: its
# argv and environment are bounded by the kernel's ARG_MAX (2 MiB under the default 8 MiB stack)
# and the rest is small. dockerd sets no limit, but whatever a request carries berthd keeps (a
# container's record, its events' attributes), and a 100 MB label grew berthd by hundreds of
# MB; 4 MiB leaves room for JSON escaping and generous labels. Streams (image load, build
# contexts) are not JSON bodies and are not read here.
MAX_JSON_BODY = 4 << 20


class BodyTooLarge(EngineError):
    status = 413


async def read_json(request: web.Request):
    """The request's JSON body, {} when there is none; 400 with dockerd's prefix ("invalid
    JSON: ...") when it is not JSON, 413 past MAX_JSON_BODY (refused before it is read when
    Content-Length says so). Numbers with a fraction keep their text (body_types.GoFloat);
    the caller checks the value's types (body_types.check)."""
    if not request.can_read_body:
        return {}
    length = request.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise BodyTooLarge(_too_large(length))
    data = bytearray()
    try:
        while chunk := await request.content.read(1 << 16):
            data += chunk
            if len(data) > MAX_JSON_BODY:
                raise BodyTooLarge(_too_large(len(data), more=True))
    except (ConnectionError, aiohttp.ClientPayloadError,
            aiohttp.http_exceptions.HttpProcessingError) as e:
        raise InvalidParameter(f"invalid JSON: the body ended early: {e}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise InvalidParameter(f"invalid JSON: not UTF-8: {e}") from None
    if not text.strip():
        return {}
    decoder = json.JSONDecoder(parse_float=GoFloat)
    try:
        obj, end = decoder.raw_decode(text, len(text) - len(text.lstrip()))
    except ValueError as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None
    if text[end:].strip():
        raise InvalidParameter("unexpected content after JSON")
    return obj


def _too_large(size: int, more: bool = False) -> str:
    return (f"request body too large: {'more than ' if more else ''}{size} bytes, where berthd "
            f"reads JSON bodies of at most {MAX_JSON_BODY} bytes")
