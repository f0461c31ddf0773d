"""POST /build: the classic builder's API (docker build without BuildKit, and the docker CLI
28's fallback when buildx is absent). The context comes as the request body (a tar, plain or
gzip/bzip2/xz compressed), is saved and unpacked under the data root's tmp, and the build's
output goes back as JSON lines: {"stream": ...}, {"aux": {"ID": ...}}, and an error as
{"errorDetail": ..., "error": ...}. An error before the first line is the API's error status
(a Dockerfile parse error, a bad --target), as dockerd answers before its output starts."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from ..build.builder import BuildOptions, Builder, StepFailed, finish
from ..errors import EngineError, InvalidParameter
from ..images import reference
from ..registry import auth, platforms, progress
from ..registry import pull as registry_pull
from . import images as images_api
from .http import JSON, query_bool, query_int

log = logging.getLogger("berthd.build")
CONTEXT_PREFIX = "commit-build-ctx-"    # swept at start with the store's work dirs
CHUNK = 1 << 20


class _Output:
    """The JSON-lines response, begun at the first message."""

    def __init__(self, request: web.Request):
        self.request = request
        self.resp: web.StreamResponse | None = None
        self.gone = False

    async def emit(self, msg: dict) -> None:
        if self.gone:
            return
        if self.resp is None:
            self.resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
            await self.resp.prepare(self.request)
        try:
            await self.resp.write(progress.encode(msg))
        except ConnectionError:
            self.gone = True

    async def close(self) -> web.StreamResponse:
        if self.resp is None:
            await self.emit({"stream": ""})
        if not self.gone:
            try:
                await self.resp.write_eof()
            except ConnectionError:
                pass
        return self.resp


def _json_map(request: web.Request, name: str) -> dict:
    text = request.query.get(name) or ""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"invalid {name} {text!r}: {e}") from None
    if not isinstance(value, dict) or not all(
            isinstance(v, (str, type(None))) for v in value.values()):
        raise InvalidParameter(f"invalid {name} {text!r}: a JSON object of strings")
    return value


def _options(request: web.Request) -> BuildOptions:
    q = request.query
    if q.get("remote"):
        raise InvalidParameter(f"remote build contexts are refused: berthd downloads nothing "
                               f"(remote={q['remote']}); send the context as the request body")
    plat = q.get("platform", "")
    if plat and platforms.parse(plat) != platforms.host():
        raise InvalidParameter(f"platform {plat} is not the host's ({platforms.host()}): "
                               f"berthd builds only for its own platform")
    if q.get("version") == "2":
        raise InvalidParameter("BuildKit (builder version 2) is not supported by berthd: "
                               "build with the classic builder (DOCKER_BUILDKIT=0)")
    if query_bool(request, "squash"):
        raise InvalidParameter("squash is only supported with experimental mode")
    cache_from = q.get("cachefrom", "")
    if cache_from.strip() not in ("", "[]", "null"):
        raise InvalidParameter(f"--cache-from is not supported by berthd's builder "
                               f"({cache_from}): its cache is the local images'")
    if q.get("isolation", "") not in ("", "default"):
        raise InvalidParameter(f"Isolation {q['isolation']} is not supported on linux")
    tags = q.getall("t", [])
    for tag in tags:
        reference.parse(tag)        # an invalid one is refused before anything is built
    network = q.get("networkmode", "")
    return BuildOptions(tags=tags, dockerfile=q.get("dockerfile", "") or "Dockerfile",
                        quiet=query_bool(request, "q"), nocache=query_bool(request, "nocache"),
                        pull=query_bool(request, "pull"), rm=query_bool(request, "rm", True),
                        forcerm=query_bool(request, "forcerm"),
                        buildargs=_json_map(request, "buildargs"),
                        labels=_json_map(request, "labels"), target=q.get("target", ""),
                        network_mode="" if network in ("", "default") else network,
                        host_config=_run_host_config(request))


# POST /build's resource options: the RUN containers' HostConfig, as dockerd applies them
_INT_OPTIONS = {"shmsize": "ShmSize", "memory": "Memory", "memswap": "MemorySwap",
                "cpushares": "CpuShares", "cpuperiod": "CpuPeriod", "cpuquota": "CpuQuota"}
_STR_OPTIONS = {"cpusetcpus": "CpusetCpus", "cpusetmems": "CpusetMems",
                "cgroupparent": "CgroupParent"}


def _run_host_config(request: web.Request) -> dict:
    hc: dict = {}
    for name, key in _INT_OPTIONS.items():
        value = query_int(request, name)
        if value:
            hc[key] = value
    for name, key in _STR_OPTIONS.items():
        if request.query.get(name):
            hc[key] = request.query[name]
    hosts = [h for v in request.query.getall("extrahosts", []) for h in v.split(",") if h]
    if hosts:
        hc["ExtraHosts"] = hosts
    ulimits = request.query.get("ulimits", "")
    if ulimits:
        try:
            hc["Ulimits"] = json.loads(ulimits) or []
        except ValueError as e:
            raise InvalidParameter(f"invalid ulimits {ulimits!r}: {e}") from None
    return hc


def _credentials(request: web.Request, ref: reference.Reference) -> auth.Credentials:
    """The base image's registry credentials from X-Registry-Config (a map by registry)."""
    raw = request.headers.get("X-Registry-Config", "")
    if not raw:
        return auth.Credentials()
    try:
        configs = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return auth.Credentials()
    keys = [ref.domain, f"https://{ref.domain}", f"http://{ref.domain}"]
    if ref.domain == "docker.io":
        keys = ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    for key in keys:
        if isinstance(configs, dict) and isinstance(configs.get(key), dict):
            return auth.from_header(base64.urlsafe_b64encode(
                json.dumps(configs[key]).encode()).decode())
    return auth.Credentials()


