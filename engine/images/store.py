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
STAGING_PREFIX = ".unpacking-"
WORK_PREFIXES = ("load-", "import-", "commit-")     # engine/images' work dirs in <root>/tmp


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
        self._sweep_staging()
        self.allow_devices = layers.devices_allowed()
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

    def layer_media_type(self, digest: str) -> str:
        """The OCI media type of a stored layer blob, by its compression."""
        with open(self.blob_path(digest), "rb") as f:
            kind = layers.compression(f.read(4))
        return MEDIA_LAYER + {"gzip": "+gzip", "zstd": "+zstd"}.get(kind, "")

    def layer_digests(self, image: Image) -> list[str]:
        """The image's layer blob digests, from its manifest (a pulled layer's blob digest is
        that of its compressed form, not its diff ID)."""
        manifest = json.loads(self.blob_path(image.record["Manifest"]).read_bytes())
        return [d["digest"] for d in manifest["layers"]]

    # layers
    def layer_dir(self, chain_id: str) -> Path:
        return self.layers_dir / chain_id.split(":", 1)[1] / "diff"

    def lower_dirs(self, image: Image) -> list[str]:
        """The image's unpacked layers as overlay lowerdirs: the top layer first."""
        return [str(self.layer_dir(c)) for c in reversed(layers.chain_ids(image.diff_ids))]

    def _unpack_layers(self, layer_digests: list[str],
                       diff_ids: list[str]) -> tuple[int, list[str]]:
        """Unpack the layers the store lacks; returns (bytes of file data, chain IDs made now).
        On a refusal the layers made by this call are removed again, so nothing half-made
        stays (a layer is staged and renamed into place only when complete)."""
        if len(layer_digests) != len(diff_ids):
            raise InvalidParameter(f"the image has {len(diff_ids)} diff IDs and "
                                   f"{len(layer_digests)} layers")
        size, made = 0, []
        try:
            for blob, diff, chain in zip(layer_digests, diff_ids, layers.chain_ids(diff_ids)):
                dest = self.layer_dir(chain)
                if dest.is_dir():
                    size += _dir_size(dest)
                    continue
                size += self._unpack_layer(self.blob_path(blob), diff, chain)
                made.append(chain)
        except BaseException:
            for chain in made:
                shutil.rmtree(self.layer_dir(chain).parent, ignore_errors=True)
            raise
        return size, made

    def _unpack_layer(self, blob: Path, diff_id: str, chain: str) -> int:
        """Unpack one layer into a staging dir, renamed to overlay/layers/<chain> when whole."""
        if not blob.is_file():
            raise NotFound(f"layer blob {blob.name} of {diff_id} is not in the store")
        final = self.layer_dir(chain).parent
        staging = self.layers_dir / f"{STAGING_PREFIX}{final.name}.{os.getpid()}." \
                                    f"{threading.get_ident()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "diff").mkdir(parents=True)
        try:
            size = layers.unpack_into(blob, staging / "diff", diff_id, self.allow_devices)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return size

    def _sweep_staging(self) -> None:
        """Staging dirs a killed berthd left mid-unpack, and the work dirs of a load, import
        or commit it was making: never used, removed at start."""
        for entry in self.layers_dir.iterdir():
            if entry.name.startswith(STAGING_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
        tmp = self.data_root / "tmp"
        for entry in (tmp.iterdir() if tmp.is_dir() else ()):
            if entry.name.startswith(WORK_PREFIXES):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # images
    def add_image(self, config: dict, layer_digests: list[str], tags: list[str],
                  config_bytes: bytes | None = None) -> Image:
        """Record an image whose layer blobs are already in the store, unpack it, tag it.
        The layers are unpacked (and their diff IDs checked) before anything is recorded.
        config_bytes, when given, is the config as it came (a load or a pull), kept byte for
        byte so that the image ID stays its digest; config is then its parsed form."""
        if config_bytes is None:
            config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        with self._lock:
            size, made = self._unpack_layers(layer_digests, diff_ids)
            try:
                config_digest = self.put_blob(config_bytes)
                manifest = {
                    "schemaVersion": 2,
                    "mediaType": MEDIA_MANIFEST,
                    "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest,
                               "size": len(config_bytes)},
                    "layers": [{"mediaType": self.layer_media_type(d), "digest": d,
                                "size": self.blob_path(d).stat().st_size}
                               for d in layer_digests],
                }
                manifest_digest = self.put_blob(
                    json.dumps(manifest, separators=(",", ":")).encode())
                created = timefmt.parse_rfc3339(config["created"]) if config.get("created") else 0
                record = {"Id": config_digest, "Manifest": manifest_digest, "Created": created,
                          "Size": size, "ImageConfig": config}
                self.store.put_image(config_digest, created, record)
            except BaseException:
                for chain in made:
                    shutil.rmtree(self.layer_dir(chain).parent, ignore_errors=True)
                raise
            image = self.images[config_digest] = Image(record)
            for tag in tags:
                self._tag(image, str(reference.parse(tag)))
        return image

    def import_image(self, config: dict, layer_files: list[Path], tags: list[str], *,
                     config_bytes: bytes | None = None,
                     base_layers: list[str] | None = None) -> Image:
        """An image from layer tar files (plain or compressed; load, import and commit make
        them in the data root's tmp): each is moved into the blob store, then add_image
        (base_layers: blob digests already stored that come first, a commit's image). On any
        error the blobs this call added are removed again, so the store is as before."""
        added: list[Path] = []
        try:
            digests = list(base_layers or [])
            for src in layer_files:
                hexd = _sha256_file(src)
                if not (self.blobs / hexd).exists():
                    added.append(self.blobs / hexd)
                digests.append(self.import_blob_file(src, hexd))
            return self.add_image(config, digests, tags, config_bytes)
        except BaseException:
            for path in added:
                path.unlink(missing_ok=True)
            raise

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
        """The image's record and tags, and what no other image uses: its unpacked layers
        and its blobs (manifest, config, layers). A container keeps its image (the API never
        deletes an image a container uses), so its layers stay with it."""
        with self._lock:
            own = self.blobs_of(image)
            self.store.delete_image(image.id)
            del self.images[image.id]
            for ref in [r for r, (iid, _) in self.tags.items() if iid == image.id]:
                del self.tags[ref]
            in_use = {c for other in self.images.values()
                      for c in layers.chain_ids(other.diff_ids)}
            for chain in layers.chain_ids(image.diff_ids):
                if chain not in in_use:
                    shutil.rmtree(self.layer_dir(chain).parent, ignore_errors=True)
            kept = {d for other in self.images.values() for d in self.blobs_of(other)}
            for digest in own - kept:
                self.blob_path(digest).unlink(missing_ok=True)

    def blobs_of(self, image: Image) -> set[str]:
        """The digests of the blobs an image is made of: manifest, config, layers."""
        out = {image.id, image.record["Manifest"]}
        try:
            out.update(self.layer_digests(image))
        except (OSError, ValueError, KeyError):
            pass        # a manifest already gone: the layers are named by no blob of ours
        return out

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
        else:       # name@digest: the image pulled or pushed as that manifest
            wanted = f"{parsed.repository}@{parsed.digest}"
            for image in self.images.values():
                if wanted in image.record.get("RepoDigests", ()):
                    return image
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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# registry pulls (engine/registry/pull.py): blobs arrive in content/ingest/ as partial files
# (kept across a crash, so that the next pull resumes them), move into the store once verified,
# and an image is recorded only after all its layers are unpacked.
_UNPACK_LOCKS: dict[str, threading.Lock] = {}      # chain id -> lock: one unpack of a layer
_UNPACK_LOCKS_LOCK = threading.Lock()


