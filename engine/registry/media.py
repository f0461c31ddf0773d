"""Manifest media types berth reads and writes, and the limits it holds them to."""
from __future__ import annotations

import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
CONFIGS = (OCI_CONFIG, DOCKER_CONFIG)
LAYERS = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN,
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
# the Accept header of a manifest GET: the formats berth can pull, images before indexes
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))

# as containerd: a manifest or index larger than this is refused before it is parsed
MAX_MANIFEST_BYTES = 4 << 20
# an image config is read whole too; containerd holds it to the same kind of limit
MAX_CONFIG_BYTES = 8 << 20


class ManifestError(ValueError):
    """A manifest berth refuses: wrong media type, malformed, or too large."""


def parse_manifest(data: bytes, header_type: str) -> tuple[str, dict]:
    """(media type, document) of a manifest or index; the type is the document's own
    mediaType where it has one (it must then agree with the header's), else the header's."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest too large: {len(data)} bytes (limit {MAX_MANIFEST_BYTES})")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ManifestError(f"invalid manifest: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestError("invalid manifest: not a JSON object")
    header_type = (header_type or "").split(";")[0].strip()
    media = doc.get("mediaType") or header_type
    if doc.get("mediaType") and header_type and header_type not in (media, "application/json",
                                                                    "text/plain"):
        raise ManifestError(f"manifest media type {header_type!r} does not match the "
                            f"document's {media!r}")
    if not media and "manifests" in doc:
        media = OCI_INDEX
    elif not media and "layers" in doc:
        media = OCI_MANIFEST
    if media not in MANIFESTS + INDEXES:
        raise ManifestError(f"unsupported manifest media type {media!r}: berth pulls "
                            + ", ".join(MANIFESTS + INDEXES))
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"unsupported manifest schema version {doc.get('schemaVersion')!r}")
    if media in MANIFESTS:
        config = doc.get("config")
        if not isinstance(config, dict) or not isinstance(doc.get("layers"), list):
            raise ManifestError("invalid manifest: config or layers missing")
        if config.get("mediaType") not in CONFIGS:
            raise ManifestError(f"unsupported config media type {config.get('mediaType')!r}")
        for layer in doc["layers"]:
            if not isinstance(layer, dict) or layer.get("mediaType") not in LAYERS:
                raise ManifestError("unsupported layer media type "
                                    f"{(layer or {}).get('mediaType')!r}")
    elif not isinstance(doc.get("manifests"), list):
        raise ManifestError("invalid index: manifests missing")
    return media, doc
