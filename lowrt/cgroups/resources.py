"""Pure conversions from OCI LinuxResources values to what cgroup files take.

The OCI spec was written for cgroup v1; v2 needs conversions whose formulas must match runc's
exactly, because containerd, docker and kubelet compute expectations with the same formulas.
"""
from __future__ import annotations

import os

from lowrt.cgroups.fs import CgroupError


def get_int(section: dict, key: str, where: str) -> int | None:
    """section[key] as an int (None when absent or null), or an error naming the field."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"linux.resources.{where}.{key}: expected an integer, got {value!r}")
    return value


def get_section(resources: dict, key: str) -> dict:
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CgroupError(f"linux.resources.{key}: expected an object, got {value!r}")
    return value


def get_list(section: dict, key: str, where: str) -> list:
    value = section.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"linux.resources.{where}{key}: expected a list, got {value!r}")
    return value


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] to cpu.weight [1, 10000], runc's linear mapping; 0 means unset."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] to io.weight [1, 10000], runc's linear mapping; 0 means unset."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(memory_swap: int, memory: int) -> int:
    """OCI memory.swap is memory+swap together (v1 memsw); v2's memory.swap.max is swap alone.

    Returns -1 for "max", 0 for "leave alone", else the swap-only amount. A -1 memory limit
    with no swap given means both unlimited, as on v1.
    """
    if memory == -1 and memory_swap == 0:
        return -1
    if memory_swap in (-1, 0):
        return memory_swap
    if memory in (0, -1):
        raise CgroupError(
            f"memory.swap {memory_swap}: unable to set a swap limit without a memory limit")
    if memory < 0:
        raise CgroupError(f"memory.limit {memory}: invalid memory value")
    if memory_swap < memory:
        raise CgroupError(
            f"memory.swap {memory_swap}: memory+swap limit must be >= the memory limit {memory}")
    return memory_swap - memory


def v2_limit(value: int) -> str:
    """-1 (or any negative) reads as "max" in v2 files."""
    return "max" if value < 0 else str(value)


def cpu_max(quota: int | None, period: int | None) -> str:
    """The `cpu.max` line: "$QUOTA $PERIOD", quota "max" when unlimited, period 100000 default."""
    text = str(quota) if quota is not None and quota > 0 else "max"
    return f"{text} {period if period else 100000}"


def pids_max(limit: int) -> str:
    """OCI pids.limit: a positive number is the limit, 0 or -1 is no limit ("max")."""
    return str(limit) if limit > 0 else "max"


def io_max_line(major: int, minor: int, key: str, rate: int) -> str:
    """One io.max entry. v2 rejects 0 (and 1) where v1 takes 0 as "remove the limit": map 0 to
    "max" so an update that clears a throttle works on both."""
    return f"{major}:{minor} {key}={rate if rate > 0 else 'max'}"


THROTTLES = (
    # OCI key, v1 file, v2 io.max key
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


def throttle_entries(block_io: dict) -> list[tuple[str, str, int, int, int]]:
    """Every throttle rule as (v1 file, v2 key, major, minor, rate), validated."""
    out = []
    for oci_key, v1_file, v2_key in THROTTLES:
        for i, dev in enumerate(get_list(block_io, oci_key, "blockIO.")):
            where = f"blockIO.{oci_key}[{i}]"
            if not isinstance(dev, dict):
                raise CgroupError(f"linux.resources.{where}: expected an object, got {dev!r}")
            major, minor, rate = (get_int(dev, k, where) for k in ("major", "minor", "rate"))
            if major is None or minor is None or rate is None or rate < 0:
                raise CgroupError(f"linux.resources.{where}: needs major, minor and a rate >= 0")
            out.append((v1_file, v2_key, major, minor, rate))
    return out


def hugepage_sizes() -> list[str]:
    """The page sizes this kernel offers, named as hugetlb files name them ("2MB", "1GB")."""
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    sizes = []
    for name in names:
        if name.startswith("hugepages-") and name.endswith("kB"):
            sizes.append(kb_to_pagesize(int(name[len("hugepages-"):-2])))
    return sorted(sizes)


def kb_to_pagesize(kb: int) -> str:
    """The kernel's own spelling of a huge page size: 2048 -> "2MB", 1048576 -> "1GB"."""
    if kb >= 1 << 20:
        return f"{kb >> 20}GB"
    if kb >= 1 << 10:
        return f"{kb >> 10}MB"
    return f"{kb}KB"


def hugepage_limits(resources: dict) -> list[tuple[str, int]]:
    out = []
    for i, entry in enumerate(get_list(resources, "hugepageLimits", "")):
        where = f"hugepageLimits[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("pageSize"), str):
            raise CgroupError(f"linux.resources.{where}: needs a pageSize string, got {entry!r}")
        limit = get_int(entry, "limit", where)
        if limit is None:
            raise CgroupError(f"linux.resources.{where}: needs a limit")
        out.append((entry["pageSize"], limit))
    if out:
        sizes = hugepage_sizes()
        for size, _ in out:
            if size not in sizes:
                raise CgroupError(f"linux.resources.hugepageLimits: page size {size!r} is not "
                                  f"offered by this kernel (offered: {', '.join(sizes) or 'none'})")
    return out
