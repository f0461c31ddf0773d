"""The local driver's directories, as dockerd lays them out: `<data-root>/volumes/<name>/_data`
holds the data (or has the volume's --opt mount put on it), and beside it berth keeps the
volume's metadata (labels, options, creation time) in `berth-volume.json`, written whole and
renamed into place, so that a volume survives berthd and a crash leaves no half record."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import mounts as sys_mounts

METADATA = "berth-volume.json"


class LocalDriver:
    def __init__(self, data_root: Path):
        self.root = Path(data_root) / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)      # as dockerd: others may pass, not list

    def path(self, name: str) -> Path:
        """The volume's Mountpoint: what a container binds."""
        return self.root / name / "_data"

    def create(self, name: str, metadata: dict) -> None:
        """The volume's directories and metadata; nothing left behind when it fails."""
        base = self.root / name
        base.mkdir(mode=0o701)
        try:
            (base / "_data").mkdir(mode=0o755)
            self.write_metadata(name, metadata)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    def write_metadata(self, name: str, metadata: dict) -> None:
        base = self.root / name
        tmp = base / (METADATA + ".tmp")
        tmp.write_text(json.dumps(metadata))
        os.replace(tmp, base / METADATA)

    def load(self) -> dict[str, dict]:
        """Every volume on disk, name -> metadata. A directory without metadata (a crash
        between its mkdir and its record) is a volume without labels or options, as dockerd
        takes any directory here for a volume."""
        found = {}
        for base in sorted(self.root.iterdir()):
            if base.name.startswith(".removing-"):
                shutil.rmtree(base, ignore_errors=True)     # a removal berthd did not finish
                continue
            if not base.is_dir() or not (base / "_data").is_dir():
                continue
            try:
                metadata = json.loads((base / METADATA).read_text())
            except (OSError, ValueError):
                metadata = {"Labels": {}, "Options": {},
                            "CreatedAt": int(base.stat().st_ctime * 1e9)}
            found[base.name] = metadata
        return found

    def remove(self, name: str) -> None:
        """The volume's directory and data. Refused (OSError) while something is mounted on
        its _data: a removal must never reach into what an --opt o=bind mount shows."""
        data = self.path(name)
        if data.is_dir() and sys_mounts.is_mount_point(str(data)):
            raise OSError(16, "volume data is still mounted", str(data))
        base = self.root / name
        # renamed first, so that a removal cut short leaves no half volume under its name
        doomed = self.root / f".removing-{name}"
        os.replace(base, doomed)
        shutil.rmtree(doomed)
