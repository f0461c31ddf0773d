"""The classic builder's cache: a step is reused when an image exists whose parent is the
current image and whose ContainerConfig (the run config with the step's Cmd: the RUN command
with its build args, or the "#(nop) " comment that names a COPY's source checksum) is the
probe's. A build's images record their parent in the store's image record
(engine/images/lineage.py)."""
from __future__ import annotations

from ..images.lineage import parent_of
from ..images.store import Image, ImageStore

# the run config fields whose difference makes a different step (moby compares the same
# ones and a few that builds never set)
COMPARED = ("Cmd", "Env", "Labels", "ExposedPorts", "Entrypoint", "Volumes", "User",
            "WorkingDir", "Shell", "Healthcheck", "OnBuild", "StopSignal", "Tty",
            "OpenStdin", "AttachStdin", "AttachStdout", "AttachStderr")


def _norm(value):
    return None if value in (None, [], {}, "", False) else value


def same_config(a: dict, b: dict) -> bool:
    return all(_norm(a.get(k)) == _norm(b.get(k)) for k in COMPARED)


def lookup(images: ImageStore, parent_id: str, probe: dict) -> Image | None:
    """The newest image whose parent is parent_id and whose ContainerConfig is probe."""
    best: Image | None = None
    for image in images.list():
        if parent_of(image) != parent_id or not image.record.get("BuiltStep"):
            continue
        if not same_config(image.config.get("container_config") or {}, probe):
            continue
        if best is None or image.created > best.created:
            best = image
    return best
