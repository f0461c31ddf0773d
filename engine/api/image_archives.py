"""Images as files: save (GET /images/get, /images/{name}/get), load (POST /images/load), import
(POST /images/create?fromSrc=, dispatched here from images.create), commit (POST /commit) and
history (GET /images/{name}/history). The work is in engine/images/; this module spools bodies
to the data root's tmp, runs that work in a thread and answers as dockerd does.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .. import body_types as bt
from .. import disk_usage, rootfs, timefmt
from ..errors import EngineError, InvalidParameter, NotFound, NotImplementedYet
from ..images import archive_load, archive_save, importer, reference
from ..images import commit as image_commit
from ..images import lineage
from ..images.store import Image
from ..registry import platforms
from .http import JSON, json_response, query_bool, read_json

log = logging.getLogger("berthd.images")
TAR = "application/x-tar"
# POST /commit's optional body: a container.Config whose set fields override the container's
COMMIT_CONFIG = bt.Struct("container.Config", bt.CONFIG_FIELDS)
CHUNK = 1 << 20


def _daemon(request: web.Request):
    return request.app["daemon"]


def _tmp(daemon) -> Path:
    path = Path(daemon.cfg.data_root) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _spool(request: web.Request, tmp_dir: Path, prefix: str) -> Path:
    """The request body in a private file under tmp_dir (the caller removes it)."""
    fd, name = tempfile.mkstemp(prefix=prefix, dir=tmp_dir)
    path = Path(name)
    try:
        with open(fd, "wb") as out:
            while chunk := await request.content.read(CHUNK):
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


class _ToQueue(io.RawIOBase):
    """A file a worker thread writes to; the bytes go to the event loop's queue (bounded, so
    the thread waits for a slow client). Once stopped, writing raises BrokenPipeError."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue):
        self.loop, self.queue, self.stopped = loop, queue, threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.stopped.is_set():
            raise BrokenPipeError("the client went away")
        asyncio.run_coroutine_threadsafe(self.queue.put(bytes(data)), self.loop).result()
        return len(data)


async def _stream_from_thread(resp: web.StreamResponse, fn: Callable[[io.BufferedWriter], None],
                              what: str) -> None:
    """Run fn(out) in a thread and send what it writes; an error after the first byte cuts
    the connection (the client must not take a cut tar for a whole one)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=8)
    raw = _ToQueue(loop, queue)
    done = object()

    def run() -> None:
        result: object = done
        try:
            out = io.BufferedWriter(raw, CHUNK)
            fn(out)
            out.flush()
        except BaseException as e:    # noqa: BLE001 - handed to the loop
            result = e
        if not raw.stopped.is_set():
            asyncio.run_coroutine_threadsafe(queue.put(result), loop).result()

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while True:
            item = await queue.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                log.error("%s failed: %s", what, item)
                resp.force_close()
                raise item
            await resp.write(item)
    finally:
        raw.stopped.set()
        while not worker.done():
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.01)


# save -------------------------------------------------------------------------------------------

async def save(request: web.Request) -> web.StreamResponse:
    """GET /images/get?names=A&names=B (docker save of several images)."""
    return await _save(request, request.query.getall("names", []))


async def save_one(request: web.Request) -> web.StreamResponse:
    """GET /images/{name}/get (docker save of one image)."""
    return await _save(request, [request.match_info["name"]])


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    daemon = _daemon(request)
    if not names:
        raise InvalidParameter("no image names were given to save")
    chosen = archive_save.select(daemon.images, names)
    want = _platform(request)
    for image, _ in chosen:
        got = platforms.normalize(image.config.get("os", "linux"),
                                  image.config.get("architecture", ""),
                                  image.config.get("variant", ""))
        if want and (got.os, got.architecture) != (want.os, want.architecture):
            raise NotFound(f"image {image.id} is {got}, it does not provide the platform "
                           f"{want}")
    archive_save.check_blobs(daemon.images, chosen)
    resp = web.StreamResponse(status=200, headers={"Content-Type": TAR})
    await resp.prepare(request)
    await _stream_from_thread(resp, lambda out: archive_save.write(daemon.images, chosen, out),
                              f"save of {', '.join(names)}")
    for image, _ in chosen:
        daemon.events.log("image", "save", image.id, {"name": image.id})
    await resp.write_eof()
    return resp


# load -------------------------------------------------------------------------------------------

async def load(request: web.Request) -> web.StreamResponse:
    """POST /images/load?quiet= (docker load): a save archive of either layout. What is
    loaded is said as dockerd says it ({"stream": "Loaded image: ...\\n"}); an error after an
    image was loaded comes in the stream, one before is the HTTP error."""
    daemon = _daemon(request)
    tmp = _tmp(daemon)
    want = _platform(request)
    if want and want.os != "linux":
        raise InvalidParameter(f"cannot load images for the platform {want}")
    spooled = await _spool(request, tmp, "load-")
    said: list[str] = []
    loaded: list[Image] = []
    try:
        error = None
        try:
            await asyncio.to_thread(archive_load.load, daemon.images, spooled, tmp,
                                    said.append, loaded, want.architecture if want else None)
        except EngineError as e:
            if not said:
                raise
            error = e
    finally:
        spooled.unlink(missing_ok=True)
    for image in loaded:
        daemon.events.log("image", "load", image.id, {"name": image.id})
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    await resp.prepare(request)
    for line in said:
        await resp.write(json.dumps({"stream": line + "\n"}).encode() + b"\r\n")
    if error is not None:
        await resp.write(json.dumps({"errorDetail": {"message": error.message},
                                     "error": error.message}).encode() + b"\r\n")
    await resp.write_eof()
    return resp


# import -----------------------------------------------------------------------------------------

async def import_image(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromSrc=-&repo=&tag=&message=&changes= (docker import) with the
    tarball as the body. A URL source is refused: berthd fetches nothing from the network for
    an import (docker import of a local file sends it as the body)."""
    daemon = _daemon(request)
    q = request.query
    source = q.get("fromSrc", "")
    if source != "-":
        raise NotImplementedYet(f"importing from {source}: berth does not download import "
                                f"sources; download it and import the file (or -) instead")
    platform = q.get("platform", "")
    if platform and platform.split("/")[0] != "linux":
        raise InvalidParameter(f"cannot import an image for the platform {platform}")
    tags = _tags(q.get("repo", ""), q.get("tag", ""))
    changes = q.getall("changes", [])
    tmp = _tmp(daemon)
    spooled = await _spool(request, tmp, "import-")
    try:
        image = await asyncio.to_thread(
            importer.import_rootfs, daemon.images, spooled, tmp, source=source,
            changes=changes, message=q.get("message", ""), tags=tags)
    finally:
        spooled.unlink(missing_ok=True)
    daemon.events.log("image", "import", image.id, {"name": image.id})
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    await resp.prepare(request)
    await resp.write(json.dumps({"status": image.id}).encode() + b"\r\n")
    await resp.write_eof()
    return resp