def ingest_path(images: ImageStore, digest: str) -> Path:
    """Where a blob being downloaded is written until it is verified."""
    d = images.data_root / "content" / "ingest"
    d.mkdir(parents=True, exist_ok=True)
    return d / (digest.split(":", 1)[1] + ".partial")


INGEST_MAX_AGE_S = 24 * 3600


def sweep_ingest(images: ImageStore, max_age: float = INGEST_MAX_AGE_S) -> None:
    """Partial downloads nobody resumed for max_age (by mtime: one being written is fresh) are
    removed; younger ones are kept for the next pull of their blob to resume."""
    import time
    d = images.data_root / "content" / "ingest"
    if not d.is_dir():
        return
    now = time.time()
    for entry in d.iterdir():
        try:
            if now - entry.stat().st_mtime > max_age:
                entry.unlink()
        except OSError:
            continue


def has_blob(images: ImageStore, digest: str) -> bool:
    return images.blob_path(digest).is_file()


def commit_blob(images: ImageStore, partial: Path, digest: str) -> None:
    """Move a verified download into the store (a rename: atomic)."""
    os.replace(partial, images.blob_path(digest))


def has_layer(images: ImageStore, chain_id: str) -> bool:
    return images.layer_dir(chain_id).is_dir()


def unpack_blob_layer(images: ImageStore, blob_digest: str, diff_id: str,
                      chain_id: str) -> int:
    """Unpack a stored layer blob (plain, gzip or zstd) as the layer chain_id, unless it is
    there already; its plain tar must hash to diff_id. Staged and renamed into place when
    whole (ImageStore._unpack_layer). Returns the bytes of file data."""
    with _UNPACK_LOCKS_LOCK:
        lock = _UNPACK_LOCKS.setdefault(f"{images.data_root}:{chain_id}", threading.Lock())
    with lock:
        dest = images.layer_dir(chain_id)
        if dest.is_dir():
            return _dir_size(dest)
        return images._unpack_layer(images.blob_path(blob_digest), diff_id, chain_id)


