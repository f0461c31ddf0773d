"""The aiohttp application: routes (each with and without the /vX.Y prefix), version
negotiation, dockerd's response headers, and errors as {"message": ...}."""
from __future__ import annotations

import logging

from aiohttp import web

from ..errors import EngineError
from ..version import API_VERSION, MIN_API_VERSION, VERSION, parse_api_version
from . import (archive, build, containers, disk_usage, events, execs, image_archives, images,
               networks, stats, system, volumes)
from .http import MAX_JSON_BODY, error_response, json_response

log = logging.getLogger("berthd.api")

VERSION_PREFIX = r"/v{api_version:[0-9]+\.[0-9]+}"

COMMON_HEADERS = {
    "Api-Version": API_VERSION,
    "Ostype": "linux",
    "Docker-Experimental": "false",
    "Server": f"Docker/{VERSION} (linux)",
}


def _check_version(version: str) -> web.Response | None:
    """dockerd's version middleware: too new is a JSON 400; below the minimum a plain-text 400."""
    wanted = parse_api_version(version)
    if wanted > parse_api_version(API_VERSION):
        return json_response({"message": f"client version {version} is too new. Maximum "
                                         f"supported API version is {API_VERSION}"}, 400)
    if wanted < parse_api_version(MIN_API_VERSION):
        return web.Response(status=400, content_type="text/plain", text=(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"))
    return None


@web.middleware
async def api_middleware(request: web.Request, handler):
    version = request.match_info.get("api_version")
    if version:
        refusal = _check_version(version)
        if refusal is not None:
            return refusal
    request["api_version"] = version or API_VERSION
    try:
        return await handler(request)
    except EngineError as e:
        if e.status >= 500:
            log.error("%s %s: %s", request.method, request.path, e.message)
        return error_response(e)
    except web.HTTPNotFound:
        return json_response({"message": "page not found"}, 404)
    except web.HTTPMethodNotAllowed:
        return json_response({"message": "page not found"}, 405)
    except web.HTTPException:
        raise
    except Exception as e:
        log.exception("%s %s failed", request.method, request.path)
        return json_response({"message": f"internal error: {e}"}, 500)


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    for key, value in COMMON_HEADERS.items():
        response.headers[key] = value


def make_app(daemon) -> web.Application:
    # No handler reads a whole body through aiohttp (request.read/json/post): JSON bodies are
    # read by http.read_json under its own bound, and `docker cp` uploads (PUT .../archive)
    # stream through request.content to the extracting child. aiohttp's own bound is the same
    # small one, so that a handler added later that calls request.read() cannot buffer a
    # client's gigabyte either.
    app = web.Application(middlewares=[api_middleware], client_max_size=MAX_JSON_BODY)
    app["daemon"] = daemon
    app.on_response_prepare.append(_common_headers)
    routes = [("GET", "/_ping", system.ping), ("HEAD", "/_ping", system.ping),
              ("GET", "/version", system.version), ("GET", "/info", system.info),
              *containers.ROUTES, *execs.ROUTES, *stats.ROUTES, *events.ROUTES,
              *image_archives.ROUTES, *images.ROUTES, *archive.ROUTES, *disk_usage.ROUTES,
              *volumes.ROUTES, *networks.ROUTES, *build.ROUTES]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, VERSION_PREFIX + path, handler)
    return app
