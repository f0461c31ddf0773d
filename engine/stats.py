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


def _cpu(m: dict | None, system_ns: int = 0, online: int = 0) -> dict:
    m = m or {}
    usage = {"total_usage": m.get("cpu_usage_ns", 0),
             "usage_in_kernelmode": m.get("cpu_system_ns", 0),
             "usage_in_usermode": m.get("cpu_user_ns", 0)}
    if m.get("cpu_percpu_ns"):
        usage["percpu_usage"] = list(m["cpu_percpu_ns"])
    out = {"cpu_usage": usage}
    out.update(_no_zeros({"system_cpu_usage": system_ns, "online_cpus": online}))
    out["throttling_data"] = {"periods": 0,
                              "throttled_periods": m.get("cpu_throttled_periods", 0),
                              "throttled_time": m.get("cpu_throttled_ns", 0)}
    return out


def _blkio(m: dict | None) -> dict:
    entries = None
    if m:
        read, write = ("read", "write") if m.get("cgroup_version") == 2 else ("Read", "Write")
        entries = [{"major": 0, "minor": 0, "op": read, "value": m["blkio_read_bytes"]},
                   {"major": 0, "minor": 0, "op": write, "value": m["blkio_write_bytes"]}]
    return {"io_service_bytes_recursive": entries, "io_serviced_recursive": None,
            "io_queue_recursive": None, "io_service_time_recursive": None,
            "io_wait_time_recursive": None, "io_merged_recursive": None,
            "io_time_recursive": None, "sectors_recursive": None}


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
