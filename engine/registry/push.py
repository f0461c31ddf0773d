"""A push: each layer blob unless the registry has it (HEAD) or can mount it from another
repository of the same registry the image came from, then the config and the manifest, as
stored (so that a pulled image keeps its digest). Progress as dockerd's messages."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ..images import reference, store as image_store
from ..images.store import Image, ImageStore
from . import media, progress
from .auth import Credentials
from .client import Client
from .pull import MAX_CONCURRENT_DOWNLOADS, PROGRESS_EVERY_S, Emit, short
from .transport import RegistryConfig

MAX_CONCURRENT_UPLOADS = 5            # dockerd's default --max-concurrent-uploads


async def push(images: ImageStore, config: RegistryConfig, ref: reference.Reference,
               image: Image, creds: Credentials, emit: Emit, *, chunk: int = 64 << 20) -> dict:
    """Push image as ref (which has a tag); returns the aux {Tag, Digest, Size}."""
    manifest_bytes = images.blob_path(image.record["Manifest"]).read_bytes()
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType") or media.OCI_MANIFEST
    diff_ids = image.diff_ids
    descs = manifest["layers"]
    sources = [d.split("@", 1)[0] for d in image_store.repo_digests(image)]
    mount_from = [reference.parse(s, default_tag=False).path for s in sources
                  if s.startswith(ref.domain + "/") and s != ref.repository]
    async with Client(config, ref.domain, ref.path, creds, actions="pull,push") as client:
        ids = [short(d) for d in diff_ids]
        for sid in reversed(ids):
            await emit(progress.status("Preparing", sid))
        sem = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)
        for sid in reversed(ids[:max(0, len(ids) - MAX_CONCURRENT_UPLOADS)]):
            await emit(progress.status("Waiting", sid))
        tasks = [asyncio.ensure_future(_push_layer(images, client, desc, sid, mount_from, sem,
                                                   emit, chunk))
                 for desc, sid in zip(reversed(descs), reversed(ids))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        cfg_digest = manifest["config"]["digest"]
        if not await client.blob_exists(cfg_digest):
            path = images.blob_path(cfg_digest)
            await client.upload_blob(cfg_digest, path, path.stat().st_size, chunk=chunk)
        digest = await client.put_manifest(ref.tag, manifest_bytes, media_type)
    image_store.add_repo_digest(images, image, f"{ref.repository}@{digest}")
    await emit(progress.status(f"{ref.tag}: digest: {digest} size: {len(manifest_bytes)}"))
    return {"Tag": ref.tag, "Digest": digest, "Size": len(manifest_bytes)}


async def _push_layer(images: ImageStore, client: Client, desc: dict, sid: str,
                      mount_from: list[str], sem: asyncio.Semaphore, emit: Emit,
                      chunk: int) -> None:
    digest = desc["digest"]
    path: Path = images.blob_path(digest)
    async with sem:
        if await client.blob_exists(digest):
            await emit(progress.status("Layer already exists", sid))
            return
        location = None
        for source in mount_from:
            location = await client.mount_blob(digest, source)
            if location is None:
                await emit(progress.status(f"Mounted from {source}", sid))
                return
        size = path.stat().st_size
        last = [0.0]

        async def tick(current: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or current == total:
                last[0] = now
                await emit(progress.bar("Pushing", sid, current, total))

        await emit(progress.bar("Pushing", sid, 0, size))
        await client.upload_blob(digest, path, size, location, tick, chunk=chunk)
        await emit(progress.status("Pushed", sid))


__all__ = ["push", "MAX_CONCURRENT_DOWNLOADS"]
