"""A pull: manifest (or index, then the platform's manifest), config, and layers downloaded
in parallel, each verified as it streams in and unpacked as soon as it is in (its own
directory), the image recorded last, after every layer. A pull that fails takes back the blobs
and layers it added (unless an image or another running pull uses them).

Progress goes out as dockerd's messages through emit(). "Image is up to date" is said only when
the registry's manifest digest for the reference is one this image was pulled as: the registry
is always asked.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable

from ..errors import InvalidParameter
from ..images import layers as layer_ids
from ..images import reference, store as image_store
from ..images.layers import LayerError
from ..images.store import ImageStore
from . import media, platforms, progress
from .auth import Credentials
from .client import Client, RegistryError
from .transport import RegistryConfig

log = logging.getLogger("berthd.registry")
Emit = Callable[[dict], Awaitable[None]]
MAX_CONCURRENT_DOWNLOADS = 3          # dockerd's default --max-concurrent-downloads
MAX_CONCURRENT_UNPACKS = 2            # beside the downloads: gzip and hashing release the GIL
PROGRESS_EVERY_S = 0.1


def short(digest: str) -> str:
    return digest.split(":", 1)[1][:12]


async def pull(images: ImageStore, config: RegistryConfig, ref: reference.Reference,
               creds: Credentials, emit: Emit, *, platform: platforms.Platform | None = None,
               read_timeout: float = 60) -> str:
    """Pull ref (a tag or a digest) into the store; returns the final status line."""
    await asyncio.to_thread(image_store.sweep_ingest, images)
    for mirror in config.mirror_endpoints(ref.domain):
        said = False

        async def noted(msg: dict) -> None:
            nonlocal said
            said = True
            await emit(msg)
        try:
            async with Client(config, ref.domain, ref.path, creds, read_timeout=read_timeout,
                              endpoint=mirror) as client:
                return await _pull(images, client, ref, platform, noted)
        except (RegistryError, media.ManifestError) as e:
            if said:        # it had begun: its error is the pull's
                raise
            log.info("mirror %s could not serve %s (%s): trying the next", mirror.url, ref, e)
    async with Client(config, ref.domain, ref.path, creds, read_timeout=read_timeout) as client:
        return await _pull(images, client, ref, platform, emit)


async def pull_all_tags(images: ImageStore, config: RegistryConfig, ref: reference.Reference,
                        creds: Credentials, emit: Emit, *,
                        platform: platforms.Platform | None = None) -> str:
    """docker pull --all-tags: every tag of the repository (tags/list), one after another."""
    async with Client(config, ref.domain, ref.path, creds) as client:
        tags = sorted(await client.tags())
        if not tags:
            raise RegistryError(f"no tags in {reference.familiar(ref.repository)}", 404)
        finals = []
        for tag in tags:
            finals.append(await _pull(images, client,
                                      reference.Reference(ref.domain, ref.path, tag),
                                      platform, emit))
    shown = reference.familiar(ref.repository)
    # dockerd's closing line names the repository: newer if any tag brought something
    if all(f.startswith("Status: Image is up to date") for f in finals):
        return f"Status: Image is up to date for {shown}"
    return f"Status: Downloaded newer image for {shown}"


async def _pull(images: ImageStore, client: Client, ref: reference.Reference,
                asked: platforms.Platform | None, emit: Emit) -> str:
    """One reference. Nothing is said before the manifest is had, so that a missing image is
    the API's error status rather than a stream's last line (as dockerd)."""
    want = asked or platforms.host()
    data, ctype, digest = await client.get_manifest(ref.digest or ref.tag)
    kind, doc = media.parse_manifest(data, ctype)
    # dockerd names the repository by its path in the registry: "Pulling from library/busybox"
    await emit(progress.status(f"Pulling from {ref.path}", ref.digest or ref.tag))
    repo_digest = f"{ref.repository}@{digest}"
    if kind in media.INDEXES:
        entry = platforms.choose(doc["manifests"], want)
        data, ctype, _ = await client.get_manifest(entry["digest"])
        kind, doc = media.parse_manifest(data, ctype)
        if kind not in media.MANIFESTS:
            raise media.ManifestError(f"index entry {entry['digest']} is not an image manifest")
    shown = reference.familiar(str(ref))
    # name:tag@digest is pulled by its digest, as dockerd, and tagged by nothing
    tags = [str(ref)] if ref.tag and not ref.digest else []
    local = images.find(str(ref)) if ref.tag and not ref.digest else \
        _by_repo_digest(images, repo_digest)
    if local is not None and repo_digest in image_store.repo_digests(local) and \
            _same_platform(local.config, want) and all(
            image_store.has_layer(images, c) for c in layer_ids.chain_ids(local.diff_ids)):
        await emit(progress.status(f"Digest: {digest}"))
        return f"Status: Image is up to date for {shown}"

    config_desc = doc["config"]
    if config_desc.get("size", 0) > media.MAX_CONFIG_BYTES:
        raise media.ManifestError(f"image config too large: {config_desc['size']} bytes")
    config_bytes = await _fetch_small_blob(images, client, config_desc)
    cfg = json.loads(config_bytes)
    if asked is not None and not _same_platform(cfg, want):
        # an image of one platform only, and not the one asked for: dockerd 20.10's refusal
        raise InvalidParameter(f"image with reference {shown} was found but does not match "
                               f"the specified platform: wanted {want}, actual: "
                               f"{_platform_of(cfg)}")
    diff_ids = (cfg.get("rootfs") or {}).get("diff_ids") or []
    layer_descs = doc["layers"]
    if len(diff_ids) != len(layer_descs):
        raise media.ManifestError(f"image config has {len(diff_ids)} diff ids for "
                                  f"{len(layer_descs)} layers")
    for desc in layer_descs:
        if desc.get("mediaType", "").endswith("+zstd") and not _zstd_available():
            raise media.ManifestError(
                f"layer {desc['digest']} is zstd-compressed and this berthd cannot decompress "
                "zstd (the python zstandard module is not installed)")
    chains = layer_ids.chain_ids(diff_ids)
    todo: list[tuple[dict, str, str]] = []
    fetched: list[str] = []           # blobs this pull adds: removed on failure, with its layers
    unpacks: list[asyncio.Future] = []
    downloads: dict[str, asyncio.Future] = {}
    sem = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
    unpacking = asyncio.Semaphore(MAX_CONCURRENT_UNPACKS)
    needs = {*chains, *(d["digest"] for d in layer_descs)}
    _IN_USE.update(needs)             # from here on, a failing pull elsewhere leaves them be

    async def fetch_and_unpack(desc: dict, chain: str, diff_id: str) -> None:
        """Each layer unpacks as soon as it is in, beside the others (each is its own
        directory): the order matters only to the messages, said in layer order below."""
        await _download(images, client, desc, sem, emit, fetched)
        async with unpacking:
            await emit(progress.bar("Extracting", short(desc["digest"]), 0,
                                    desc.get("size", 0)))
            # shielded: a thread cannot be stopped, so a failed pull waits for it (below)
            unpacks.append(asyncio.ensure_future(asyncio.to_thread(
                image_store.unpack_blob_layer, images, desc["digest"], diff_id, chain)))
            try:
                await asyncio.shield(unpacks[-1])
            except (LayerError, ValueError, OSError, EOFError) as e:
                raise InvalidParameter(f"failed to register layer {desc['digest']}: {e}") \
                    from None

    try:
        for desc, chain, diff_id in zip(layer_descs, chains, diff_ids):
            if image_store.has_layer(images, chain):
                await emit(progress.status("Already exists", short(desc["digest"])))
            else:
                await emit(progress.status("Pulling fs layer", short(desc["digest"])))
                todo.append((desc, chain, diff_id))
        for desc, _, _ in todo[MAX_CONCURRENT_DOWNLOADS:]:
            await emit(progress.status("Waiting", short(desc["digest"])))
        downloads.update((desc["digest"], asyncio.ensure_future(
            fetch_and_unpack(desc, chain, diff_id))) for desc, chain, diff_id in todo)
        for desc in layer_descs:
            if desc["digest"] not in downloads:
                continue
            await downloads[desc["digest"]]
            sid = short(desc["digest"])
            await emit(progress.bar("Extracting", sid, desc.get("size", 0),
                                    desc.get("size", 0)))
            await emit(progress.status("Pull complete", sid))
        image_store.add_pulled_image(images, data, config_bytes, repo_digest, tags)
    except BaseException:
        for task in downloads.values():
            task.cancel()
        await asyncio.gather(*downloads.values(), return_exceptions=True)
        await asyncio.gather(*unpacks, return_exceptions=True)
        _IN_USE.subtract(needs)
        image_store.forget_unused(images, [chain for _, chain, _ in todo], fetched,
                                  keep=set(+_IN_USE))
        raise
    _IN_USE.subtract(needs)
    await emit(progress.status(f"Digest: {digest}"))
    return f"Status: Downloaded newer image for {shown}"


async def _download(images: ImageStore, client: Client, desc: dict, sem: asyncio.Semaphore,
                    emit: Emit, fetched: list[str]) -> None:
    digest, size, sid = desc["digest"], int(desc.get("size", 0)), short(desc["digest"])
    async with sem, _blob_lock(images, digest):
        if image_store.has_blob(images, digest):      # in the store, or another pull's now
            await emit(progress.status("Download complete", sid))
            return
        last = [0.0]

        async def tick(current: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or current == total:
                last[0] = now
                await emit(progress.bar("Downloading", sid, current, total))

        partial = image_store.ingest_path(images, digest)
        await client.fetch_blob(digest, size, partial, tick)
        await emit(progress.status("Verifying Checksum", sid))
        image_store.commit_blob(images, partial, digest)
        fetched.append(digest)
        await emit(progress.status("Download complete", sid))


async def _fetch_small_blob(images: ImageStore, client: Client, desc: dict) -> bytes:
    digest = desc["digest"]
    if image_store.has_blob(images, digest):
        return images.blob_path(digest).read_bytes()
    async with _blob_lock(images, digest):
        partial = image_store.ingest_path(images, digest)
        await client.fetch_blob(digest, int(desc.get("size", 0)), partial)
        data = partial.read_bytes()
        partial.unlink()
    return data


_BLOB_LOCKS: dict[str, asyncio.Lock] = {}
# layers and blobs that running pulls need: a failed pull does not remove what another uses
_IN_USE: collections.Counter = collections.Counter()


def _blob_lock(images: ImageStore, digest: str) -> asyncio.Lock:
    """One download of a blob at a time (two pulls of one image share its ingest file): the
    second waits and then finds the blob in the store."""
    key = f"{images.data_root}:{digest}"
    lock = _BLOB_LOCKS.get(key)
    if lock is None:
        lock = _BLOB_LOCKS[key] = asyncio.Lock()
    return lock


def _zstd_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("zstandard") is not None   # optional: zstd layers only


def _by_repo_digest(images: ImageStore, repo_digest: str):
    for image in images.list():
        if repo_digest in image_store.repo_digests(image):
            return image
    return None


def _platform_of(cfg: dict) -> str:
    return f"{cfg.get('os', '')}/{cfg.get('architecture', '')}"


def _same_platform(cfg: dict, want: platforms.Platform) -> bool:
    got = platforms.normalize(cfg.get("os", ""), cfg.get("architecture", ""),
                              cfg.get("variant", ""))
    return (got.os, got.architecture) == (want.os, want.architecture)
