"""`docker save`: images as one tar in both layouts that docker 25+ writes at once.

- the OCI image layout: `oci-layout`, `index.json` (one manifest descriptor per tag, named by the
  `io.containerd.image.name` and `org.opencontainers.image.ref.name` annotations; an image saved
  by ID has none), and every blob under `blobs/sha256/`;
- docker's legacy layout over the same blobs: `manifest.json` (Config, RepoTags and Layers as
  paths into blobs/) and `repositories` ({repo: {tag: top layer}}), which docker 20.10's
  `load` reads too (it follows whatever paths manifest.json names).

Blobs are written once however many images share them, as the store keeps them (a layer pulled
compressed stays compressed; its manifest says so).
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

from ..errors import InvalidParameter, NotFound
from . import reference
from .store import Image, ImageStore

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def select(images: ImageStore, names: Iterable[str]) -> list[tuple[Image, list[str]]]:
    """The images the names pick, each with the full references to save it under, in order:
    `name:tag` that tag, a bare repository every tag of it (as docker save), an ID the image
    with no tag."""
    chosen: dict[str, tuple[Image, list[str]]] = {}
    for name in names:
        name = name.strip()
        if not name:
            raise InvalidParameter("an empty image name cannot be saved")
        image = images.find(name) if _names_tag_or_id(name) else None
        refs: list[str] = []
        if image is not None:
            if reference.id_prefix(name) is None or images.has_tag(name):
                parsed = reference.parse(name)
                refs = [str(parsed)] if not parsed.digest else []
        else:
            repo = reference.parse(name, default_tag=False)
            if repo.tag or repo.digest:
                raise NotFound(f"No such image: {name}")
            refs = sorted(r for r in images.tags if r.rsplit(":", 1)[0] == repo.repository)
            if not refs:
                raise NotFound(f"No such image: {name}")
        for ref in refs or [None]:
            img = images.images[images.tags[ref][0]] if ref else image
            entry = chosen.setdefault(img.id, (img, []))
            if ref and ref not in entry[1]:
                entry[1].append(ref)
    return list(chosen.values())


def check_blobs(images: ImageStore, chosen: list[tuple[Image, list[str]]]) -> None:
    """NotFound for an image whose blobs the store lacks, before anything is streamed."""
    for image, _ in chosen:
        for digest in sorted(images.blobs_of(image)):
            if not images.blob_path(digest).is_file():
                raise NotFound(f"cannot save {image.id}: its blob {digest} is not in the store")


def _names_tag_or_id(name: str) -> bool:
    """True unless name is a bare repository (no tag, no digest, not an ID)."""
    if reference.id_prefix(name) is not None or name.startswith("sha256:"):
        return True
    parsed = reference.parse(name, default_tag=False)
    return bool(parsed.tag or parsed.digest)


def _manifest(images: ImageStore, image: Image) -> tuple[bytes, dict]:
    raw = images.blob_path(image.record["Manifest"]).read_bytes()
    return raw, json.loads(raw)


def write(images: ImageStore, chosen: list[tuple[Image, list[str]]], out: BinaryIO) -> None:
    """Write the archive of the chosen images (see select) to out as a stream."""
    blobs: dict[str, None] = {}
    index_entries, legacy, repositories = [], [], {}
    for image, refs in chosen:
        raw, manifest = _manifest(images, image)
        layer_digests = [d["digest"] for d in manifest["layers"]]
        for digest in [image.record["Manifest"], image.id, *layer_digests]:
            blobs.setdefault(digest)
        descriptor = {"mediaType": manifest.get("mediaType", MEDIA_INDEX),
                      "digest": image.record["Manifest"], "size": len(raw)}
        for ref in refs:
            parsed = reference.parse(ref)
            index_entries.append({**descriptor, "annotations": {
                "io.containerd.image.name": ref,
                "org.opencontainers.image.ref.name": parsed.tag}})
            top = layer_digests[-1].split(":", 1)[1] if layer_digests else ""
            repositories.setdefault(reference.familiar(parsed.repository), {})[parsed.tag] = top
        if not refs:
            index_entries.append(descriptor)
        legacy.append({"Config": _blob_name(image.id),
                       "RepoTags": [reference.familiar(r) for r in refs] or None,
                       "Layers": [_blob_name(d) for d in layer_digests]})
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index_entries}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for digest in blobs:
            path = images.blob_path(digest)
            if not path.is_file():
                raise NotFound(f"blob {digest} is not in the store")
            info = tarfile.TarInfo(_blob_name(digest))
            info.size, info.mode = path.stat().st_size, 0o444
            with open(path, "rb") as f:
                tar.addfile(info, f)
        _add_bytes(tar, "index.json", _json(index))
        _add_bytes(tar, "manifest.json", _json(legacy))
        _add_bytes(tar, "oci-layout", OCI_LAYOUT)
        if repositories:
            _add_bytes(tar, "repositories", _json(repositories))


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
