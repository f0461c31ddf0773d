"""/images/...: list, inspect, tag, delete, prune; pull and push (engine/registry) and /auth."""
from __future__ import annotations

import asyncio
import fnmatch
import itertools
from pathlib import Path

from aiohttp import web

from .. import disk_usage, timefmt
from ..errors import Conflict, EngineError, InvalidParameter, NotFound
from ..images import lineage, reference
from ..images import store as image_store
from ..images.store import Image
from ..registry import auth, platforms, progress
from ..registry import login as registry_login
from ..registry import pull as registry_pull
from ..registry import push as registry_push
from ..registry.client import RegistryError
from ..registry.media import ManifestError
from ..registry.transport import RegistryConfig
from ..version import api_at_least
from . import filters as list_filters
from . import image_archives
from .http import JSON, check_filter_keys, json_response, parse_filters, query_bool

IMAGE_FILTERS = ("reference", "dangling", "label", "before", "since", "until")


def _daemon(request: web.Request):
    return request.app["daemon"]


def _containers_using(daemon, image: Image) -> int:
    return sum(1 for c in daemon.containers.all() if c.record["Image"] == image.id)


def _repo_digests(image: Image) -> list[str]:
    return [reference.familiar(d) for d in image_store.repo_digests(image)]


def summary(daemon, image: Image) -> dict:
    tags = daemon.images.repo_tags(image)
    return {
        "Id": image.id,
        "ParentId": lineage.parent_of(image),
        "RepoTags": tags,
        "RepoDigests": _repo_digests(image),
        "Created": image.created // 1_000_000_000,
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": (image.container_config.get("Labels") or {}),
        "Containers": _containers_using(daemon, image),
    }


def inspect_view(daemon, image: Image) -> dict:
    cfg = image.config
    lower = daemon.images.lower_dirs(image)
    container_config = dict(image.container_config)
    for key, default in (("Env", None), ("Cmd", None), ("Entrypoint", None),
                         ("WorkingDir", ""), ("Labels", None), ("User", ""),
                         ("Volumes", None), ("OnBuild", None)):
        container_config.setdefault(key, default)
    return {
        "Id": image.id,
        "RepoTags": daemon.images.repo_tags(image),
        "RepoDigests": _repo_digests(image),
        "Parent": lineage.parent_of(image),
        "Comment": cfg.get("comment", ""),      # an import's or commit's message
        "Created": timefmt.rfc3339nano(image.created),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": container_config,
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", "linux"),
        "Size": image.size,
        "GraphDriver": {"Name": "overlayfs", "Data": _graph_driver_data(lower)},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": timefmt.rfc3339nano(daemon.images.last_tag_time(image))},
    }


def _graph_driver_data(lower: list[str]) -> dict:
    """overlay2's keys for what berth has: the top layer's dir as UpperDir and the ones below
    as LowerDir (top first); image layers have no work or merged dir here, so none is named."""
    data = {"UpperDir": lower[0]} if lower else {}
    if len(lower) > 1:
        data["LowerDir"] = ":".join(lower[1:])
    return data


def _reference_match(daemon, image: Image, patterns: list[str]) -> bool:
    for tag in daemon.images.repo_tags(image):
        name = tag.rsplit(":", 1)[0]
        for p in patterns:
            if fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(name, p):
                return True
    return False


def _created_bounds(daemon, filters: dict[str, list[str]]) -> tuple[int | None, int | None]:
    """dockerd's image list bounds: `before` (an image: only older ones) and `until` (a time
    or duration: only images created before it) resolve to the earliest bound; `since` (an
    image: only newer ones) to the latest. Both in ns; an unknown image is 404."""
    before = since = None
    for ref in filters.get("before", []):
        created = daemon.images.resolve(ref).created
        before = created if before is None else min(before, created)
    for value in filters.get("until", []):
        when = list_filters.timestamp_ns(value)
        before = when if before is None else min(before, when)
    for ref in filters.get("since", []):
        created = daemon.images.resolve(ref).created
        since = created if since is None else max(since, created)
    return before, since


def _labels_match(image: Image, selectors: list[str]) -> bool:
    labels = image.container_config.get("Labels") or {}
    return all(list_filters.label_matches(labels, v) for v in selectors)


