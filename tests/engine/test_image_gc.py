"""Garbage collection of the image store: deleting an image removes its unpacked layers and
blobs unless another image uses them; a tag move leaves a dangling image that prune removes
with what only it used; the built-in images are ordinary ones, seeded once per data root."""
from __future__ import annotations

import io
import json
import tarfile
import urllib.parse

import pytest

from engine.images import builtin, layers
from engine.images.store import ImageStore
from engine.store import Store


@pytest.fixture
def images(tmp_path):
    store = Store(tmp_path / "berth.db")
    yield ImageStore(tmp_path, store)
    store.close()


def _layer(tmp_path, name: str, data: bytes):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / f"{name}.tar"
    path.write_bytes(buf.getvalue())
    return path, layers.diff_id_of(path)


def _config(diff_ids):
    return {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def _blobs(images):
    return {p.name for p in images.blobs.iterdir()}


def _layer_dirs(images):
    return {p.name for p in images.layers_dir.iterdir()}


def test_shared_layers_and_blobs_stay_until_the_last_image_goes(images, tmp_path):
    base_file, base_diff = _layer(tmp_path, "base", b"base")
    base = images.import_image(_config([base_diff]), [base_file], ["gc-base:1"])
    top_file, top_diff = _layer(tmp_path, "top", b"top")
    child = images.import_image(_config([base_diff, top_diff]), [top_file], ["gc-child:1"],
                                base_layers=images.layer_digests(base))
    base_blobs, child_blobs = images.blobs_of(base), images.blobs_of(child)
    assert base_diff in child_blobs and len(_layer_dirs(images)) == 2
    images.delete(base)
    assert {d[7:] for d in child_blobs} <= _blobs(images)
    assert {d[7:] for d in base_blobs - child_blobs}.isdisjoint(_blobs(images))
    assert len(_layer_dirs(images)) == 2            # child's chain uses the base layer
    assert (images.layer_dir(base_diff) / "base").read_bytes() == b"base"
    images.delete(child)
    assert _blobs(images) == set() and _layer_dirs(images) == set()


def test_builtin_images_are_seeded_once(images, tmp_path):
    builtin.seed(images, tmp_path / "tmp")
    busybox = images.resolve("busybox")
    assert images.has_tag("hello-world")
    images.delete(busybox)
    assert not (images.blob_path(busybox.id)).exists()
    builtin.seed(images, tmp_path / "tmp")           # the next start: not made again
    assert images.find("busybox") is None and images.has_tag("hello-world")


def _import(daemon, name: str, data: bytes) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("file")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    p = daemon.docker("import", "-", f"{name}:x", input=buf.getvalue())
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def test_prune_removes_the_dangling_image_of_a_tag_move(daemon):
    first = _import(daemon, "gc-moved", b"first")
    first_layer = daemon.api("GET", f"/images/{first}/json").json()["RootFS"]["Layers"][0]
    second = _import(daemon, "gc-moved", b"second")
    assert first != second
    listed = {i["Id"]: i["RepoTags"] for i in daemon.api("GET", "/images/json").json()}
    assert listed[first] == []                                  # dangling now
    blobs = daemon.data_root / "content/blobs/sha256"
    assert (blobs / first_layer[7:]).is_file()
    f = urllib.parse.quote(json.dumps({"dangling": ["true"]}))
    r = daemon.api("POST", f"/images/prune?filters={f}").json()
    try:
        assert {"Deleted": first} in r["ImagesDeleted"] and r["SpaceReclaimed"] == 5
        assert not (blobs / first_layer[7:]).exists() and not (blobs / first[7:]).exists()
        assert not (daemon.data_root / "overlay/layers" / first_layer[7:]).exists()
        assert daemon.api("GET", "/images/gc-moved:x/json").json()["Id"] == second
    finally:
        daemon.api("DELETE", "/images/gc-moved:x")
    assert not (blobs / second[7:]).exists()


def test_prune_all_with_label_and_until_filters(daemon):
    """prune -a with label= removes the unused labelled image only; until= keeps newer ones;
    an image a container uses stays."""
    def imported(name, label):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = len(name)
            tar.addfile(info, io.BytesIO(name.encode()))
        p = daemon.docker("import", "-c", f"LABEL which={label}", "-", f"{name}:x",
                          input=buf.getvalue())
        assert p.returncode == 0, p.stderr
        return p.stdout.decode().strip()
    a, b, used = imported("gc-a", "a"), imported("gc-b", "b"), imported("gc-used", "a")
    cid = daemon.api("POST", "/containers/create", {"Image": "gc-used:x", "Cmd": ["x"]}).json()
    try:
        old = urllib.parse.quote(json.dumps({"dangling": ["false"], "until": ["1h"],
                                             "label": ["which=a"]}))
        r = daemon.api("POST", f"/images/prune?filters={old}").json()
        assert r["ImagesDeleted"] is None                   # all made just now
        f = urllib.parse.quote(json.dumps({"dangling": ["false"], "label": ["which=a"]}))
        r = daemon.api("POST", f"/images/prune?filters={f}").json()
        assert r["ImagesDeleted"] == [{"Untagged": "gc-a:x"}, {"Deleted": a}]
        assert daemon.api("GET", f"/images/{b}/json").status == 200
        assert daemon.api("GET", f"/images/{used}/json").status == 200
    finally:
        daemon.api("DELETE", f"/containers/{cid['Id']}?force=1")
        for ref in ("gc-a:x", "gc-b:x", "gc-used:x"):
            daemon.api("DELETE", f"/images/{ref}")
