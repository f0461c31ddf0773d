"""`docker import`: a root filesystem tarball (plain, gzip, bzip2, xz or zstd) as a one-layer
image, as dockerd's ImportImage makes it: the layer is the plain tar (so its blob digest is its
diff ID), the run config comes from the `-c` changes alone, and the message (or "Imported from
<source>") is the image's comment and its one history entry's.
"""
from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from .. import timefmt
from . import dockerfile_changes, layers
from .store import Image, ImageStore

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
    os.uname().machine, os.uname().machine)


def _plain(f: BinaryIO, what: str) -> BinaryIO:
    """The tarball's plain stream; bzip2 and xz besides the layer compressions, as dockerd."""
    head = f.read(6)
    f.seek(0)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f)
    return layers.open_plain(f, what)


def decompress(src: Path, dest: Path) -> None:
    """Write src's plain tar to dest."""
    with open(src, "rb") as f, open(dest, "wb") as out:
        try:
            shutil.copyfileobj(_plain(f, "of the import"), out, 1 << 20)
        except (EOFError, OSError, lzma.LZMAError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise layers.LayerError(f"the imported tarball cannot be decompressed: "
                                    f"{e or 'truncated'}") from None


def import_rootfs(images: ImageStore, src: Path, tmp_dir: Path, *, source: str,
                  changes: list[str], message: str, tags: list[str]) -> Image:
    """The image made of the tarball at src (left for the caller to remove)."""
    run_config = dockerfile_changes.apply({}, changes)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="import-", dir=tmp_dir))
    try:
        layer = work / "layer.tar"
        decompress(src, layer)
        diff_id = "sha256:" + _sha256(layer)
        created = timefmt.rfc3339nano(timefmt.now_ns())
        comment = message or f"Imported from {source}"
        config = {"architecture": ARCH, "os": "linux", "created": created, "comment": comment,
                  "config": run_config,
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                  "history": [{"created": created, "comment": comment}]}
        return images.import_image(config, [layer], tags)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
