"""The images berth ships: seeded into the store on first start, with no network.

`busybox` is the host's static busybox with a symlink per applet; `hello-world` is berth's own
static program (hello/hello.c). Both are ordinary images of the store: layer tar blobs unpacked
through layers.unpack_into, an OCI config and manifest; they can be saved, pushed, tagged and
removed like any other, and are made only once per data root.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from .. import timefmt
from . import layers
from .hello import build as hello_build
from .store import ImageStore

log = logging.getLogger("berthd.images")

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_REF = "busybox:latest"
HELLO_REF = "hello-world:latest"
SEEDED_KEY = "builtin_images_seeded"      # the built-in refs this data root was given once


def _image_config(created_ns: int, diff_id: str, config: dict, created_by: str) -> dict:
    created = timefmt.rfc3339nano(created_ns)
    return {
        "architecture": _oci_arch(),
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": created_by}],
    }


def _oci_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine,
                                                                                      machine)


def _add(images: ImageStore, tmp_dir: Path, entries: list[layers.Entry], mtime: int,
         config: dict, created_by: str, tag: str) -> None:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tar = tmp_dir / f"layer-{os.getpid()}.tar"
    hexd, _ = layers.write_tar(entries, tar, mtime)
    diff_id = images.import_blob_file(tar, hexd)
    image_config = _image_config(mtime * 1_000_000_000, diff_id, config, created_by)
    image = images.add_image(image_config, [diff_id], [tag])
    log.info("seeded built-in image %s (%s)", tag, image.id[:19])


def _base_dirs() -> list[layers.Entry]:
    dirs = [layers.Entry(d, "dir") for d in ("bin", "dev", "etc", "home", "proc", "sys", "usr",
                                             "usr/sbin", "var", "var/spool")]
    dirs += [layers.Entry("root", "dir", 0o700), layers.Entry("tmp", "dir", 0o1777)]
    return dirs


def seed_busybox(images: ImageStore, tmp_dir: Path, busybox: str | None = None) -> None:
    busybox = busybox or shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    entries = _base_dirs()
    entries.append(layers.Entry("bin/busybox", "file", 0o755, source=busybox))
    entries += [layers.Entry(f"bin/{name}", "symlink", 0o777, target="busybox")
                for name in sorted(set(applets.stdout.split())) if name != "busybox"]
    entries += [
        layers.Entry("etc/passwd", "file", 0o644, data=(
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
            b"nobody:x:65534:65534:nobody:/home:/bin/false\n")),
        layers.Entry("etc/group", "file", 0o644, data=(
            b"root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n")),
    ]
    mtime = int(os.stat(busybox).st_mtime)
    _add(images, tmp_dir, entries, mtime, {"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
         f"berth: built-in image from the host's {busybox}", BUSYBOX_REF)


def hello_binary(tmp_dir: Path) -> Path:
    """The installed hello program, else one built now into tmp_dir."""
    if hello_build.BINARY.is_file():
        return hello_build.BINARY
    return hello_build.build(tmp_dir / "hello")


def seed_hello(images: ImageStore, tmp_dir: Path) -> None:
    binary = hello_binary(tmp_dir)
    entries = [layers.Entry("hello", "file", 0o755, source=str(binary))]
    mtime = int(os.stat(hello_build.SOURCE).st_mtime)
    _add(images, tmp_dir, entries, mtime, {"Env": [DEFAULT_PATH], "Cmd": ["/hello"]},
         "berth: built-in image from engine/images/hello/hello.c", HELLO_REF)


def seed(images: ImageStore, tmp_dir: Path) -> None:
    """Add the built-in images at the first start of a data root; a failure is logged, not
    fatal, and tried again at the next start. Once seeded they are ordinary images: one that
    is removed (rmi, prune) stays removed, as with any other, and is not made again."""
    seeded = set(json.loads(images.store.get_meta(SEEDED_KEY) or "[]"))
    for ref, fn in ((HELLO_REF, seed_hello), (BUSYBOX_REF, seed_busybox)):
        if ref in seeded:
            continue
        if not images.has_tag(ref):
            try:
                fn(images, tmp_dir)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
                log.error("cannot seed the built-in image %s: %s", ref, e)
                continue
        seeded.add(ref)
        images.store.set_meta(SEEDED_KEY, json.dumps(sorted(seeded)))
