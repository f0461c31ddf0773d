"""A container's root filesystem: an overlay of its image's unpacked layers (read-only lowers)
under a writable layer of its own, `<data-root>/overlay/containers/<id>/{diff,work}`.

berthd does not mount it: the mount travels to the supervisor as a containerd mount, and the shim
mounts it on the bundle's rootfs/ and unmounts it on delete, as containerd's shims do.
"""
from __future__ import annotations

import shutil
from pathlib import Path


def layer_dir(data_root: Path, container_id: str) -> Path:
    return Path(data_root) / "overlay" / "containers" / container_id


def upper_dir(data_root: Path, container_id: str) -> Path:
    return layer_dir(data_root, container_id) / "diff"


def prepare(data_root: Path, container_id: str) -> None:
    base = layer_dir(data_root, container_id)
    (base / "diff").mkdir(parents=True, exist_ok=True)
    (base / "work").mkdir(exist_ok=True)


def mounts(data_root: Path, container_id: str, lower_dirs: list[str]) -> list[dict]:
    """The containerd mount list for the container's rootfs (lower dirs: the top layer first)."""
    base = layer_dir(data_root, container_id)
    options = [f"lowerdir={':'.join(lower_dirs)}", f"upperdir={base / 'diff'}",
               f"workdir={base / 'work'}"]
    return [{"type": "overlay", "source": "overlay", "target": "", "options": options}]


def merged_view(data_root: Path, container_id: str, lower_dirs: list[str]) -> list[Path]:
    """The container's layers top first, for reading files of its filesystem while unmounted."""
    return [upper_dir(data_root, container_id), *map(Path, lower_dirs)]


def remove(data_root: Path, container_id: str) -> None:
    shutil.rmtree(layer_dir(data_root, container_id), ignore_errors=True)
