"""What this host's kernel and cgroups can apply, looked up once, as dockerd's sysinfo does: an
option the kernel cannot give is dropped at create with dockerd's warning, not passed to a
runtime that would fail on it or accepted and shown in `inspect` as if it were applied."""
from __future__ import annotations

import functools
import os

from .errors import InvalidParameter

BLKIO_WEIGHT_WARNING = ("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")


def _v1_mount(controller: str) -> str | None:
    """Where a cgroup v1 controller's hierarchy is mounted, or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields, _, tail = line.partition(" - ")
        extra = tail.split()
        if len(extra) > 2 and extra[0] == "cgroup" and controller in extra[2].split(","):
            return fields.split()[4]
    return None


@functools.cache
def blkio_weight(cgroup_v2: bool) -> bool:
    """Whether a container can be given a block I/O weight. On v1 that takes the CFQ
    scheduler's blkio.weight or BFQ's blkio.bfq.weight; kernels since 5.0 have no CFQ, and
    one without BFQ has neither file. On v2 it takes the io controller (as dockerd decides)."""
    if cgroup_v2:
        try:
            with open("/sys/fs/cgroup/cgroup.controllers") as f:
                return "io" in f.read().split()
        except OSError:
            return False
    mount = _v1_mount("blkio")
    return mount is not None and any(
        os.path.exists(f"{mount}/{name}") for name in ("blkio.weight", "blkio.bfq.weight"))


def check_blkio_weight(resources: dict, cgroup_v2: bool, warnings: list[str]) -> None:
    """dockerd's order: a weight this kernel cannot give is discarded with a warning (and set
    to 0, so `inspect` does not show it); one it can give must be within 10..1000."""
    weight = resources.get("BlkioWeight") or 0
    if weight and not blkio_weight(cgroup_v2):
        warnings.append(BLKIO_WEIGHT_WARNING)
        resources["BlkioWeight"] = 0
    elif weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
