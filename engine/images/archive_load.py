"""`docker load`: images from a `docker save` archive, in docker's legacy layout (manifest.json,
as docker 20.10 writes and docker 25+ writes beside the OCI one) or the OCI image layout alone
(index.json and blobs/, as skopeo's and umoci's oci archives).

The archive is spooled to a file by the caller and read in place: members are found by their
cleaned names and links inside the archive are followed (docker 20.10 writes a layer shared by
two images once, the other as a symlink), but nothing is extracted by name to disk: each layer
is copied to a private temporary file, checked against the digest the OCI manifest gives, and
stored through ImageStore.import_image, so every layer meets layers.unpack_into's checks and a
refused image leaves nothing behind. JSON members are read only up to MAX_JSON bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import InvalidParameter
from . import reference
from .store import Image, ImageStore

MAX_JSON = 8 << 20
MAX_LINK_DEPTH = 16
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
    os.uname().machine, os.uname().machine)
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
LAYER_TYPES = ("application/vnd.oci.image.layer.v1.tar",
               "application/vnd.oci.image.layer.v1.tar+gzip",
               "application/vnd.oci.image.layer.v1.tar+zstd",
               "application/vnd.docker.image.rootfs.diff.tar.gzip",
               "application/vnd.docker.image.rootfs.diff.tar")


class ArchiveError(InvalidParameter):
    """An archive that cannot be loaded, with what is wrong in it."""


@dataclass
class Candidate:
    """One image found in the archive: its config bytes, layer members, names."""

    config: bytes
    layers: list[tuple[str, str | None]]        # (member name, expected digest or None)
    refs: list[str] = field(default_factory=list)


def _clean(name: str) -> str | None:
    """An archive member's name, lexically cleaned; None for one that climbs out."""
    out: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
    return "/".join(out)


class Archive:
    """Random access to a spooled tar (plain or compressed) by member name."""

    def __init__(self, path: Path):
        try:
            self.tar = tarfile.open(path, mode="r:*")
            self.members = {}
            for member in self.tar.getmembers():
                name = _clean(member.name)
                if name:
                    self.members[name] = member
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ArchiveError(f"the archive is not a valid tar: {e}") from None

    def close(self) -> None:
        self.tar.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> tuple[BinaryIO, int]:
        """The member's data and size, following links inside the archive."""
        wanted = name
        for _ in range(MAX_LINK_DEPTH):
            clean = _clean(name)
            member = self.members.get(clean) if clean else None
            if member is None:
                raise ArchiveError(f"the archive has no {wanted}")
            if member.issym():
                if member.linkname.startswith("/"):
                    raise ArchiveError(f"{wanted} in the archive is a link out of it")
                name = posixpath.join(posixpath.dirname(clean), member.linkname)
                continue
            if member.islnk():
                name = member.linkname
                continue
            if not member.isreg():
                raise ArchiveError(f"{wanted} in the archive is not a file")
            return self.tar.extractfile(member), member.size
        raise ArchiveError(f"{wanted} in the archive is a loop of links")

    def read(self, name: str, limit: int | None = None) -> bytes:
        limit = MAX_JSON if limit is None else limit
        data, size = self.open(name)
        if size > limit:
            raise ArchiveError(f"{name} in the archive is {size} bytes, over the limit of {limit}")
        return data.read()

    def read_json(self, name: str):
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ArchiveError(f"{name} in the archive is not valid JSON: {e}") from None

    def copy(self, name: str, dest: Path, digest: str | None) -> None:
        """Copy a member to dest; with digest, the copy must hash to it."""
        data, _ = self.open(name)
        sha = hashlib.sha256()
        with open(dest, "wb") as out:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                sha.update(chunk)
                out.write(chunk)
        if digest and "sha256:" + sha.hexdigest() != digest:
            raise ArchiveError(f"{name} in the archive does not match its digest {digest} "
                               f"(it is sha256:{sha.hexdigest()})")


def candidates(arc: Archive, arch: str = HOST_ARCH) -> list[Candidate]:
    """The images in the archive: from manifest.json if it has one (as docker's own loader),
    else from the OCI index.json (an index in it resolved to linux/arch)."""
    if arc.has("manifest.json"):
        return _legacy(arc)
    if arc.has("index.json"):
        return _oci(arc, arch)
    raise ArchiveError("the archive has neither manifest.json nor index.json: it is not an "
                       "image archive from docker save or an OCI image layout")


def _legacy(arc: Archive) -> list[Candidate]:
    manifest = arc.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError("manifest.json in the archive is not a list of images")
    out = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or \
                not isinstance(entry.get("Layers") or [], list):
            raise ArchiveError(f"manifest.json in the archive has an invalid entry: {entry!r}")
        refs = [str(reference.parse(t)) for t in entry.get("RepoTags") or []]
        out.append(Candidate(arc.read(entry["Config"]),
                             [(name, None) for name in entry.get("Layers") or []], refs))
    return out


def _blob(arc: Archive, descriptor: dict, what: str) -> str:
    digest = descriptor.get("digest", "") if isinstance(descriptor, dict) else ""
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise ArchiveError(f"{what} has an invalid digest {digest!r}")
    return "blobs/sha256/" + digest[7:]