async def list_images(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    filters = parse_filters(request)
    check_filter_keys(filters, IMAGE_FILTERS)
    dangling_only = list_filters.bool_filter(filters, "dangling", False)
    everything = query_bool(request, "all")
    before, since = _created_bounds(daemon, filters)
    parents = lineage.with_children(daemon.images)
    out = []
    for image in daemon.images.list():
        tags = daemon.images.repo_tags(image)
        # an untagged image a build step made another on: shown with -a only, never dangling
        intermediate = (not tags and not image_store.repo_digests(image)
                        and image.id in parents)
        if intermediate and (dangling_only or not everything):
            continue
        if before is not None and not image.created < before:
            continue
        if since is not None and not image.created > since:
            continue
        if "reference" in filters and not _reference_match(daemon, image, filters["reference"]):
            continue
        if dangling_only and tags:
            continue
        if "label" in filters and not _labels_match(image, filters["label"]):
            continue
        out.append(summary(daemon, image))
    return json_response(out)


PRUNE_FILTERS = ("dangling", "label", "label!", "until")


async def prune(request: web.Request) -> web.Response:
    """POST /images/prune (docker image prune [-a]): images no container uses, only the
    untagged ones unless dangling=false; filters label, label!, until. SpaceReclaimed is the
    bytes of the unpacked layers that went with them (measured before, counted once gone)."""
    daemon = _daemon(request)
    filters = parse_filters(request)
    check_filter_keys(filters, PRUNE_FILTERS)
    dangling_only = list_filters.bool_filter(filters, "dangling", True)
    until = None
    for value in filters.get("until", []):
        until = list_filters.timestamp_ns(value)
    used = {c.record["Image"] for c in daemon.containers.all()}
    parents = lineage.with_children(daemon.images)
    deleted: list[dict] = []
    reclaimed = 0
    for image in daemon.images.list():
        if image.id not in daemon.images.images:
            continue                    # gone with a child pruned before it
        tags = daemon.images.repo_tags(image)
        # an image another was built on goes with its last child, not before it
        if image.id in used or image.id in parents or (dangling_only and tags):
            continue
        if until is not None and not image.created < until:
            continue
        labels = image.container_config.get("Labels") or {}
        if not _labels_match(image, filters.get("label", [])):
            continue
        if any(list_filters.label_matches(labels, v) for v in filters.get("label!", [])):
            continue
        dirs = [Path(d) for d in daemon.images.lower_dirs(image)]
        sizes = await asyncio.to_thread(lambda: {d: disk_usage.LAYER_SIZES.size(d)
                                                 for d in dirs})
        for ref in daemon.images.repo_tags(image):
            daemon.images.untag(str(reference.parse(ref)))
            deleted.append({"Untagged": ref})
            daemon.events.log("image", "untag", image.id, {"name": ref})
        daemon.images.delete(image)
        deleted.append({"Deleted": image.id})
        daemon.events.log("image", "delete", image.id, {"name": image.id})
        _remove_unused_parents(daemon, image, deleted)
        reclaimed += sum(size for d, size in sizes.items() if not d.exists())
    daemon.events.log("image", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


# Go's zero container.Config, as dockerd shows the ContainerConfig of an image that no build
# container made (BuildKit's, a commit's, an import's, berth's own)
EMPTY_CONTAINER_CONFIG = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def _with_legacy_build_fields(view: dict, image: Image) -> dict:
    """dockerd before API 1.45 also shows the build container of the image (Container) and
    its config (ContainerConfig, the image JSON's container_config), after Created; clients of
    that age read them: docker-compose 1.29 recreates a service's container by merging
    ContainerConfig.Volumes with Config.Volumes, and fails on a KeyError without it."""
    legacy = {"Container": image.config.get("container") or "",
              "ContainerConfig": image.config.get("container_config")
              or dict(EMPTY_CONTAINER_CONFIG)}
    out = {}
    for key, value in view.items():
        out[key] = value
        if key == "Created":
            out.update(legacy)
    return out


async def inspect(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    image = daemon.images.resolve(request.match_info["name"])
    view = inspect_view(daemon, image)
    if not api_at_least(request["api_version"], "1.45"):
        view = _with_legacy_build_fields(view, image)
    return json_response(view)


def _registry_config(daemon) -> RegistryConfig:
    return RegistryConfig(insecure=list(getattr(daemon.cfg, "insecure_registries", None) or []),
                          mirrors=list(getattr(daemon.cfg, "registry_mirrors", None) or []))


class _RegistryFailure(EngineError):
    """A registry's refusal or a failed transfer, with the status dockerd would give it."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _failure(e: Exception) -> EngineError:
    if isinstance(e, EngineError):
        return e
    if isinstance(e, RegistryError):
        return _RegistryFailure(str(e), e.status if 400 <= e.status < 600 else 500)
    if isinstance(e, ManifestError):
        return _RegistryFailure(str(e), 500)
    return _RegistryFailure(f"{e}", 500)


_REGISTRY_ERRORS = (RegistryError, ManifestError, EngineError,
                    OSError, ValueError)


class _Stream:
    """The JSON-lines answer of a pull or push, started by its first message: an error before
    it is the API's error status (as dockerd: 404 for an image the registry does not have),
    an error after it the stream's last line."""

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
        except (ConnectionResetError, ConnectionError):
            # the client went away (Ctrl-C): the transfer goes on, so that what was fetched
            # is kept whole and a later pull finds it
            self.gone = True

    async def fail(self, e: Exception) -> web.StreamResponse:
        err = _failure(e)
        if self.resp is None:
            raise err
        await self.emit(progress.error(err.message))
        return await self.close()

    async def close(self) -> web.StreamResponse:
        if self.resp is None:
            await self.emit({"status": ""})
        if not self.gone:
            try:
                await self.resp.write_eof()
            except ConnectionError:
                pass
        return self.resp


_TRANSFERS: set[asyncio.Task] = set()


async def _outliving_the_client(work):
    """Run a pull as its own task: a client that goes away (the handler is cancelled) does not
    cancel it, so what it fetched is stored whole for the next pull (its messages then go
    nowhere)."""
    task = asyncio.ensure_future(work)
    _TRANSFERS.add(task)
    task.add_done_callback(_transfer_done)
    return await asyncio.shield(task)


def _transfer_done(task: asyncio.Task) -> None:
    _TRANSFERS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        pass    # retrieved: its client, if still there, was told; nobody else is waiting


def _pull_reference(name: str, tag: str) -> tuple[reference.Reference, bool]:
    """fromImage and tag as the CLI sends them (tag may be a digest) -> (reference, all tags):
    a name with neither tag nor digest is every tag of the repository, as dockerd reads it."""
    if not name:
        raise InvalidParameter("fromImage must be given: the image to pull")
    if tag:
        joined = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
        if "@" in name or (":" in name.rsplit("/", 1)[-1] and not tag.startswith("sha256:")):
            joined = name
        return reference.parse(joined), False
    ref = reference.parse(name, default_tag=False)
    return ref, not (ref.tag or ref.digest)


async def create(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromImage=&tag=&platform= (docker pull): from the registry, with
    dockerd's progress stream; no tag (pull --all-tags) pulls every tag."""
    daemon = _daemon(request)
    if request.query.get("fromSrc"):
        return await image_archives.import_image(request)      # docker import
    ref, all_tags = _pull_reference(request.query.get("fromImage", ""),
                                    request.query.get("tag", ""))
    plat = request.query.get("platform", "")
    want = platforms.parse(plat) if plat else None
    creds = auth.from_header(request.headers.get("X-Registry-Auth"))
    stream = _Stream(request)
    if all_tags:
        work = registry_pull.pull_all_tags(daemon.images, _registry_config(daemon), ref, creds,
                                           stream.emit, platform=want)
    else:
        work = registry_pull.pull(daemon.images, _registry_config(daemon), ref, creds,
                                  stream.emit, platform=want)
    try:
        final = await _outliving_the_client(work)
    except _REGISTRY_ERRORS as e:
        return await stream.fail(e)
    await stream.emit({"status": final})
    shown = ref.familiar()
    daemon.events.log("image", "pull", shown, {"name": shown})
    return await stream.close()


async def push(request: web.Request) -> web.StreamResponse:
    """POST /images/{name}/push?tag= (docker push): the tag, or every local tag of the
    repository when none is given."""
    daemon = _daemon(request)
    name, tag_ = request.match_info["name"], request.query.get("tag", "")
    repo = reference.parse(name, default_tag=False)
    if repo.digest:
        raise InvalidParameter(f"cannot push a digest reference: {name}")
    if tag_:
        refs = [reference.parse(f"{repo.repository}:{tag_}")]
    elif repo.tag:
        refs = [repo]
    else:
        refs = [reference.parse(r) for r in sorted(daemon.images.tags)
                if reference.parse(r).repository == repo.repository]
    if not refs or any(daemon.images.find(str(r)) is None for r in refs):
        missing = next((r for r in refs if daemon.images.find(str(r)) is None), None)
        raise NotFound(f"An image does not exist locally with the tag: "
                       f"{reference.familiar((missing or repo).repository)}")
    creds = auth.from_header(request.headers.get("X-Registry-Auth"))
    stream = _Stream(request)
    await stream.emit({"status": f"The push refers to repository [{repo.repository}]"})
    for ref in refs:
        image = daemon.images.resolve(str(ref))
        try:
            aux = await registry_push.push(daemon.images, _registry_config(daemon), ref, image,
                                           creds, stream.emit)
        except _REGISTRY_ERRORS as e:
            return await stream.fail(e)
        await stream.emit({"progressDetail": {}, "aux": aux})
        daemon.events.log("image", "push", ref.familiar(), {"name": ref.familiar()})
    return await stream.close()


async def auth_login(request: web.Request) -> web.Response:
    """POST /auth (docker login): checks the credentials against the registry."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidParameter("invalid JSON body: an AuthConfig is expected") from None
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON body: an AuthConfig is expected")
    creds = auth.from_auth_config(body)
    try:
        status = await registry_login.login(_registry_config(_daemon(request)),
                                            body.get("serveraddress") or "", creds)
    except RegistryError as e:
        raise _RegistryFailure(str(e), 401 if e.status in (401, 403) else e.status) from None
    return json_response({"Status": status, "IdentityToken": ""})


async def tag(request: web.Request) -> web.Response:
    """POST /images/{name}/tag?repo=R&tag=T (docker tag)."""
    daemon = _daemon(request)
    image = daemon.images.resolve(request.match_info["name"])
    repo, tag_ = request.query.get("repo", ""), request.query.get("tag", "")
    if not repo:
        raise InvalidParameter("repository name (repo) must be given")
    ref = f"{repo}:{tag_}" if tag_ else repo
    daemon.images.tag(image, ref)
    daemon.events.log("image", "tag", image.id, {"name": reference.parse(ref).familiar()})
    return web.Response(status=201)


async def delete(request: web.Request) -> web.Response:
    """DELETE /images/{name} (docker rmi), by dockerd's rules: a name is untagged, and the image
    goes once nothing names it and no container uses it; a container that uses an image keeps
    it (a name is untagged only with force, an ID never while one runs)."""
    daemon = _daemon(request)
    name = request.match_info["name"].strip()
    force = query_bool(request, "force")
    image = daemon.images.resolve(name)
    users = [c for c in daemon.containers.all() if c.record["Image"] == image.id]
    tags = [str(reference.parse(t)) for t in daemon.images.repo_tags(image)]
    short = image.id[7:19]
    has_children = image.id in lineage.with_children(daemon.images)
    by_id = name.startswith("sha256:") or (reference.id_prefix(name) is not None
                                           and not daemon.images.has_tag(name))
    if by_id:
        if has_children:
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image has "
                           f"dependent child images")
        running = [c for c in users if c.running]
        if running:
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is "
                           f"being used by running container {running[0].id[:12]}")
        if not force and len(tags) > 1:
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                           f"referenced in multiple repositories")
        if not force and users:
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                           f"being used by stopped container {users[0].id[:12]}")
        untag = tags
    else:
        if not force and len(tags) == 1 and users:
            raise Conflict(f'conflict: unable to remove repository reference "{name}" (must '
                           f"force) - container {users[0].id[:12]} is using its referenced "
                           f"image {short}")
        untag = [str(reference.parse(name))]
    out = []
    for ref in untag:
        if "@" in ref:      # a digest reference: the image's record of that pull or push
            image_store.remove_repo_digest(daemon.images, image, ref)
        else:
            daemon.images.untag(ref)
        shown = reference.familiar(ref)
        out.append({"Untagged": shown})
        daemon.events.log("image", "untag", image.id, {"name": shown})
    if not daemon.images.repo_tags(image) and not users and not has_children:
        # the digest references go with the image, each said as dockerd says it
        for ref in image_store.repo_digests(image):
            out.append({"Untagged": reference.familiar(ref)})
        daemon.images.delete(image)
        out.append({"Deleted": image.id})
        daemon.events.log("image", "delete", image.id, {"name": image.id})
        _remove_unused_parents(daemon, image, out)
    return json_response(out)


def _remove_unused_parents(daemon, image: Image, out: list[dict]) -> None:
    """As dockerd's rmi and prune: the build steps a removed image was made on go with it, up
    the chain, while each is untagged, unused by any container and the parent of nothing else."""
    used = {c.record["Image"] for c in daemon.containers.all()}
    for parent in itertools.islice(lineage.ancestry(daemon.images, image), 1, None):
        if (daemon.images.repo_tags(parent) or image_store.repo_digests(parent)
                or parent.id in used or parent.id in lineage.with_children(daemon.images)):
            return
        daemon.images.delete(parent)
        out.append({"Deleted": parent.id})
        daemon.events.log("image", "delete", parent.id, {"name": parent.id})


ROUTES = [
    ("GET", "/images/json", list_images),
    ("POST", "/images/prune", prune),
    ("POST", "/images/create", create),
    ("POST", "/images/{name:.+}/push", push),
    ("POST", "/auth", auth_login),
    ("GET", "/images/{name:.+}/json", inspect),
    ("POST", "/images/{name:.+}/tag", tag),
    ("DELETE", "/images/{name:.+}", delete),
]