def _platform(request: web.Request) -> platforms.Platform | None:
    """save's and load's platform (API 1.48): a JSON OCI platform, or os/arch[/variant]."""
    text = request.query.get("platform", "")
    if not text:
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise InvalidParameter(f"invalid platform {text!r}") from None
        if not isinstance(value, dict):
            raise InvalidParameter(f"invalid platform {text!r}")
        return platforms.normalize(str(value.get("os") or "linux"),
                                   str(value.get("architecture") or ""),
                                   str(value.get("variant") or ""))
    return platforms.parse(text)


def _tags(repo: str, tag: str) -> list[str]:
    """repo (and tag) as the full reference to tag with; none without a repo."""
    if not repo:
        if tag:
            raise InvalidParameter("a tag was given without a repository")
        return []
    parsed = reference.parse(repo, default_tag=not tag)
    if parsed.digest:
        raise InvalidParameter(f"refusing to create a tag with a digest reference: {repo}")
    if tag:
        if parsed.tag:
            raise InvalidParameter(f"invalid reference format: both {repo} and the tag {tag}")
        parsed = reference.parse(f"{repo}:{tag}")
    return [str(parsed)]


# commit -----------------------------------------------------------------------------------------

async def commit(request: web.Request) -> web.Response:
    """POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes= (docker commit):
    the container's writable layer as a new layer on its image; a running container is paused
    for it unless pause=false, as dockerd does."""
    daemon = _daemon(request)
    q = request.query
    c = daemon.containers.get(q.get("container", ""))
    tags = _tags(q.get("repo", ""), q.get("tag", ""))
    body = bt.check(await read_json(request), COMMIT_CONFIG)
    run_config = dict(c.config)
    run_config.update({k: v for k, v in body.items() if v not in (None, "", [], {}, False)})
    image = daemon.images.resolve(c.record["Image"])
    pause = query_bool(request, "pause") if "pause" in q else True
    paused_here = False
    if pause and c.running and not c.paused:
        await daemon.containers.pause(c)
        paused_here = True
    try:
        async with c.lock:      # not removed while its layer is read
            new = await asyncio.to_thread(
                image_commit.commit, daemon.images, image,
                rootfs.upper_dir(daemon.cfg.data_root, c.id), _tmp(daemon),
                container_id=c.id, container_config=run_config,
                changes=q.getall("changes", []), comment=q.get("comment", ""),
                author=q.get("author", ""), tags=tags)
    finally:
        if paused_here:
            await daemon.containers.unpause(c)
    daemon.events.container(c, "commit", comment=q.get("comment", ""), imageID=new.id,
                            imageRef=reference.familiar(tags[0]) if tags else "")
    return json_response({"Id": new.id}, status=201)


# history ----------------------------------------------------------------------------------------

def history_view(daemon, image: Image) -> list[dict]:
    """dockerd's history: the config's entries newest first, each layer's size measured from
    its unpacked directory. The top entry gets the image's ID and tags, the next its parent's,
    and so on down the parents a build or commit recorded (engine/images/lineage.py), as
    dockerd walks them, one entry per image; the rest are <missing>."""
    entries = list(image.config.get("history") or [])
    if not entries:
        entries = [{"created": image.config.get("created", "")} for _ in image.diff_ids]
    dirs = list(reversed(daemon.images.lower_dirs(image)))      # bottom layer first
    out, layer = [], 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and layer < len(dirs):
            size = disk_usage.LAYER_SIZES.size(dirs[layer])
            layer += 1
        created = entry.get("created") or ""
        out.append({"Id": "<missing>", "Created": _seconds(created),
                    "CreatedBy": entry.get("created_by", ""), "Tags": None, "Size": size,
                    "Comment": entry.get("comment", "")})
    out.reverse()
    for entry, named in zip(out, lineage.ancestry(daemon.images, image)):
        entry["Id"] = named.id
        entry["Tags"] = daemon.images.repo_tags(named) or None
    return out


def _seconds(rfc3339: str) -> int:
    try:
        return timefmt.parse_rfc3339(rfc3339) // 1_000_000_000 if rfc3339 else 0
    except ValueError:
        return 0


async def history(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    image = daemon.images.resolve(request.match_info["name"])
    return json_response(await asyncio.to_thread(history_view, daemon, image))


ROUTES = [
    ("GET", "/images/get", save),
    ("POST", "/images/load", load),
    ("POST", "/commit", commit),
    ("GET", "/images/{name:.+}/get", save_one),
    ("GET", "/images/{name:.+}/history", history),
]
