"""`GET /containers/{id}/stats`: dockerd's StatsResponse built from the supervisor's metrics (the
shim's cgroup stats), the host's CPU time from /proc/stat, and the network counters of the
container's network namespace (/proc/<pid>/net/dev)."""
from __future__ import annotations

import os

from . import timefmt

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def system_cpu(path: str = "/proc/stat") -> tuple[int, int]:
    """(all CPUs' time in ns: user..softirq, the first seven fields, as dockerd sums them;
    the number of online CPUs)."""
    total, cpus = 0, 0
    with open(path) as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            if line[3] == " ":
                total = sum(int(v) for v in line.split()[1:8]) * 1_000_000_000 // CLOCK_TICKS
            elif line[3].isdigit():
                cpus += 1
    return total, cpus


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def network_stats(pid: int) -> dict:
    """Per interface (loopback left out, as libnetwork reports only the interfaces it made)."""
    out = {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return out
    for line in lines:
        name, _, counters = line.partition(":")
        name = name.strip()
        v = [int(x) for x in counters.split()]
        if name == "lo" or len(v) < 12:
            continue
        out[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2],
                     "rx_dropped": v[3], "tx_bytes": v[8], "tx_packets": v[9],
                     "tx_errors": v[10], "tx_dropped": v[11]}
    return out


def _no_zeros(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def _throttling(m: dict) -> dict:
    """cpu.stat's nr_periods, nr_throttled and throttled time. The number of periods is shown
    only where the supervisor carries it (the shim's StatsResponse has no field for it
    yet), never a zero that stands for "not known"."""
    out = {}
    if "cpu_periods" in m:
        out["periods"] = m["cpu_periods"]
    out["throttled_periods"] = m.get("cpu_throttled_periods", 0)
    out["throttled_time"] = m.get("cpu_throttled_ns", 0)
    return out


def _cpu(m: dict | None, system_ns: int = 0, online: int = 0) -> dict:
    usage = {"total_usage": (m or {}).get("cpu_usage_ns", 0),
             "usage_in_kernelmode": (m or {}).get("cpu_system_ns", 0),
             "usage_in_usermode": (m or {}).get("cpu_user_ns", 0)}
    if m and m.get("cpu_percpu_ns"):
        usage["percpu_usage"] = list(m["cpu_percpu_ns"])
    out = {"cpu_usage": usage}
    out.update(_no_zeros({"system_cpu_usage": system_ns, "online_cpus": online}))
    # a container that does not run: dockerd's zero struct
    out["throttling_data"] = (_throttling(m) if m else
                              {"periods": 0, "throttled_periods": 0, "throttled_time": 0})
    return out


BLKIO_LISTS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
               "io_time_recursive", "sectors_recursive")


def _blkio(m: dict | None) -> dict:
    """Bytes read and written per block device (major:minor), from blkio.throttle.
    io_service_bytes_recursive (v1) or io.stat (v2), where the supervisor carries them per
    device. As dockerd: on v1 every list is there (empty when nothing was counted), on v2 only
    the bytes, null when there are none; null everywhere when the numbers are not known, rather
    than totals under a device that does not exist."""
    out: dict = dict.fromkeys(BLKIO_LISTS)
    devices = (m or {}).get("blkio_devices")
    if devices is None:
        return out
    entries = [{"major": e["major"], "minor": e["minor"], "op": e["op"], "value": e["value"]}
               for e in devices]
    if m.get("cgroup_version") == 2:
        for e in entries:
            e["op"] = e["op"].lower()       # dockerd's v2 names: read, write
        out["io_service_bytes_recursive"] = entries or None
    else:
        out.update({key: [] for key in BLKIO_LISTS})
        out["io_service_bytes_recursive"] = entries
    return out


def empty(cid: str, name: str) -> dict:
    """What dockerd answers for a container that does not run: zeros."""
    return {"name": name, "id": cid, "os_type": "linux", "read": timefmt.ZERO_TIME,
            "preread": timefmt.ZERO_TIME, "pids_stats": {}, "blkio_stats": _blkio(None),
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _cpu(None),
            "precpu_stats": _cpu(None), "memory_stats": {}}


def sample(cid: str, name: str, metrics: dict, *, read_ns: int, system_ns: int, online: int,
           machine_memory: int, networks: dict | None) -> dict:
    m = metrics
    limit = m["memory_limit"]
    if machine_memory and limit > machine_memory:
        limit = machine_memory         # no limit set: the machine's memory, as dockerd
    memory = _no_zeros({"usage": m["memory_usage"], "max_usage": m["memory_max_usage"]})
    memory["stats"] = dict(m["memory_stat"])
    memory.update(_no_zeros({"failcnt": m["oom_kills"] if m.get("cgroup_version") == 2 else 0,
                             "limit": limit}))
    out = {"name": name, "id": cid, "os_type": "linux", "read": timefmt.rfc3339nano(read_ns),
           "preread": timefmt.ZERO_TIME,
           "pids_stats": _no_zeros({"current": m["pids_current"], "limit": m["pids_limit"]}),
           "blkio_stats": _blkio(m), "num_procs": 0, "storage_stats": {},
           "cpu_stats": _cpu(m, system_ns, online), "precpu_stats": _cpu(None),
           "memory_stats": memory}
    if networks:
        out["networks"] = networks
    return out


def with_previous(current: dict, previous: dict | None) -> dict:
    """precpu_stats and preread from the sample before (the CLI's CPU % is their delta)."""
    if previous is not None:
        current["precpu_stats"] = previous["cpu_stats"]
        current["preread"] = previous["read"]
    return current
