"""/containers/...: create, start, wait, attach, logs, inspect, list, kill, stop, restart,
pause, unpause, rename, resize, delete, prune."""
from __future__ import annotations

import json
import logging
import re
import signal as signals
import struct

from aiohttp import web

from .. import body_types, container as views, disk_usage, health, logs as logreader, timefmt
from ..detach_keys import InvalidDetachKeys, parse as parse_detach_keys
from ..errors import EngineError, InvalidParameter, NotImplementedYet
from ..host_config import parse_signal
from ..version import api_at_least
from . import filters as list_filters, hijack
from .http import (JSON, MULTIPLEXED, RAW_STREAM, check_filter_keys, json_response,
                   parse_filters, query_bool, query_int, query_uint32, read_json)

log = logging.getLogger("berthd.api")

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since",
              "network", "volume", "health", "isolation", "is-task", "publish", "expose")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def frame(stream: int, data: bytes) -> bytes:
    """A frame of the multiplexed stream: type, three zero bytes, big-endian length, data."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def stream_type(request: web.Request, tty: bool) -> str:
    return MULTIPLEXED if not tty and api_at_least(request["api_version"], "1.42") else RAW_STREAM


def _daemon(request: web.Request):
    return request.app["daemon"]


def _container(request: web.Request):
    return _daemon(request).containers.get(request.match_info["name"])


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    daemon = _daemon(request)
    c, warnings = daemon.containers.create(request.query.get("name", ""), body,
                                           platform=request.query.get("platform", ""))
    warnings += _kernel_memory_warnings(request, body)
    return json_response({"Id": c.id, "Warnings": warnings}, 201)


def _kernel_memory_warnings(request: web.Request, body: dict) -> list[str]:
    """HostConfig.KernelMemory left the API at 1.42; older clients (the docker CLI 20.10) still
    send it. berth never applies it: dropped with dockerd's deprecation warning and a second
    one saying so, never in silence."""
    if api_at_least(request["api_version"], "1.42"):
        return []
    kmem = (body.get("HostConfig") or {}).get("KernelMemory")
    if not kmem or isinstance(kmem, bool) or not isinstance(kmem, int):
        return []
    return ["Specifying a kernel memory limit is deprecated and will be removed in a future "
            "release.", "berth does not apply kernel memory limits. Limitation discarded."]


async def start(request: web.Request) -> web.Response:
    c = _container(request)
    await _daemon(request).containers.start(c)
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise InvalidParameter(f'invalid condition: "{condition}"')
    result = _daemon(request).containers.waiter(c, condition)
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    if api_at_least(request["api_version"], "1.30"):
        # headers first: the CLI sends wait before start and blocks until they arrive
        await resp.prepare(request)
    code, error = await result
    body = {"StatusCode": code, "Error": {"Message": error} if error else None}
    try:
        if not resp.prepared:
            await resp.prepare(request)
        await resp.write(json.dumps(body).encode() + b"\n")
        await resp.write_eof()
    except ConnectionResetError:
        pass    # the client stopped waiting (`docker run -d` closes its wait once started)
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    daemon = _daemon(request)
    c = _container(request)
    want_stdin = query_bool(request, "stdin")
    want_stdout = query_bool(request, "stdout")
    want_stderr = query_bool(request, "stderr")
    tty = c.tty
    try:
        detach_keys = parse_detach_keys(request.query.get("detachKeys"))
    except InvalidDetachKeys as e:
        raise InvalidParameter(str(e)) from None
    resp, reader = await hijack.upgrade(request, stream_type(request, tty))
    daemon.events.container(c, "attach")

    def pack(stream: int, data: bytes) -> bytes:
        return data if tty else frame(stream, data)

    try:
        if query_bool(request, "logs"):
            opts = logreader.Options(stdout=want_stdout, stderr=want_stderr)
            async for entry in logreader.read(daemon.containers.log_path(c.id), opts,
                                              running=lambda: False, changed=lambda: c.stopped):
                await resp.write(pack(entry.stream, entry.data))
        if query_bool(request, "stream") and (want_stdin or want_stdout or want_stderr):
            att = await daemon.containers.attach(c, stdin=want_stdin, stdout=want_stdout,
                                                 stderr=want_stderr)
            if att is not None:
                # as dockerd: a TTY session's end (the client's EOF or its detach keys) leaves
                # the container's stdin open; keys typed there are only watched for with a TTY
                detached = await hijack.pump(
                    att, resp, reader, pack,
                    stdin=want_stdin and bool(c.config.get("OpenStdin")),
                    close_stdin_at_eof=bool(c.config.get("StdinOnce")) and not tty,
                    detach_keys=detach_keys if tty else None, what=f"attach to {c.id[:12]}")
                if not detached:
                    # the output ended because the process did: let its exit be recorded
                    # first, so a client reading the exit code right after EOF sees it
                    await daemon.containers.wait_stopped(c, 2.0)
    except ConnectionResetError:
        pass    # the client went away
    return resp


async def resize(request: web.Request) -> web.Response:
    height = query_uint32(request, "h", "resize height")
    width = query_uint32(request, "w", "resize width")
    c = _container(request)
    await _daemon(request).containers.resize(c, height, width)
    _daemon(request).events.container(c, "resize", height=str(height), width=str(width))
    return web.Response(status=200)


def _log_options(request: web.Request) -> logreader.Options:
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    tail = request.query.get("tail", "all")
    try:
        tail_n = -1 if tail in ("", "all") else int(tail)
    except ValueError:
        tail_n = -1     # as dockerd: an unparsable tail means all
    times = {}
    for key in ("since", "until"):
        value = request.query.get(key, "")
        try:
            times[key] = timefmt.parse_unix_timestamp(value) if value and value != "0" else 0
        except ValueError:
            raise InvalidParameter(f"invalid value for {key}: {value!r}") from None
    return logreader.Options(stdout=stdout, stderr=stderr, since=times["since"],
                             until=times["until"], tail=tail_n,
                             timestamps=query_bool(request, "timestamps"),
                             details=query_bool(request, "details"),
                             follow=query_bool(request, "follow"))


async def logs(request: web.Request) -> web.StreamResponse:
    daemon = _daemon(request)
    c = _container(request)
    opts = _log_options(request)
    if c.host_config["LogConfig"]["Type"] != "json-file":
        raise NotImplementedYet(
            f'configured logging driver "{c.host_config["LogConfig"]["Type"]}" does not '
            f'support reading')
    resp = web.StreamResponse(status=200, headers={"Content-Type": stream_type(request, c.tty)})
    await resp.prepare(request)    # headers before any line (moby issue 47448)
    try:
        async for entry in logreader.read(daemon.containers.log_path(c.id), opts,
                                          running=lambda: c.running and not c.removed,
                                          changed=lambda: c.stopped):
            data = logreader.render(entry, opts)
            await resp.write(data if c.tty else frame(entry.stream, data))
        await resp.write_eof()
    except ConnectionResetError:
        pass    # the client went away
    return resp


async def inspect(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    c = _container(request)
    image = daemon.images.find(c.record["Image"])
    body = views.inspect(
        c, image_id=c.record["Image"], data_root=daemon.cfg.data_root,
        exec_root=daemon.cfg.exec_root,
        lower_dirs=daemon.images.lower_dirs(image) if image else [],
        driver="overlayfs")
    if query_bool(request, "size"):
        # as dockerd: both sizes, measured, only when asked (even when 0)
        body["SizeRw"], body["SizeRootFs"] = await disk_usage.container_sizes(daemon, c)
    return json_response(body)


class _ListFilter:
    """GET /containers/json's filters, checked once (dockerd's foldFilter) and applied to each
    container (includeContainerInList), for what berth has: no task (swarm) containers, no
    published ports (PortBindings are refused), only the host, none and bridge network modes,
    and Linux's one isolation, "default"."""

    def __init__(self, filters: dict[str, list[str]], daemon):
        check_filter_keys(filters, PS_FILTERS)
        for status in filters.get("status", []):
            if status not in STATUSES:
                raise InvalidParameter(f"invalid filter 'status={status}'")
        for value in filters.get("health", []):
            if value not in health.STATUSES:
                raise InvalidParameter(f"Unrecognised filter value for health: {value}")
        for value in filters.get("exited", []):
            digits = value[1:] if value[:1] in "+-" else value
            if not (digits.isascii() and digits.isdigit()):
                raise InvalidParameter(f"invalid filter 'exited={value}': strconv.Atoi: "
                                       f"parsing \"{value}\": invalid syntax")
        self.filters = filters
        self.is_task = list_filters.bool_filter(filters, "is-task", False) \
            if "is-task" in filters else None
        self.publish = list_filters.port_filter("publish", filters.get("publish", []))
        self.expose = list_filters.port_filter("expose", filters.get("expose", []))
        self.before = self.since = None
        for key in ("before", "since"):
            for ref in filters.get(key, []):
                created = daemon.containers.get(ref).record["Created"]
                if key == "before":
                    self.before = created
                else:
                    self.since = created
        self.images = None
        if "ancestor" in filters:
            self.images = set()
            for v in filters["ancestor"]:
                image = daemon.images.find(v)
                if image:
                    self.images.add(image.id)

    def matches(self, c) -> bool:
        filters = self.filters
        for key, values in filters.items():
            if not values:
                continue
            if key == "id" and not any(c.id.startswith(v) for v in values):
                return False
            if key == "name" and not any(re.search(v, c.name.lstrip("/"))
                                         or re.search(v, c.name) for v in values):
                return False
            if key == "status" and c.status() not in values:
                return False
            if key == "health" and health.status_of(c) not in values:
                return False
            if key == "exited" and (c.status() != "exited" or c.state["ExitCode"]
                                    not in {int(v) for v in values}):
                return False
            if key == "label" and not all(list_filters.label_matches(
                    c.config.get("Labels") or {}, v) for v in values):
                return False
            if key == "network" and not set(values) & _networks(c):
                return False
            if key == "volume" and not set(values) & _mount_points(c):
                return False
            if key == "isolation" and (c.host_config.get("Isolation") or "default") \
                    not in values:
                return False
        if self.images is not None and c.record["Image"] not in self.images:
            return False
        if self.is_task:        # berth runs no swarm tasks: is-task=true matches nothing
            return False
        if (self.publish or self.expose) and not (
                self.expose & _exposed_ports(c) or self.publish & _published_ports(c)):
            return False
        if self.before is not None and c.record["Created"] >= self.before:
            return False
        if self.since is not None and c.record["Created"] <= self.since:
            return False
        return True


