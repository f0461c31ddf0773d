"""Hostile and broken registries against the pull code (engine/registry/pull.py) and a private
ImageStore: a blob whose digest does not match, a truncated blob, a manifest of the wrong media
type or too large, a registry that closes mid-blob (retried and resumed with Range) or stops
answering (timeout). Each refusal names what is wrong and leaves the store as it was: no image,
no blob, no layer. The fake registry is a small aiohttp app on 127.0.0.1 in the test's loop."""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest
from aiohttp import web

from engine.images import reference
from engine.images.store import ImageStore
from engine.registry import auth, media, pull, transport
from engine.registry.client import DigestMismatch, RegistryError
from engine.store import Store
from tests.helpers.registry import layer_tar


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Serves one image under t/img:v1; the test breaks what it wants through the attributes."""

    def __init__(self, layer_plain: bytes):
        self.layer = gzip.compress(layer_plain, 1, mtime=0)
        cfg = {"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": [_digest(layer_plain)]}}
        self.config = json.dumps(cfg).encode()
        self.manifest_doc = {
            "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": _digest(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": media.OCI_LAYER_GZIP, "digest": _digest(self.layer),
                        "size": len(self.layer)}]}
        self.manifest_type = media.OCI_MANIFEST
        self.manifest_extra = b""
        self.blob_override: bytes | None = None   # served instead of the layer
        self.cut_after: int | None = None          # close the connection after N bytes
        self.cuts_left = 0
        self.hang = False
        self.ranges: list[str] = []

    @property
    def manifest(self) -> bytes:
        return json.dumps(self.manifest_doc).encode() + self.manifest_extra

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/v2/":
            return web.json_response({})
        if "/manifests/" in path:
            return web.Response(body=self.manifest, headers={"Content-Type": self.manifest_type})
        digest = path.rsplit("/", 1)[1]
        if digest == _digest(self.config):
            return web.Response(body=self.config)
        data = self.blob_override if self.blob_override is not None else self.layer
        start = 0
        if "Range" in request.headers:
            self.ranges.append(request.headers["Range"])
            start = int(request.headers["Range"].split("=")[1].split("-")[0])
        resp = web.StreamResponse(status=206 if start else 200,
                                  headers={"Content-Length": str(len(data) - start)})
        await resp.prepare(request)
        if self.hang:
            await asyncio.sleep(3)
        body = data[start:]
        if self.cut_after is not None and self.cuts_left > 0:
            self.cuts_left -= 1
            await resp.write(body[:self.cut_after])
            request.transport.close()
            return resp
        await resp.write(body)
        return resp


async def _serve(fake: FakeRegistry):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port


@pytest.fixture
def images(tmp_path):
    store = Store(tmp_path / "berth.db")
    yield ImageStore(tmp_path, store)
    store.close()


def _state(images: ImageStore) -> tuple:
    return (sorted(os.listdir(images.blobs)), sorted(os.listdir(images.layers_dir)),
            sorted(images.images), sorted(images.tags))


def _pull(images: ImageStore, fake: FakeRegistry, *, read_timeout: float = 60) -> list[dict]:
    msgs: list[dict] = []

    async def emit(m: dict) -> None:
        msgs.append(m)

    async def run():
        runner, port = await _serve(fake)
        try:
            ref = reference.parse(f"127.0.0.1:{port}/t/img:v1")
            msgs.append({"final": await pull.pull(images, transport.RegistryConfig(), ref,
                                                  auth.Credentials(), emit,
                                                  read_timeout=read_timeout)})
        finally:
            await runner.cleanup()
    asyncio.run(run())
    return msgs


LAYER = layer_tar({"bin/hello": os.urandom(200_000)})


def test_a_good_pull_stores_the_image(images):
    fake = FakeRegistry(LAYER)
    msgs = _pull(images, fake)
    assert msgs[-1]["final"].startswith("Status: Downloaded newer image for 127.0.0.1:")
    assert len(images.images) == 1


def test_a_blob_whose_digest_does_not_match_is_refused_and_not_kept(images):
    fake = FakeRegistry(LAYER)
    fake.blob_override = bytearray(fake.layer)
    fake.blob_override[100] ^= 0xFF
    fake.blob_override = bytes(fake.blob_override)
    before = _state(images)
    with pytest.raises(DigestMismatch, match="failed to verify blob sha256:"):
        _pull(images, fake)
    assert _state(images) == before
    assert not list((images.data_root / "content" / "ingest").iterdir())


def test_a_truncated_blob_is_refused_after_retries(images):
    fake = FakeRegistry(LAYER)
    fake.cut_after, fake.cuts_left = 1000, 100
    before = _state(images)
    with pytest.raises(RegistryError, match=r"failed to fetch blob sha256:.*\(after 3 retries\)"):
        _pull(images, fake)
    assert _state(images) == before
    # each retry asked for the rest only: from what had arrived (data aiohttp held when the
    # connection broke may be lost, so the offsets do not shrink, rather than grow each time)
    starts = [int(r[len("bytes="):-1]) for r in fake.ranges]
    assert len(starts) == 3 and starts[0] >= 1000 and starts == sorted(starts)


def test_a_registry_that_closes_mid_blob_is_resumed_with_range(images):
    fake = FakeRegistry(LAYER)
    fake.cut_after, fake.cuts_left = len(fake.layer) // 2, 1
    msgs = _pull(images, fake)
    assert fake.ranges == [f"bytes={len(fake.layer) // 2}-"]
    assert msgs[-1]["final"].startswith("Status: Downloaded newer image")
    assert len(images.images) == 1


def test_a_registry_that_hangs_times_out(images):
    fake = FakeRegistry(LAYER)
    fake.hang = True
    before = _state(images)
    with pytest.raises(RegistryError, match="timeout: the registry stopped answering"):
        _pull(images, fake, read_timeout=0.3)
    assert _state(images) == before


def test_a_manifest_of_the_wrong_media_type_is_refused(images):
    fake = FakeRegistry(LAYER)
    fake.manifest_doc["mediaType"] = "application/vnd.example.not-a-manifest+json"
    fake.manifest_type = "application/vnd.example.not-a-manifest+json"
    before = _state(images)
    with pytest.raises(media.ManifestError, match="unsupported manifest media type"):
        _pull(images, fake)
    assert _state(images) == before


def test_a_layer_of_an_unknown_media_type_is_refused(images):
    fake = FakeRegistry(LAYER)
    fake.manifest_doc["layers"][0]["mediaType"] = "application/x-evil"
    with pytest.raises(media.ManifestError, match="unsupported layer media type"):
        _pull(images, fake)
    assert not images.images


def test_an_oversized_manifest_is_refused(images):
    fake = FakeRegistry(LAYER)
    fake.manifest_extra = b" " * (media.MAX_MANIFEST_BYTES + 1)
    before = _state(images)
    with pytest.raises(media.ManifestError, match="manifest too large"):
        _pull(images, fake)
    assert _state(images) == before


def test_a_diff_id_that_does_not_match_the_layer_leaves_nothing(images):
    fake = FakeRegistry(LAYER)
    cfg = json.loads(fake.config)
    cfg["rootfs"]["diff_ids"] = [_digest(b"something else")]
    fake.config = json.dumps(cfg).encode()
    fake.manifest_doc["config"].update(digest=_digest(fake.config), size=len(fake.config))
    with pytest.raises(Exception, match="diff ID mismatch"):
        _pull(images, fake)
    assert not images.images and not os.listdir(images.layers_dir)
