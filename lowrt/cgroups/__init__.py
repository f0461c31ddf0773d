"""lowrt's cgroups library: one interface over cgroup v1, v2 and the hybrid layout.

    from lowrt import cgroups
    m = cgroups.manager(config["linux"].get("cgroupsPath"), container_id)
    notes = m.create(config["linux"].get("resources"))   # mkdir + limits, before add()
    m.add(pid)
    state["cgroup_paths"] = m.paths                      # later: cgroups.load(paths)

The hybrid layout (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) is
treated as v1, as runc does, and the container joins the cgroup2 hierarchy too (the "" key
of `paths`), as runc 1.1 does. Errors are CgroupError, whose message names the path or value.
"""
from __future__ import annotations

import posixpath

from lowrt.cgroups.base import Manager
from lowrt.cgroups.fs import CgroupError
from lowrt.cgroups.mounts import check_path, clean_path, layout, proc_cgroups

__all__ = ["CgroupError", "Manager", "version", "manager", "manager_for_pid", "load", "preload"]

# The v1 hierarchies a container joins: every controller runc knows, and name=systemd
# (so that /proc/<pid>/cgroup inside looks as it does under runc).
_V1_JOINED = ("cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
              "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "name=systemd")


def version() -> int:
    """1 or 2: which hierarchy holds the controllers on this host (hybrid reads as 1)."""
    return layout().version


def manager(cgroups_path: str | None, container_id: str) -> Manager:
    """The cgroup for an OCI `linux.cgroupsPath` (absolute: from the hierarchy's root;
    relative: below the runtime's own cgroup on v1, below its parent on v2; absent: the
    container id, relative), as runc resolves it."""
    path = cgroups_path or ""
    check_path(path)
    if path:
        inner = clean_path(path)
    else:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise CgroupError(f"container id {container_id!r} cannot name a cgroup")
        inner = container_id
    if inner in ("/", "."):
        raise CgroupError(f"cgroupsPath {path!r} names the runtime's own or the root cgroup")
    lay = layout()
    if lay.version == 2:
        from lowrt.cgroups.v2 import V2Manager
        mount = lay.unified
        if inner.startswith("/"):
            return V2Manager(posixpath.join(mount.mountpoint, inner.lstrip("/")),
                             mount.mountpoint)
        own = proc_cgroups().get("", "/")
        return V2Manager(mount.dir_for(posixpath.join(posixpath.dirname(own), inner)),
                         mount.mountpoint)
    from lowrt.cgroups.v1 import V1Manager
    if not lay.v1:
        raise CgroupError("no cgroup hierarchy is mounted (see /proc/self/mountinfo)")
    own = None if inner.startswith("/") else proc_cgroups()
    paths = {}
    for controller in _V1_JOINED:
        mount = lay.v1.get(controller)
        if mount is None:
            continue
        if own is None:
            paths[controller] = posixpath.join(mount.mountpoint, inner.lstrip("/"))
        else:
            paths[controller] = mount.dir_for(posixpath.join(own.get(controller, "/"), inner))
    if lay.unified is not None:  # hybrid: join the (controller-less) cgroup2 hierarchy too
        if own is None:
            paths[""] = posixpath.join(lay.unified.mountpoint, inner.lstrip("/"))
        else:
            paths[""] = lay.unified.dir_for(posixpath.join(own.get("", "/"), inner))
    return V1Manager(paths)


def preload() -> None:
    """Read this host's layout and import its manager code now, for a caller with idle time
    before it needs a manager (the shim, while the runtime creates a container)."""
    if layout().version == 2:
        from lowrt.cgroups import v2  # noqa: F401
    else:
        from lowrt.cgroups import v1  # noqa: F401


def manager_for_pid(pid: int) -> Manager:
    """The cgroup a running process is in (for `exec` into a container, or the shim)."""
    where = proc_cgroups(pid)
    lay = layout()
    if lay.version == 2:
        from lowrt.cgroups.v2 import V2Manager
        if "" not in where:
            raise CgroupError(f"process {pid} has no cgroup v2 entry in /proc/{pid}/cgroup")
        return V2Manager(lay.unified.dir_for(where[""]), lay.unified.mountpoint)
    from lowrt.cgroups.v1 import V1Manager
    paths = {c: lay.v1[c].dir_for(where[c]) for c in _V1_JOINED if c in lay.v1 and c in where}
    if lay.unified is not None and "" in where:
        paths[""] = lay.unified.dir_for(where[""])
    return V1Manager(paths)


def load(paths: dict[str, str]) -> Manager:
    """Reopen a cgroup from a manager's saved `paths` (a relative cgroupsPath resolves
    against the caller's own cgroup, which may differ between `create` and `delete`)."""
    if set(paths) == {""}:
        from lowrt.cgroups.v2 import V2Manager
        unified = layout().unified
        return V2Manager(paths[""], unified.mountpoint if unified else "/sys/fs/cgroup")
    from lowrt.cgroups.v1 import V1Manager
    return V1Manager(paths)