def _networks(c) -> set[str]:
    """The networks a container is on, by the names dockerd gives them (host mode's too)."""
    mode = c.host_config.get("NetworkMode") or "bridge"
    names = set(views.network_settings(mode, c.record.get("Network"))["Networks"])
    if mode == "host":
        names.add("host")
    return names


def _mount_points(c) -> set[str]:
    """dockerd's `volume` filter matches a mount's volume name, its source, or its
    destination."""
    out = set()
    for m in views.summary(c, image_id="", now_ns=0)["Mounts"]:
        out.update(p for p in (m.get("Name"), m.get("Source"), m.get("Destination")) if p)
    return out


def _exposed_ports(c) -> set[str]:
    return {p if "/" in p else f"{p}/tcp" for p in (c.config.get("ExposedPorts") or {})}


def _published_ports(c) -> set[str]:
    """None: berth refuses --publish (HostConfig.PortBindings), so no container has one."""
    return set()


async def list_containers(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    filters = parse_filters(request)
    selection = _ListFilter(filters, daemon)
    show_all = query_bool(request, "all")
    with_size = query_bool(request, "size")
    limit = query_int(request, "limit", -1)
    out = []
    now = timefmt.now_ns()
    implicit_all = show_all or (limit is not None and limit > 0) \
        or selection.before is not None or selection.since is not None \
        or "status" in filters or "exited" in filters
    for c in daemon.containers.all():
        if not implicit_all and not c.running:
            continue
        if not selection.matches(c):
            continue
        summary = views.summary(c, image_id=c.record["Image"], now_ns=now)
        if with_size:
            # dockerd's Summary has them omitempty: a size of 0 is left out
            size_rw, size_root = await disk_usage.container_sizes(daemon, c)
            summary.update({k: v for k, v in (("SizeRw", size_rw), ("SizeRootFs", size_root))
                            if v})
        out.append(summary)
        if limit is not None and 0 < limit <= len(out):
            break
    return json_response(out)


async def kill(request: web.Request) -> web.Response:
    c = _container(request)
    sig = parse_signal(request.query.get("signal"), signals.SIGKILL)
    await _daemon(request).containers.kill(c, sig, request.match_info["name"])
    return web.Response(status=204)


def _stop_args(request: web.Request) -> tuple[int | None, str | None]:
    timeout = query_int(request, "t")
    sig = request.query.get("signal") or None
    if sig:
        parse_signal(sig, signals.SIGTERM)   # validate before acting
    return timeout, sig


async def stop(request: web.Request) -> web.Response:
    timeout, sig = _stop_args(request)
    c = _container(request)
    await _daemon(request).containers.stop(c, timeout, sig)
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    timeout, sig = _stop_args(request)
    c = _container(request)
    await _daemon(request).containers.restart(c, timeout, sig)
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    await _daemon(request).containers.pause(_container(request))
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await _daemon(request).containers.unpause(_container(request))
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    # as dockerd: the body's types are checked before the container is looked up
    body = body_types.check(await read_json(request), body_types.UPDATE_CONFIG)
    warnings = await _daemon(request).containers.update(_container(request), body)
    return json_response({"Warnings": warnings})


async def rename(request: web.Request) -> web.Response:
    ref = request.match_info["name"]
    if not ref.strip().lstrip("/") or not request.query.get("name", "").strip().lstrip("/"):
        raise InvalidParameter("Neither old nor new names may be empty")
    _daemon(request).containers.rename(_container(request), request.query["name"])
    return web.Response(status=204)


async def delete(request: web.Request) -> web.Response:
    c = _container(request)
    await _daemon(request).containers.remove(c, force=query_bool(request, "force"),
                                             ref=request.match_info["name"],
                                             volumes=query_bool(request, "v"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    """POST /containers/prune: remove every stopped container (filters: label, label!,
    until). SpaceReclaimed is what the removals freed: each writable layer's bytes, measured
    just before its container goes (dockerd's GetContainerLayerSize)."""
    daemon = _daemon(request)
    filters = parse_filters(request)
    check_filter_keys(filters, ("label", "label!", "until"))
    until = None
    for value in filters.get("until", []):
        until = list_filters.timestamp_ns(value)
    deleted = []
    reclaimed = 0
    for c in daemon.containers.all():
        if c.running or c.removing:
            continue
        labels = c.config.get("Labels") or {}
        if not all(list_filters.label_matches(labels, v) for v in filters.get("label", [])):
            continue
        if any(list_filters.label_matches(labels, v) for v in filters.get("label!", [])):
            continue
        if until is not None and c.record["Created"] >= until:
            continue
        size = await disk_usage.writable_size(daemon, c)
        try:
            await daemon.containers.remove(c, force=False, ref=c.id)
        except EngineError as e:
            # as dockerd: a container that cannot be removed is skipped, not the whole prune
            log.warning("prune: cannot remove container %s: %s", c.id[:12], e.message)
            continue
        deleted.append(c.id)
        reclaimed += size
    daemon.events.log("container", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


ROUTES = [
    ("POST", "/containers/prune", prune),
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_containers),
    ("GET", "/containers/{name}/json", inspect),
    ("POST", "/containers/{name}/start", start),
    ("POST", "/containers/{name}/wait", wait),
    ("POST", "/containers/{name}/attach", attach),
    ("POST", "/containers/{name}/resize", resize),
    ("GET", "/containers/{name}/logs", logs),
    ("POST", "/containers/{name}/kill", kill),
    ("POST", "/containers/{name}/stop", stop),
    ("POST", "/containers/{name}/restart", restart),
    ("POST", "/containers/{name}/pause", pause),
    ("POST", "/containers/{name}/unpause", unpause),
    ("POST", "/containers/{name}/rename", rename),
    ("POST", "/containers/{name}/update", update),
    ("DELETE", "/containers/{name}", delete),
]
