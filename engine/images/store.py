"""The image store: content-addressed blobs, the image and tag index, and unpacked layers.

Layout under the data root (docs/internals.md):
  content/blobs/sha256/<hex>         config, manifest and layer blobs
  overlay/layers/<chain id hex>/diff the unpacked layer, an overlay lowerdir
An image's ID is the digest of its config blob, as in docker's own store.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

from .. import timefmt
from ..errors import Conflict, InvalidParameter, NotFound
from ..store import Store
from . import layers, reference

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"


class Image:
    """An image record: its ID, config (the OCI image config), layers and sizes."""

    def __init__(self, record: dict):
        self.record = record

    @property
    def id(self) -> str:
        return self.record["Id"]

    @property
    def config(self) -> dict:
        return self.record["ImageConfig"]

    @property
    def created(self) -> int:
        return self.record["Created"]

    @property
    def size(self) -> int:
        return self.record["Size"]

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def container_config(self) -> dict:
        """The image's run defaults (`config` of the OCI image config)."""
        return self.config.get("config") or {}


class ImageStore:
    def __init__(self, data_root: Path, store: Store):
        self.data_root = Path(data_root)
        self.blobs = self.data_root / "content" / "blobs" / "sha256"
        self.layers_dir = self.data_root / "overlay" / "layers"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self._lock = threading.Lock()
        self.images: dict[str, Image] = {}
        self.tags: dict[str, tuple[str, int]] = {}   # full ref -> (image id, tagged at)
        for record in store.load_images():
            self.images[record["Id"]] = Image(record)
        for ref, image_id, when in store.load_tags():
            self.tags[ref] = (image_id, when)

    # blobs
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.split(":", 1)[1]

    def put_blob(self, data: bytes) -> str:
        hexd = hashlib.sha256(data).hexdigest()
        path = self.blobs / hexd
        if not path.exists():
            tmp = path.with_name(f".{hexd}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.rename(path)
        return "sha256:" + hexd

    def import_blob_file(self, src: Path, hexd: str) -> str:
        """Move a finished file (whose sha256 the caller computed) into the store."""
        path = self.blobs / hexd
        if path.exists():
            src.unlink()
        else:
            src.rename(path)
        return "sha256:" + hexd

    # layers
    def layer_dir(self, chain_id: str) -> Path:
        return self.layers_dir / chain_id.split(":", 1)[1] / "diff"

    def lower_dirs(self, image: Image) -> list[str]:
        """The image's unpacked layers as overlay lowerdirs: the top layer first."""
        return [str(self.layer_dir(c)) for c in reversed(layers.chain_ids(image.diff_ids))]

    def _unpack_layers(self, diff_ids: list[str]) -> int:
        size = 0
        for diff, chain in zip(diff_ids, layers.chain_ids(diff_ids)):
            dest = self.layer_dir(chain)
            if dest.is_dir():
                size += _dir_size(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            size += layers.unpack(self.blob_path(diff), dest)
        return size

    # images
    def add_image(self, config: dict, layer_digests: list[str], tags: list[str]) -> Image:
        """Record an image whose layer blobs are already in the store, unpack it, tag it."""
        config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_digest = self.put_blob(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": d,
                        "size": self.blob_path(d).stat().st_size} for d in layer_digests],
        }
        manifest_digest = self.put_blob(json.dumps(manifest, separators=(",", ":")).encode())
        with self._lock:
            size = self._unpack_layers(config["rootfs"]["diff_ids"])
            created = timefmt.parse_rfc3339(config["created"]) if config.get("created") else 0
            record = {"Id": config_digest, "Manifest": manifest_digest, "Created": created,
                      "Size": size, "ImageConfig": config}
            self.store.put_image(config_digest, created, record)
            image = self.images[config_digest] = Image(record)
            for tag in tags:
                self._tag(image, str(reference.parse(tag)))
        return image

    def _tag(self, image: Image, full_ref: str) -> None:
        when = timefmt.now_ns()
        self.store.set_tag(full_ref, image.id, when)
        self.tags[full_ref] = (image.id, when)

    def tag(self, image: Image, ref: str) -> None:
        """Point ref (name[:tag]) at image, moving it from whatever image it named before."""
        parsed = reference.parse(ref)
        if parsed.digest:
            raise InvalidParameter(f"refusing to create a tag with a digest reference: {ref}")
        self._tag(image, str(parsed))

    def untag(self, full_ref: str) -> None:
        self.store.delete_tag(full_ref)
        self.tags.pop(full_ref, None)

    def delete(self, image: Image) -> None:
        """The image's record, tags and the layers no other image shares. Blobs stay: they
        are content-addressed and cheap, and a re-seed or re-import finds them."""
        with self._lock:
            self.store.delete_image(image.id)
            del self.images[image.id]
            for ref in [r for r, (iid, _) in self.tags.items() if iid == image.id]:
                del self.tags[ref]
            in_use = {c for other in self.images.values()
                      for c in layers.chain_ids(other.diff_ids)}
            for chain in layers.chain_ids(image.diff_ids):
                if chain not in in_use:
                    shutil.rmtree(self.layer_dir(chain).parent, ignore_errors=True)

    def has_tag(self, ref: str) -> bool:
        return str(reference.parse(ref)) in self.tags

    def repo_tags(self, image: Image) -> list[str]:
        return sorted(reference.familiar(ref) for ref, (iid, _) in self.tags.items()
                      if iid == image.id)

    def resolve(self, ref: str) -> Image:
        """A name[:tag], name@digest, full or short image ID -> Image; NotFound otherwise."""
        image = self.find(ref)
        if image is None:
            raise NotFound(f"No such image: {_shown(ref)}")
        return image

    def find(self, ref: str) -> Image | None:
        text = ref.strip()
        hexid = reference.id_prefix(text)
        if text.startswith("sha256:"):
            return self._by_id_prefix(hexid) if hexid else None
        parsed = reference.parse(text)      # InvalidParameter for a malformed reference
        if not parsed.digest:
            entry = self.tags.get(str(parsed))
            if entry:
                return self.images.get(entry[0])
        if hexid:
            return self._by_id_prefix(hexid)
        return None

    def _by_id_prefix(self, hexid: str) -> Image | None:
        matches = [img for iid, img in self.images.items() if iid[7:].startswith(hexid)]
        if len(matches) > 1:
            raise Conflict(f"multiple IDs found with provided prefix: {hexid}")
        return matches[0] if matches else None

    def list(self) -> list[Image]:
        return sorted(self.images.values(), key=lambda i: i.created, reverse=True)

    def last_tag_time(self, image: Image) -> int:
        times = [when for iid, when in self.tags.values() if iid == image.id]
        return max(times) if times else 0


def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def _shown(ref: str) -> str:
    """The reference as dockerd echoes it in 'No such image': familiar, with its tag."""
    try:
        parsed = reference.parse(ref)
    except Exception:
        return ref
    if reference.id_prefix(ref) and ":" not in ref:
        return ref
    return parsed.familiar()

