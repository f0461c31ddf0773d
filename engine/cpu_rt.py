"""The daemon's real-time CPU budget (berthd --cpu-rt-period / --cpu-rt-runtime, dockerd's
options of the same names): on cgroup v1 with CONFIG_RT_GROUP_SCHED, a cgroup's tasks may run
real-time only within cpu.rt_runtime_us, and a child's budget must fit in its parent's. A new
cgroup gets a runtime of 0, so a container's --cpu-rt-runtime is refused by the kernel
("invalid argument") unless every cgroup above it was given a budget first: what dockerd's
initCPURtController does for each container's parent, and this module does for berthd's.
"""
from __future__ import annotations

import os

from . import sysinfo
from .errors import Internal

NOT_ON_V2 = "daemon-scoped cpu-rt-period and cpu-rt-runtime are not implemented for cgroup v2"
NOT_IN_KERNEL = "daemon-scoped cpu-rt-period and cpu-rt-runtime are not supported by the kernel"


def check_options(period: int, runtime: int, cgroup_v2: bool) -> str | None:
    """dockerd's refusal at start of options this host cannot give, or None."""
    if not (period or runtime):
        return None
    if period < 0 or runtime < -1:
        return (f"invalid cpu-rt-period {period} / cpu-rt-runtime {runtime}: microseconds, "
                "not negative (-1, unlimited, for the runtime only)")
    if cgroup_v2:
        return NOT_ON_V2
    if not sysinfo.cpu_realtime(False):
        return NOT_IN_KERNEL
    return None


def init_parent(parent: str, period: int, runtime: int) -> None:
    """Give each cgroup from the cpu hierarchy's root down to parent (made where missing) the
    daemon's period and runtime, the top first, so that the containers under parent can be
    given a real-time budget. Nothing to do when neither is set. Internal with the path and
    the kernel's reason when a write is refused (a budget above the one above it)."""
    if not (period or runtime):
        return
    mount = sysinfo.v1_mount("cpu")
    if mount is None:
        raise Internal(f"failed to init CPU RT controller: {NOT_IN_KERNEL}")
    path = mount
    for part in parent.strip("/").split("/"):
        if part in ("", "."):
            continue
        path = os.path.join(path, part)
        for name, value in (("cpu.rt_period_us", period), ("cpu.rt_runtime_us", runtime)):
            if not value:
                continue
            file = os.path.join(path, name)
            try:
                os.makedirs(path, exist_ok=True)
                with open(file, "w") as f:
                    f.write(str(value))
            except OSError as e:
                raise Internal(f"failed to init CPU RT controller: write {file}: "
                               f"{(e.strerror or str(e)).lower()}") from None
