"""A read-only view of an image's files through its unpacked layers (overlay lowerdirs, the
top layer first), without mounting anything: what COPY --from, COPY --chown's name lookup and
WORKDIR's "does it exist" need. OCI whiteouts in a layer hide the path in the layers below,
an opaque whiteout hides a directory's lower contents."""
from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from pathlib import Path

from ..images.layers import OPAQUE_WHITEOUT, WHITEOUT_PREFIX


class RootfsView:
    def __init__(self, lower_dirs: list[str]):
        self.layers = [Path(d) for d in lower_dirs]

    def _parts(self, rel: str) -> list[str]:
        return [p for p in rel.strip("/").split("/") if p and p != "."]

    def find(self, rel: str) -> Path | None:
        """The host path of rel as the merged view shows it (symlinks in rel not followed)."""
        parts = self._parts(rel)
        for layer in self.layers:
            hidden = False
            for i in range(len(parts)):
                parent = layer.joinpath(*parts[:i])
                if (parent / (WHITEOUT_PREFIX + parts[i])).exists():
                    hidden = True
                    break
                if i < len(parts) - 1 and (parent / parts[i] / OPAQUE_WHITEOUT).exists():
                    # an opaque directory on the way: lower layers show nothing under it
                    p = layer.joinpath(*parts)
                    return p if os.path.lexists(p) else None
            if hidden:
                return None
            p = layer.joinpath(*parts)
            if os.path.lexists(p):
                return p
        return None

    def listdir(self, rel: str) -> dict[str, Path]:
        """The merged directory's entries: name -> host path of the top-most one."""
        parts = self._parts(rel)
        out: dict[str, Path] = {}
        hidden: set[str] = set()
        for layer in self.layers:
            d = layer.joinpath(*parts)
            if not d.is_dir() or d.is_symlink():
                if os.path.lexists(d):
                    break       # a non-directory here hides the lower directories
                continue
            for name in os.listdir(d):
                if name == OPAQUE_WHITEOUT:
                    continue
                if name.startswith(WHITEOUT_PREFIX):
                    hidden.add(name[len(WHITEOUT_PREFIX):])
                elif name not in out and name not in hidden:
                    out[name] = d / name
            if (d / OPAQUE_WHITEOUT).exists():
                break
        return out

    def read_text(self, rel: str) -> str:
        p = self.find(rel)
        if p is None or not p.is_file():
            return ""
        return p.read_text(errors="replace")

    def glob(self, pattern: str) -> list[str]:
        """The paths (relative, sorted) that pattern's wildcards match, component by
        component as Go's filepath.Match (dot files included)."""
        rels = [""]
        for part in self._parts(pattern):
            if re.search(r"[*?\[]", part):
                rels = [posixpath.join(r, name) for r in rels
                        for name in self.listdir(r) if fnmatch.fnmatchcase(name, part)]
            else:
                rels = [posixpath.join(r, part) for r in rels
                        if self.find(posixpath.join(r, part)) is not None]
        return sorted(r for r in rels if r)
