"""Driving lowrt from tests: its command line, bundles made from a busybox rootfs, cleanup.

Every container a test makes is deleted (`delete --force`) by the fixture that made its
Runtime, even when the test fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
LOWRT = str(VENV_BIN / "lowrt")


def unique_id(prefix: str = "lt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Runtime:
    """One private --root for lowrt, and the containers made under it."""

    def __init__(self, root: Path, binary: str = LOWRT) -> None:
        self.root = Path(root)
        self.binary = binary
        self.log = self.root.parent / f"{self.root.name}.log"
        self.ids: set[str] = set()

    def argv(self, *args: str, log_json: bool = True) -> list[str]:
        base = [self.binary, "--root", str(self.root), "--log", str(self.log)]
        if log_json:
            base += ["--log-format", "json"]
        return base + list(args)

    def run(self, *args: str, check: bool = True, timeout: float = 30, input: bytes | None = None,
            **kwargs) -> subprocess.CompletedProcess:
        for a in args:
            if a.startswith("lt-") or a.startswith("bad-"):
                self.ids.add(a)
        # Files, not pipes: a container's init inherits lowrt's stdio, and a pipe it holds
        # open would keep the test waiting for EOF until the container exits.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(self.argv(*args), stdout=out, stderr=err, timeout=timeout,
                                  input=input, **kwargs)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"lowrt {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stderr.decode(errors='replace')}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self.run("state", cid).stdout)

    def cleanup(self) -> None:
        """Delete every container under this root, and those the test named."""
        found = set(os.listdir(self.root)) if self.root.is_dir() else set()
        for cid in sorted(self.ids | found):
            subprocess.run(self.argv("delete", "--force", "--", cid), capture_output=True, timeout=30)


def make_bundle(path: Path, rootfs: Path, args: list[str], **changes) -> dict:
    """A bundle at path whose config is `lowrt spec`'s with a plain (non-tty) process running
    args; keyword changes are merged into the config's top level (dicts one level deep)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").unlink(missing_ok=True)
    subprocess.run([LOWRT, "spec", "--bundle", str(path)], check=True, capture_output=True)
    config = json.loads((path / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["root"]["path"] = str(rootfs)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    write_config(path, config)
    return config


def write_config(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config, indent=1))


class CgroupView:
    """What the kernel says about a process's cgroup, on v1 or v2 alike (limits read back)."""

    def __init__(self, pid: int) -> None:
        self.v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        self.paths: dict[str, str] = {}
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    self.paths[c] = path

    def dir(self, controller: str) -> str:
        if self.v2:
            return "/sys/fs/cgroup" + self.paths[""]
        return f"/sys/fs/cgroup/{controller}{self.paths[controller]}"

    def _read(self, controller: str, name: str) -> str:
        with open(f"{self.dir(controller)}/{name}") as f:
            return f.read().strip()

    def memory_limit(self) -> int | None:
        raw = self._read("memory", "memory.max" if self.v2 else "memory.limit_in_bytes")
        return None if raw == "max" else int(raw)

    def pids_max(self) -> str:
        return self._read("pids", "pids.max")

    def cpu_quota(self) -> int:
        if self.v2:
            quota = self._read("cpu", "cpu.max").split()[0]
            return -1 if quota == "max" else int(quota)
        return int(self._read("cpu", "cpu.cfs_quota_us"))

    def cpu_shares_as_configured(self, shares: int) -> bool:
        """v1 keeps shares; v2 keeps the weight runc converts them to."""
        if self.v2:
            return int(self._read("cpu", "cpu.weight")) == 1 + ((shares - 2) * 9999) // 262142
        return int(self._read("cpu", "cpu.shares")) == shares

    def cpuset_cpus(self) -> str:
        return self._read("cpuset", "cpuset.cpus")

    def frozen(self) -> bool:
        if self.v2:
            return self._read("", "cgroup.freeze") == "1"
        return self._read("freezer", "freezer.state") == "FROZEN"