async def _save_body(request: web.Request, path: Path) -> None:
    with open(path, "wb") as f:
        async for chunk in request.content.iter_chunked(CHUNK):
            await asyncio.to_thread(f.write, chunk)


async def build(request: web.Request) -> web.StreamResponse:
    """POST /build?t=&dockerfile=&q=&nocache=&pull=&rm=&forcerm=&buildargs=&labels=&target=
    &networkmode=&platform=: the context as the body; the classic builder's stream."""
    from ..build.context import ContextError, open_context
    daemon = request.app["daemon"]
    opts = _options(request)
    out = _Output(request)

    async def pull(ref_text: str) -> None:
        ref = reference.parse(ref_text)
        try:
            await registry_pull.pull(daemon.images, images_api._registry_config(daemon), ref,
                                     _credentials(request, ref), out.emit)
        except images_api._REGISTRY_ERRORS as e:
            raise images_api._failure(e) from None

    tmp = Path(daemon.cfg.data_root) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=CONTEXT_PREFIX, dir=tmp))
    try:
        body = work / "context.tar"
        await _save_body(request, body)
        ctx = work / "context"
        ctx.mkdir()
        try:
            await asyncio.to_thread(open_context, str(body), str(ctx))
        except ContextError as e:
            raise InvalidParameter(f"cannot unpack the build context: {e}") from None
        body.unlink()
        try:
            image = await Builder(daemon, ctx, opts, out.emit, pull).build()
            await finish(daemon.images, image, opts.tags, out.emit, opts.quiet)
        except StepFailed as e:
            msg = progress.error(e.message)
            msg["errorDetail"]["code"] = e.code
            await out.emit(msg)
        except EngineError as e:
            if out.resp is None:
                raise
            await out.emit(progress.error(e.message))
        except Exception as e:
            # the stream has begun: the failure is its last line, not a second response
            if out.resp is None:
                raise
            log.exception("POST /build failed")
            await out.emit(progress.error(f"internal error: {e}"))
        return await out.close()
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


ROUTES = [("POST", "/build", build)]
