"""Where the cgroup hierarchies are mounted and where a process sits in them.

Mounts come from /proc/self/mountinfo, never from guessed paths: cpu and cpuacct are separate
hierarchies on some hosts and co-mounted as `cpu,cpuacct` on others, and inside a container
a hierarchy's mount may show only a subtree (the mount's root field says which).
"""
from __future__ import annotations

import posixpath

from lowrt.cgroups.fs import CgroupError, read

V1_CONTROLLERS = frozenset((
    "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls",
    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
))


class Mount:
    """One cgroup hierarchy: where it is mounted, and which of its cgroups the mount shows."""

    __slots__ = ("mountpoint", "root", "controllers")

    def __init__(self, mountpoint: str, root: str, controllers: tuple[str, ...]):
        self.mountpoint = mountpoint
        self.root = root
        self.controllers = controllers

    def dir_for(self, cgroup: str) -> str:
        """The directory of `cgroup` (a path in the hierarchy) under this mount."""
        rel = posixpath.relpath(cgroup, self.root) if self.root != "/" else cgroup.lstrip("/")
        if rel in ("", "."):
            return self.mountpoint
        if rel.startswith(".."):  # outside what the mount shows: nothing better than the top
            rel = cgroup.lstrip("/")
        return posixpath.join(self.mountpoint, rel)

    def __repr__(self) -> str:
        return f"Mount({self.mountpoint!r}, root={self.root!r}, {','.join(self.controllers)})"


class Layout:
    """The host's cgroup mounts: v1 hierarchies by controller, and the cgroup2 mount if any."""

    def __init__(self, v1: dict[str, Mount], unified: Mount | None, unified_at_root: bool):
        self.v1 = v1
        self.unified = unified
        self.version = 2 if unified is not None and (
            unified_at_root or not any(c in V1_CONTROLLERS for c in v1)) else 1

    def v1_mounts(self) -> list[Mount]:
        """Each v1 hierarchy once (co-mounted controllers share one)."""
        seen: dict[str, Mount] = {}
        for m in self.v1.values():
            seen.setdefault(m.mountpoint, m)
        return list(seen.values())


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> Layout:
    v1: dict[str, Mount] = {}
    unified = None
    unified_at_root = False
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        post_fields = post.split()
        if not post_fields or post_fields[0] not in ("cgroup", "cgroup2"):
            continue
        fields = pre.split()
        if len(fields) < 5:
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if post_fields[0] == "cgroup2":
            if mountpoint == "/sys/fs/cgroup":
                unified, unified_at_root = Mount(mountpoint, root, ()), True
            elif unified is None:
                unified = Mount(mountpoint, root, ())
            continue
        opts = post_fields[2].split(",") if len(post_fields) > 2 else []
        controllers = tuple(o for o in opts if o in V1_CONTROLLERS or o.startswith("name="))
        if not controllers:
            continue
        mount = Mount(mountpoint, root, controllers)
        for c in controllers:
            v1.setdefault(c, mount)
    return Layout(v1, unified, unified_at_root)


_layout: Layout | None = None


def layout() -> Layout:
    """The host's layout, read once per process (mounts do not move under a runtime)."""
    global _layout
    if _layout is None:
        _layout = parse_mountinfo(read("/proc/self/mountinfo"))
    return _layout


def proc_cgroups(pid: int | str = "self") -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the unified entry's key is ""."""
    try:
        text = read(f"/proc/{pid}/cgroup")
    except CgroupError as err:
        raise CgroupError(f"find the cgroup of process {pid}: {err}", err.errno) from None
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if not parts[1]:
            out[""] = parts[2]
        for c in parts[1].split(","):
            if c:
                out[c] = parts[2]
    return out


def clean_path(path: str) -> str:
    """runc's path cleaning: collapse `..` so a relative path cannot climb out of its parent."""
    if not path:
        return ""
    if path.startswith("/"):
        return posixpath.normpath("/" + path.lstrip("/"))
    cleaned = posixpath.normpath("/" + path).lstrip("/")
    return cleaned or "."


def check_path(cgroups_path: str) -> None:
    """Reject the forms this runtime does not handle, naming them."""
    if cgroups_path.count(":") == 2 and "/" not in cgroups_path:
        raise CgroupError(
            f"cgroupsPath {cgroups_path!r} is a systemd slice:prefix:name path: "
            "the systemd cgroup driver is not supported, use a cgroupfs path")
