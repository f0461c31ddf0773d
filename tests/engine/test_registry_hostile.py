"""Hostile and broken registries against the pull code (engine/registry/pull.py) and a private
ImageStore: a blob whose digest does not match, a truncated blob, a manifest of the wrong media
type or too large, a registry that closes mid-blob (retried and resumed with Range) or stops
answering (timeout). Each refusal names what is wrong and leaves the store as it was: no image,
no blob, no layer. The fake registry is a small aiohttp app on 127.0.0.1 in the test's loop."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from engine.images import reference
from engine.images.store import ImageStore
from engine.registry import auth, media, pull, transport
from engine.registry.client import DigestMismatch, RegistryError
from engine.store import Store
from tests.helpers.registry import FakeRegistry, sha256_digest, layer_tar, serve_fake as _serve


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
    cfg["rootfs"]["diff_ids"] = [sha256_digest(b"something else")]
    fake.config = json.dumps(cfg).encode()
    fake.manifest_doc["config"].update(digest=sha256_digest(fake.config), size=len(fake.config))
    with pytest.raises(Exception, match="diff ID mismatch"):
        _pull(images, fake)
    assert not images.images and not os.listdir(images.layers_dir)


def test_two_pulls_of_one_image_at_once_share_the_download(images):
    fake = FakeRegistry(LAYER)
    fake.slow = 0.01
    said: list[list[dict]] = [[], []]

    async def run():
        runner, port = await _serve(fake)
        try:
            ref = reference.parse(f"127.0.0.1:{port}/t/img:v1")

            def emitter(i):
                async def emit(m):
                    said[i].append(m)
                return emit
            return await asyncio.gather(*(pull.pull(images, transport.RegistryConfig(), ref,
                                                    auth.Credentials(), emitter(i))
                                          for i in (0, 1)))
        finally:
            await runner.cleanup()
    finals = asyncio.run(run())
    assert all(f.startswith("Status: Downloaded newer image") for f in finals)
    assert len(images.images) == 1 and not fake.ranges
    downloads = [sum(1 for m in s if m.get("status") == "Verifying Checksum") for s in said]
    assert sorted(downloads) == [0, 1]     # one fetched the layer, the other found it


def test_partial_downloads_left_for_a_day_are_swept_and_younger_ones_kept(images):
    from engine.images import store as image_store
    old = image_store.ingest_path(images, "sha256:" + "a" * 64)
    young = image_store.ingest_path(images, "sha256:" + "b" * 64)
    old.write_bytes(b"x")
    young.write_bytes(b"y")
    os.utime(old, (0, 0))
    _pull(images, FakeRegistry(LAYER))
    assert not old.exists() and young.exists()


def test_a_later_layer_that_fails_takes_back_what_the_pull_added(images):
    """Layer 1 arrives, verifies and is unpacked; layer 2's digest does not match: the pull
    fails and layer 1's blob and unpacked layer go again (no image uses them)."""
    fake = FakeRegistry(LAYER)
    second = layer_tar({"etc/second": b"2" * 1000})
    fake.add_layer(second, corrupt=True)
    before = _state(images)
    with pytest.raises(DigestMismatch):
        _pull(images, fake)
    assert _state(images) == before
