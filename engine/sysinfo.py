"""What this host's kernel and cgroups can apply, looked up once, as dockerd's sysinfo does: an
option the kernel cannot give is dropped at create with dockerd's warning, not passed to a
runtime that would fail on it or accepted and shown in `inspect` as if it were applied."""
from __future__ import annotations

import functools
import os
import stat as _stat

from .errors import InvalidParameter

BLKIO_WEIGHT_WARNING = ("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")


def v1_mount(controller: str) -> str | None:
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
    mount = v1_mount("blkio")
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


BLKIO_DEVICE_WARNINGS = {
    "BlkioWeightDevice": ("Your kernel does not support Block I/O weight_device or the cgroup "
                          "is not mounted. Weight-device discarded."),
    "BlkioDeviceReadBps": ("Your kernel does not support BPS Block I/O read limit or the cgroup "
                           "is not mounted. Block I/O BPS read limit discarded."),
    "BlkioDeviceWriteBps": ("Your kernel does not support BPS Block I/O write limit or the "
                            "cgroup is not mounted. Block I/O BPS write limit discarded."),
    "BlkioDeviceReadIOps": ("Your kernel does not support IOPS Block read limit or the cgroup "
                            "is not mounted. Block I/O IOPS read limit discarded."),
    "BlkioDeviceWriteIOps": ("Your kernel does not support IOPS Block write limit or the cgroup "
                             "is not mounted. Block I/O IOPS write limit discarded."),
}
_V1_FILES = {
    "BlkioWeightDevice": ("blkio.weight_device", "blkio.bfq.weight_device"),
    "BlkioDeviceReadBps": ("blkio.throttle.read_bps_device",),
    "BlkioDeviceWriteBps": ("blkio.throttle.write_bps_device",),
    "BlkioDeviceReadIOps": ("blkio.throttle.read_iops_device",),
    "BlkioDeviceWriteIOps": ("blkio.throttle.write_iops_device",),
}
CPU_RT_PERIOD_WARNING = ("Your kernel does not support CPU real-time scheduler. CPU real-time "
                         "period discarded.")
CPU_RT_RUNTIME_WARNING = ("Your kernel does not support CPU real-time scheduler. CPU real-time "
                          "runtime discarded.")


@functools.cache
def blkio_file(key: str, cgroup_v2: bool) -> bool:
    """Whether the kernel offers the per-device blkio option key (a HostConfig field), as
    dockerd's sysinfo looks for its file (v2: the io controller)."""
    if cgroup_v2:
        return blkio_weight(True)
    mount = v1_mount("blkio")
    return mount is not None and any(os.path.exists(f"{mount}/{name}")
                                     for name in _V1_FILES[key])


def check_blkio_devices(resources: dict, cgroup_v2: bool, warnings: list[str]) -> None:
    """--blkio-weight-device and --device-{read,write}-{bps,iops}: dropped with dockerd's
    warning where the kernel has no file for them, else each path must be a device node."""
    for key, warning in BLKIO_DEVICE_WARNINGS.items():
        entries = resources.get(key) or []
        if not entries:
            continue
        if not blkio_file(key, cgroup_v2):
            warnings.append(warning)
            resources[key] = []
            continue
        for entry in entries:
            path = entry.get("Path") or ""
            try:
                st = os.stat(path)
            except OSError as e:
                raise InvalidParameter(f"{key}: stat {path}: {e.strerror.lower()}") from None
            if not (_stat.S_ISBLK(st.st_mode) or _stat.S_ISCHR(st.st_mode)):
                raise InvalidParameter(f"{key}: {path} is not a device node")
            if key == "BlkioWeightDevice" and not 10 <= (entry.get("Weight") or 0) <= 1000:
                raise InvalidParameter("Range of blkio weight is from 10 to 1000")


@functools.cache
def cpu_realtime(cgroup_v2: bool) -> bool:
    """dockerd's sysinfo.CPURealtime: cgroup v1's cpu.rt_period_us and cpu.rt_runtime_us
    (kernels with CONFIG_RT_GROUP_SCHED); none on v2."""
    if cgroup_v2:
        return False
    mount = v1_mount("cpu")
    return mount is not None and os.path.exists(f"{mount}/cpu.rt_runtime_us")


def check_cpu_realtime(resources: dict, cgroup_v2: bool, warnings: list[str]) -> None:
    """dockerd's verifyPlatformContainerResources for --cpu-rt-period and --cpu-rt-runtime."""
    if (resources.get("CpuRealtimePeriod") or 0) > 0 and not cpu_realtime(cgroup_v2):
        warnings.append(CPU_RT_PERIOD_WARNING)
        resources["CpuRealtimePeriod"] = 0
    if (resources.get("CpuRealtimeRuntime") or 0) > 0 and not cpu_realtime(cgroup_v2):
        warnings.append(CPU_RT_RUNTIME_WARNING)
        resources["CpuRealtimeRuntime"] = 0
    period = resources.get("CpuRealtimePeriod") or 0
    runtime = resources.get("CpuRealtimeRuntime") or 0
    if period and runtime and runtime > period:
        raise InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")