def _checked_json(arc: Archive, descriptor: dict, what: str) -> tuple[bytes, dict]:
    name = _blob(arc, descriptor, what)
    raw = arc.read(name)
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if got != descriptor["digest"]:
        raise ArchiveError(f"{what} {descriptor['digest']} in the archive does not match its "
                           f"digest (it is {got})")
    if "size" in descriptor and descriptor["size"] != len(raw):
        raise ArchiveError(f"{what} {descriptor['digest']} is {len(raw)} bytes, its descriptor "
                           f"says {descriptor['size']}")
    try:
        return raw, json.loads(raw)
    except ValueError as e:
        raise ArchiveError(f"{what} {descriptor['digest']} is not valid JSON: {e}") from None


def _oci(arc: Archive, arch: str) -> list[Candidate]:
    index = arc.read_json("index.json")
    by_manifest: dict[str, Candidate] = {}
    for desc in (index.get("manifests") if isinstance(index, dict) else None) or []:
        desc = _platform_manifest(arc, desc, arch)
        _, manifest = _checked_json(arc, desc, "manifest")
        media = manifest.get("mediaType") or desc.get("mediaType") or MANIFEST_TYPES[0]
        if media not in MANIFEST_TYPES:
            raise ArchiveError(f"manifest {desc['digest']} has the unsupported media type "
                               f"{media}")
        cand = by_manifest.get(desc["digest"])
        if cand is None:
            config, _ = _checked_json(arc, manifest.get("config") or {}, "image config")
            layer_list = []
            for layer in manifest.get("layers") or []:
                if layer.get("mediaType", LAYER_TYPES[0]) not in LAYER_TYPES:
                    raise ArchiveError(f"layer {layer.get('digest')} has the unsupported "
                                       f"media type {layer.get('mediaType')}")
                layer_list.append((_blob(arc, layer, "layer"), layer["digest"]))
            cand = by_manifest[desc["digest"]] = Candidate(config, layer_list)
        ref = _annotated_name(desc.get("annotations") or {})
        if ref and ref not in cand.refs:
            cand.refs.append(ref)
    return list(by_manifest.values())


def _platform_manifest(arc: Archive, desc: dict, arch: str) -> dict:
    """A manifest descriptor; an index in the index resolves to linux/arch."""
    for _ in range(4):
        if desc.get("mediaType") not in INDEX_TYPES:
            return desc
        _, nested = _checked_json(arc, desc, "index")
        host = [d for d in nested.get("manifests") or []
                if (d.get("platform") or {}).get("os") == "linux"
                and (d.get("platform") or {}).get("architecture") == arch]
        if not host:
            raise ArchiveError(f"index {desc['digest']} in the archive has no image for "
                               f"linux/{arch}")
        desc = {**host[0], "annotations": desc.get("annotations") or {}}
    raise ArchiveError("the archive's indexes nest too deep")


def _annotated_name(annotations: dict) -> str | None:
    """The name an index entry gives: containerd's full name, else an OCI ref.name that is a
    whole reference (umoci's bare `latest` names no repository: the image loads untagged)."""
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        value = annotations.get(key) or ""
        if value and ("/" in value or ":" in value):
            try:
                parsed = reference.parse(value)
            except InvalidParameter:
                continue
            if not parsed.digest:
                return str(parsed)
    return None


def load(images: ImageStore, archive: Path, tmp_dir: Path, say: Callable[[str], None],
         loaded: list[Image] | None = None, arch: str | None = None) -> list[Image]:
    """Load every image of the archive, saying what dockerd says for each; the images, also
    appended to loaded as each is stored (so that a caller knows them after a later error).
    With arch (load --platform), every image must be for linux/arch."""
    arc = Archive(archive)
    loaded = [] if loaded is None else loaded
    try:
        for cand in candidates(arc, arch or HOST_ARCH):
            image = _store(images, arc, cand, tmp_dir, arch)
            loaded.append(image)
            for ref in cand.refs:
                old = images.tags.get(ref)
                if old and old[0] != image.id:
                    say(f"The image {reference.familiar(ref)} already exists, renaming the old "
                        f"one with ID {old[0]} to empty string")
                images.tag(image, ref)
                say(f"Loaded image: {reference.familiar(ref)}")
            if not cand.refs:
                say(f"Loaded image ID: {image.id}")
    finally:
        arc.close()
    return loaded


def _store(images: ImageStore, arc: Archive, cand: Candidate, tmp_dir: Path,
           arch: str | None) -> Image:
    try:
        config = json.loads(cand.config)
    except ValueError as e:
        raise ArchiveError(f"an image config in the archive is not valid JSON: {e}") from None
    diff_ids = ((config.get("rootfs") or {}).get("diff_ids") or []) \
        if isinstance(config, dict) else None
    if not isinstance(diff_ids, list):
        raise ArchiveError("an image config in the archive has no rootfs")
    if len(diff_ids) != len(cand.layers):
        raise ArchiveError(f"invalid manifest, layers length mismatch: expected "
                           f"{len(diff_ids)}, got {len(cand.layers)}")
    if config.get("os", "linux") != "linux":
        raise ArchiveError(f"image operating system {config.get('os')!r} cannot be used on "
                           f"this platform")
    if arch and config.get("architecture") != arch:
        raise ArchiveError(f"the archive's image is linux/{config.get('architecture')}, not "
                           f"the linux/{arch} asked for")
    image_id = "sha256:" + hashlib.sha256(cand.config).hexdigest()
    if image_id in images.images:
        return images.images[image_id]
    tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="load-", dir=tmp_dir))
    try:
        files = []
        for i, (name, digest) in enumerate(cand.layers):
            dest = work / f"layer{i}"
            arc.copy(name, dest, digest)
            files.append(dest)
        return images.import_image(config, files, [], config_bytes=cand.config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
