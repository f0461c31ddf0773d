"""Disk usage, measured: the bytes of images' unpacked layers, of containers' writable layers
and of volumes' data, for `docker system df` (and a container's SizeRw and SizeRootFs).

A tree's size is the bytes of its regular files, each inode once (hard links are one file), as
the image store counts a layer when it unpacks it, so `docker images` and `docker system df`
agree. dockerd's count (pkg/directory) also adds symbolic links' lengths; that is left out.
An image's size is its layers'; its shared size the part in layers another image also has
(dockerd's SharedSize); LayersSize counts every layer once. A container's SizeRw is its writable
layer, SizeRootFs that plus its image.

Image layers do not change once unpacked, so their sizes are measured once per layer
directory. Writable layers belong to running containers and change while they are measured:
they are walked through directory descriptors without following links, and entries that vanish
meanwhile are not counted.
"""
from __future__ import annotations

import asyncio
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import rootfs
from .container import Container
from .images import layers


def tree_size(top: Path | str) -> int:
    """Bytes of the regular files below top, each inode once; 0 if top is gone."""
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [fd]
    try:
        while stack:
            dir_fd = stack.pop()
            try:
                with os.scandir(dir_fd) as it:
                    entries = list(it)
            except OSError:
                entries = []
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_size
                elif stat.S_ISDIR(st.st_mode):
                    try:
                        stack.append(os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY
                                             | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd))
                    except OSError:
                        pass
            os.close(dir_fd)
    finally:
        for leftover in stack:
            os.close(leftover)
    return total


class LayerSizes:
    """Sizes of unpacked image layers, measured once per layer directory (and again if the
    directory was made anew)."""

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[int, int]] = {}      # path -> (inode, size)
        self._lock = threading.Lock()

    def size(self, layer_dir: Path | str) -> int:
        path = str(layer_dir)
        try:
            ino = os.stat(path).st_ino
        except OSError:
            return 0
        with self._lock:
            known = self._sizes.get(path)
        if known and known[0] == ino:
            return known[1]
        size = tree_size(path)
        with self._lock:
            self._sizes[path] = (ino, size)
        return size


LAYER_SIZES = LayerSizes()


@dataclass
class ImageUsage:
    image_id: str
    size: int
    shared_size: int
    containers: int


@dataclass
class Usage:
    layers_size: int
    images: dict[str, ImageUsage]
    containers: dict[str, tuple[int, int]]      # id -> (SizeRw, SizeRootFs)
    volumes: dict[str, int] = field(default_factory=dict)   # name -> bytes of its data


@dataclass
class _Snapshot:
    image_layers: dict[str, list[str]]          # image id -> layer dirs, top first
    container_images: dict[str, str]            # container id -> image id
    container_uppers: dict[str, Path]
    volume_paths: dict[str, Path] = field(default_factory=dict)


def _snapshot(daemon) -> _Snapshot:
    """What to measure, read from the daemon's state in its own thread."""
    image_layers = {}
    for image in daemon.images.list():
        image_layers[image.id] = [str(daemon.images.layer_dir(chain))
                                  for chain in layers.chain_ids(image.diff_ids)]
    cs: list[Container] = daemon.containers.all()
    return _Snapshot(image_layers, {c.id: c.record["Image"] for c in cs},
                     {c.id: rootfs.upper_dir(daemon.cfg.data_root, c.id) for c in cs},
                     {v.name: v.path for v in daemon.containers.volumes.all()})


def _measure(snap: _Snapshot, *, images: bool, containers: bool,
             volumes: bool = False) -> Usage:
    layer_size = {d: LAYER_SIZES.size(d) for dirs in snap.image_layers.values() for d in dirs}
    users: dict[str, int] = {}
    for dirs in snap.image_layers.values():
        for d in set(dirs):
            users[d] = users.get(d, 0) + 1
    image_size = {iid: sum(layer_size[d] for d in set(dirs))
                  for iid, dirs in snap.image_layers.items()}
    out = Usage(sum(layer_size.values()), {}, {})
    if images:
        for iid, dirs in snap.image_layers.items():
            shared = sum(layer_size[d] for d in set(dirs) if users[d] > 1)
            count = sum(1 for image_id in snap.container_images.values() if image_id == iid)
            out.images[iid] = ImageUsage(iid, image_size[iid], shared, count)
    if containers:
        for cid, upper in snap.container_uppers.items():
            rw = tree_size(upper)
            out.containers[cid] = (rw, rw + image_size.get(snap.container_images[cid], 0))
    if volumes:
        # a volume's data as its containers see it: what an --opt mount shows while mounted
        out.volumes = {name: tree_size(path) for name, path in snap.volume_paths.items()}
    return out


async def measure(daemon, *, images: bool, containers: bool, volumes: bool = False) -> Usage:
    """Everything `system df` shows, measured now (in a thread: walking trees blocks)."""
    snap = _snapshot(daemon)
    return await asyncio.to_thread(_measure, snap, images=images, containers=containers,
                                   volumes=volumes)


async def container_sizes(daemon, c: Container) -> tuple[int, int]:
    """(SizeRw, SizeRootFs) of one container, for `?size=1` of its inspect and of the list."""
    image = daemon.images.find(c.record["Image"])
    dirs = daemon.images.lower_dirs(image) if image else []
    upper = rootfs.upper_dir(daemon.cfg.data_root, c.id)

    def sizes() -> tuple[int, int]:
        rw = tree_size(upper)
        return rw, rw + sum(LAYER_SIZES.size(d) for d in dirs)
    return await asyncio.to_thread(sizes)


async def writable_size(daemon, c: Container) -> int:
    """SizeRw alone: the bytes a removal of the container frees (for prune's SpaceReclaimed)."""
    return await asyncio.to_thread(tree_size, rootfs.upper_dir(daemon.cfg.data_root, c.id))
