"""docker load's reading of archives: broken and hostile archives are refused with an error
naming what is wrong, and leave the store as it was; -c changes as dockerd applies them."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from engine.errors import InvalidParameter
from engine.images import archive_load, dockerfile_changes
from engine.images.store import ImageStore
from engine.store import Store


@pytest.fixture
def images(tmp_path):
    store = Store(tmp_path / "berth.db")
    yield ImageStore(tmp_path, store)
    store.close()


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    return buf.getvalue()


LAYER = _layer()
DIFF = "sha256:" + hashlib.sha256(LAYER).hexdigest()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [DIFF]}}).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _archive(tmp_path, files: dict, links: dict | None = None):
    path = tmp_path / "archive.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def _oci(config=CONFIG, layer=LAYER, layer_digest=None, index=None):
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": layer_digest or _sha(layer),
                                       "size": len(layer)}]}).encode()
    index = index or {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
        "size": len(manifest), "annotations": {"io.containerd.image.name":
                                               "docker.io/library/oci-test:1"}}]}
    return {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "index.json": json.dumps(index).encode(),
            f"blobs/sha256/{_sha(manifest)[7:]}": manifest,
            f"blobs/sha256/{_sha(config)[7:]}": config,
            f"blobs/sha256/{(layer_digest or _sha(layer))[7:]}": layer}


def _state(images, root):
    def tree(p):
        return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []
    return (tree(images.blobs), tree(images.layers_dir), sorted(images.images),
            sorted(images.tags), tree(root / "tmp"))


def _refused(images, tmp_path, path, match):
    before = _state(images, tmp_path)
    said = []
    with pytest.raises(InvalidParameter, match=match):
        archive_load.load(images, path, tmp_path / "tmp", said.append)
    assert said == [] and _state(images, tmp_path) == before


def test_a_good_oci_archive_loads(images, tmp_path):
    said = []
    archive_load.load(images, _archive(tmp_path, _oci()), tmp_path / "tmp", said.append)
    assert said == ["Loaded image: oci-test:1"]
    assert images.resolve("oci-test:1").id == _sha(CONFIG)


def test_not_an_image_archive(images, tmp_path):
    _refused(images, tmp_path, _archive(tmp_path, {"x": b"1"}),
             "has neither manifest.json nor index.json")


def test_not_a_tar(images, tmp_path):
    path = tmp_path / "x.tar"
    path.write_bytes(b"garbage" * 200)
    _refused(images, tmp_path, path, "the archive is not a valid tar")


def test_config_through_a_link_out_of_the_archive(images, tmp_path):
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": []}]).encode()
    _refused(images, tmp_path,
             _archive(tmp_path, {"manifest.json": manifest}, {"c.json": "/etc/passwd"}),
             "c.json in the archive is a link out of it")


def test_a_loop_of_links(images, tmp_path):
    manifest = json.dumps([{"Config": "a", "Layers": []}]).encode()
    _refused(images, tmp_path, _archive(tmp_path, {"manifest.json": manifest},
                                        {"a": "b", "b": "a"}), "a loop of links")


def test_layers_length_mismatch(images, tmp_path):
    manifest = json.dumps([{"Config": "c.json", "Layers": []}]).encode()
    _refused(images, tmp_path, _archive(tmp_path, {"manifest.json": manifest, "c.json": CONFIG}),
             "invalid manifest, layers length mismatch: expected 1, got 0")


def test_legacy_layer_that_does_not_match_its_diff_id(images, tmp_path):
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    other = LAYER.replace(b"ok", b"no")
    _refused(images, tmp_path, _archive(tmp_path, {"manifest.json": manifest, "c.json": CONFIG,
                                                   "l/layer.tar": other}),
             "layer diff ID mismatch")


def test_oci_blob_that_does_not_match_its_digest(images, tmp_path):
    files = _oci(layer_digest="sha256:" + "1" * 64)
    _refused(images, tmp_path, _archive(tmp_path, files),
             "does not match its digest sha256:1111")


def test_oversized_json(images, tmp_path, monkeypatch):
    monkeypatch.setattr(archive_load, "MAX_JSON", 64)
    _refused(images, tmp_path, _archive(tmp_path, _oci()), "over the limit of 64")


def test_index_without_the_host_platform(images, tmp_path):
    files = _oci()
    inner = json.loads(files["index.json"])
    nested = json.dumps({"schemaVersion": 2, "manifests": [
        {**inner["manifests"][0], "platform": {"os": "linux", "architecture": "s390x"}}]}
    ).encode()
    files[f"blobs/sha256/{_sha(nested)[7:]}"] = nested
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": _sha(nested),
        "size": len(nested)}]}).encode()
    _refused(images, tmp_path, _archive(tmp_path, files), "has no image for linux/")


def test_changes_as_dockerd_applies_them():
    base = {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv"}
    out = dockerfile_changes.apply(base, [
        "ENV A=2 B=\"two words\"", "EXPOSE 80 53/udp", "LABEL x=y", "VOLUME /data",
        "WORKDIR sub", "USER nobody", "ONBUILD RUN true", "STOPSIGNAL SIGINT",
        "ENTRYPOINT [\"/bin/echo\"]"])
    assert out["Env"] == ["PATH=/bin", "A=2", "B=two words"]
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert out["Labels"] == {"x": "y"} and out["Volumes"] == {"/data": {}}
    assert out["WorkingDir"] == "/srv/sub" and out["User"] == "nobody"
    assert out["OnBuild"] == ["RUN true"] and out["StopSignal"] == "SIGINT"
    assert out["Entrypoint"] == ["/bin/echo"] and out["Cmd"] is None   # as in a Dockerfile
    assert dockerfile_changes.apply(base, ["CMD echo hi"])["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert base["Env"] == ["PATH=/bin", "A=1"]                         # not modified
    for change, message in (("RUN true", "run is not a valid change command"),
                            ("FROM x", "from is not a valid change command"),
                            ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
                            ("EXPOSE 99999", "invalid range"),
                            ("HEALTHCHECK --interval=1us CMD true", "cannot be less than 1ms"),
                            ("HEALTHCHECK RUN true", 'Unknown type "RUN" in HEALTHCHECK'),
                            ("HEALTHCHECK NONE x", "takes no arguments")):
        with pytest.raises(InvalidParameter, match=message):
            dockerfile_changes.apply(base, [change])


def test_changes_expand_variables_as_a_dockerfile():
    out = dockerfile_changes.apply({"Env": ["A=1", "P=/x"]}, [
        "ENV B=$A C=${A}2 D=${NO:-def} E=${A:+alt} F='$A' G=\\$A", "WORKDIR $P/sub",
        "LABEL l=\"$A b\"", "CMD echo $A"])
    assert out["Env"][2:] == ["B=1", "C=12", "D=def", "E=alt", "F=$A", "G=$A"]
    assert out["WorkingDir"] == "/x/sub" and out["Labels"] == {"l": "1 b"}
    assert out["Cmd"] == ["/bin/sh", "-c", "echo $A"]          # the shell's to expand


def test_healthcheck_change():
    out = dockerfile_changes.apply({}, ["HEALTHCHECK --interval=5s --retries=3 CMD wget -q x"])
    assert out["Healthcheck"] == {"Interval": 5_000_000_000, "Retries": 3,
                                  "Test": ["CMD-SHELL", "wget -q x"]}
    assert dockerfile_changes.apply({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == \
        {"Test": ["CMD", "true"]}
    assert dockerfile_changes.apply({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


def test_save_of_an_image_missing_a_blob_is_refused_before_streaming(images, tmp_path):
    from engine.errors import NotFound
    from engine.images import archive_save
    archive_load.load(images, _archive(tmp_path, _oci()), tmp_path / "tmp", lambda _: None)
    chosen = archive_save.select(images, ["oci-test:1"])
    archive_save.check_blobs(images, chosen)
    images.blob_path(DIFF).unlink()
    with pytest.raises(NotFound, match=f"its blob {DIFF} is not in the store"):
        archive_save.check_blobs(images, chosen)