def add_pulled_image(images: ImageStore, manifest: bytes, config: bytes, repo_digest: str,
                     tags: list[str]) -> Image:
    """Record a pulled image whose layers are unpacked: its manifest and config go into the
    store as they came (so that their digests are the registry's), RepoDigests gains
    repo_digest (repository@digest), and tags point at it."""
    manifest_digest = images.put_blob(manifest)
    config_digest = images.put_blob(config)
    cfg = json.loads(config)
    diff_ids = cfg["rootfs"]["diff_ids"]
    size = sum(_dir_size(images.layer_dir(c)) for c in layers.chain_ids(diff_ids))
    with images._lock:
        old = images.images.get(config_digest)
        digests = list(old.record.get("RepoDigests", [])) if old else []
        repo = repo_digest.split("@", 1)[0]
        digests = [d for d in digests if d.split("@", 1)[0] != repo] + [repo_digest]
        created = timefmt.parse_rfc3339(cfg["created"]) if cfg.get("created") else 0
        record = {"Id": config_digest, "Manifest": manifest_digest, "Created": created,
                  "Size": size, "ImageConfig": cfg, "RepoDigests": digests}
        images.store.put_image(config_digest, created, record)
        image = images.images[config_digest] = Image(record)
        for tag in tags:
            images._tag(image, str(reference.parse(tag)))
    return image


def repo_digests(image: Image) -> list[str]:
    """repository@digest of each registry manifest the image was pulled or pushed as."""
    return list(image.record.get("RepoDigests", []))


def forget_unused(images: ImageStore, chains: list[str], blobs: list[str],
                  keep: set[str] = frozenset()) -> None:
    """Remove unpacked layers and blobs a failed pull added, unless an image (or keep: what
    pulls still running need) uses them, so that the store is as it was."""
    used = set(keep)
    for image in list(images.images.values()):
        used.update(layers.chain_ids(image.diff_ids))
        try:
            used.update(images.layer_digests(image))
        except (OSError, ValueError, KeyError):
            continue
        used.add(image.record.get("Manifest", ""))
        used.add(image.id)
    for chain in chains:
        if chain not in used:
            shutil.rmtree(images.layer_dir(chain).parent, ignore_errors=True)
    for digest in blobs:
        if digest not in used:
            images.blob_path(digest).unlink(missing_ok=True)


def remove_repo_digest(images: ImageStore, image: Image, repo_digest: str) -> None:
    with images._lock:
        image.record["RepoDigests"] = [d for d in repo_digests(image) if d != repo_digest]
        images.store.put_image(image.id, image.created, image.record)


def add_repo_digest(images: ImageStore, image: Image, repo_digest: str) -> None:
    with images._lock:
        repo = repo_digest.split("@", 1)[0]
        digests = [d for d in repo_digests(image) if d.split("@", 1)[0] != repo]
        image.record["RepoDigests"] = digests + [repo_digest]
        images.store.put_image(image.id, image.created, image.record)


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