# -- what `docker info` reports -------------------------------------------------------------
# The same lookups as the options above, as dockerd's sysinfo fills system.Info: a capability
# shows only where the kernel offers it and berth applies it (HostConfig fields, host_config.py).

def _v2_controllers() -> set[str]:
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return set(f.read().split())
    except OSError:
        return set()


def _v2_file_in_a_child(name: str) -> bool:
    """Whether a non-root cgroup v2 group offers the file (the root has no memory.swap.max)."""
    try:
        entries = os.scandir("/sys/fs/cgroup")
    except OSError:
        return False
    with entries:
        return any(e.is_dir(follow_symlinks=False) and os.path.exists(f"{e.path}/{name}")
                   for e in entries)


def _v1_file(controller: str, name: str) -> bool:
    mount = v1_mount(controller)
    return mount is not None and os.path.exists(f"{mount}/{name}")


@functools.cache
def cgroup_capabilities(cgroup_v2: bool) -> dict[str, bool]:
    """dockerd's system.Info capability fields, looked up once: MemoryLimit, SwapLimit,
    KernelMemoryTCP, OomKillDisable, CpuCfsPeriod, CpuCfsQuota, CPUShares, CPUSet, PidsLimit.
    KernelMemoryTCP is false: no API version berth serves can ask for it."""
    if cgroup_v2:
        have = _v2_controllers()
        return {"MemoryLimit": "memory" in have,
                "SwapLimit": "memory" in have and _v2_file_in_a_child("memory.swap.max"),
                "KernelMemoryTCP": False, "OomKillDisable": False,
                "CpuCfsPeriod": "cpu" in have, "CpuCfsQuota": "cpu" in have,
                "CPUShares": "cpu" in have, "CPUSet": "cpuset" in have,
                "PidsLimit": "pids" in have}
    cfs = _v1_file("cpu", "cpu.cfs_period_us") and _v1_file("cpu", "cpu.cfs_quota_us")
    return {"MemoryLimit": v1_mount("memory") is not None,
            "SwapLimit": _v1_file("memory", "memory.memsw.limit_in_bytes"),
            "KernelMemoryTCP": False,
            "OomKillDisable": _v1_file("memory", "memory.oom_control"),
            "CpuCfsPeriod": cfs, "CpuCfsQuota": cfs,
            "CPUShares": _v1_file("cpu", "cpu.shares"),
            "CPUSet": v1_mount("cpuset") is not None,
            "PidsLimit": v1_mount("pids") is not None}


def ipv4_forwarding(path: str = "/proc/sys/net/ipv4/ip_forward") -> bool:
    """As dockerd reads it for `docker info` (not cached: an administrator may change it)."""
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def info_warnings(caps: dict[str, bool], cgroup_v2: bool, ip_forward: bool) -> list[str]:
    """dockerd's fillPlatformInfo warnings, in its order, for what this host lacks."""
    out = []
    for key, what in (("MemoryLimit", "memory limit"), ("SwapLimit", "swap limit")):
        if not caps[key]:
            out.append(f"WARNING: No {what} support")
    if not cgroup_v2:
        if not caps["KernelMemoryTCP"]:
            out.append("WARNING: No kernel memory TCP limit support")
        if not caps["OomKillDisable"]:
            out.append("WARNING: No oom kill disable support")
    for key, what in (("CpuCfsQuota", "cpu cfs quota"), ("CpuCfsPeriod", "cpu cfs period"),
                      ("CPUShares", "cpu shares"), ("CPUSet", "cpuset")):
        if not caps[key]:
            out.append(f"WARNING: No {what} support")
    if cgroup_v2:
        if not blkio_weight(True):
            out.append("WARNING: No io.weight support")
            out.append("WARNING: No io.weight (per device) support")
    for key, v2_name, v1_name in (
            ("BlkioDeviceReadBps", "io.max (rbps)", "blkio throttle.read_bps_device"),
            ("BlkioDeviceWriteBps", "io.max (wbps)", "blkio throttle.write_bps_device"),
            ("BlkioDeviceReadIOps", "io.max (riops)", "blkio throttle.read_iops_device"),
            ("BlkioDeviceWriteIOps", "io.max (wiops)", "blkio throttle.write_iops_device")):
        if not blkio_file(key, cgroup_v2):
            out.append(f"WARNING: No {v2_name if cgroup_v2 else v1_name} support")
    if not ip_forward:
        out.append("WARNING: IPv4 forwarding is disabled")
    return out
