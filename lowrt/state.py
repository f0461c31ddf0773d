"""Containers lowrt has created: ids, the state directory under --root, and each one's status.

`<root>/<id>/state.json` records what later commands need (init pid and its start time, bundle,
config, cgroup). `<root>/<id>/exec.fifo` exists from `create` until `start`: the init blocks
opening it for writing, so its presence is what "created" means.
"""
from __future__ import annotations

import os

from lowrt import fastjson
from lowrt.errors import LowrtError

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
OCI_VERSION = "1.0.2-dev"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(cid: str) -> None:
    """runc's rule: word characters, '+', '-' and '.', and not a path ('.', '..')."""
    if not cid:
        raise LowrtError("container id cannot be empty")
    if cid in (".", "..") or not set(cid) <= _ID_CHARS or len(cid) > 1024:
        raise LowrtError(f"invalid container id format: {cid!r}")


def process_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of pid, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid: int, start_time: int | None) -> bool:
    """Whether pid is still the same, unreaped-or-running, non-zombie process."""
    if pid <= 0:
        return False
    st = process_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start_time is None or st[1] == start_time


def remove_state_dir(path: str) -> None:
    """rmtree for a state directory, which holds only files (shutil costs 10 ms to import)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class Container:
    """A container's record under --root; load() reads it, save() writes it atomically."""

    def __init__(self, root: str, cid: str, record: dict | None = None) -> None:
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.record: dict = record if record is not None else {}

    # --- the record -----------------------------------------------------------------------
    @classmethod
    def load(cls, root: str, cid: str) -> "Container":
        validate_id(cid)
        c = cls(root, cid)
        try:
            with open(os.path.join(c.dir, STATE_FILE), "rb") as f:
                c.record = fastjson.loads(f.read())
        except FileNotFoundError:
            raise LowrtError(f"container {cid} does not exist") from None
        except ValueError as e:
            raise LowrtError(f"container {cid}: state file {c.dir}/{STATE_FILE} is corrupt: {e}") from None
        return c

    def save(self) -> None:
        tmp = os.path.join(self.dir, f".{STATE_FILE}.tmp")
        data = fastjson.dumps(self.record, compact=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))

    @property
    def pid(self) -> int:
        return self.record.get("init_pid", 0)

    @property
    def config(self) -> dict:
        return self.record["config"]

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    # --- status ---------------------------------------------------------------------------
    def running(self) -> bool:
        return alive(self.pid, self.record.get("init_start_time"))

    def status(self) -> str:
        if not self.running():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self.cgroup_frozen():
            return "paused"
        return "running"

    def cgroup(self):
        """The container's cgroup as create made it (a relative cgroupsPath resolved then)."""
        from lowrt import cgroups
        return cgroups.load(self.record["cgroup_paths"])

    def cgroup_frozen(self) -> bool:
        try:
            return self.cgroup().frozen()
        except Exception:  # noqa: BLE001 - no freezer, or the cgroup is gone: not paused
            return False

    def oci_state(self, status: str | None = None) -> dict:
        """The OCI runtime spec's state of this container, as `state` prints and hooks read it."""
        status = status or self.status()
        out = {
            "ociVersion": self.config.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "pid": 0 if status == "stopped" else self.pid,
            "status": status,
            "bundle": self.record["bundle"],
            "rootfs": self.record["rootfs"],
            "created": self.record["created"],
        }
        annotations = self.config.get("annotations")
        if annotations:
            out["annotations"] = annotations
        out["owner"] = ""
        return out
