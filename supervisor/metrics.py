"""A shim's cgroup stats <-> containerd's cgroup metrics messages.

The shim reports one flat StatsResponse for both cgroup versions; containerd's Metrics service
carries io.containerd.cgroups.v1.Metrics or io.containerd.cgroups.v2.Metrics, which `ctr tasks
metrics` and containerd clients decode. The client library turns them back into the flat form.
"""
from __future__ import annotations

from protos.containerd.cgroups.v1 import metrics_pb2 as v1
from protos.containerd.cgroups.v2 import metrics_pb2 as v2

STATS_FIELDS = (
    "timestamp", "cpu_usage_ns", "cpu_user_ns", "cpu_system_ns", "cpu_percpu_ns",
    "cpu_throttled_periods", "cpu_throttled_ns", "memory_usage", "memory_limit",
    "memory_max_usage", "memory_stat", "pids_current", "pids_limit", "blkio_read_bytes",
    "blkio_write_bytes", "oom_kills", "cgroup_version", "cpu_periods", "blkio_devices",
)

# memory.stat keys (cgroup v1) whose containerd field name differs from the kernel's.
_V1_RENAMES = {"pgpgin": "pg_pg_in", "pgpgout": "pg_pg_out", "pgfault": "pg_fault",
               "pgmajfault": "pg_maj_fault"}


def _v1_field(key: str) -> str:
    total = key.startswith("total_")
    base = key[6:] if total else key
    return ("total_" if total else "") + _V1_RENAMES.get(base, base)


_V1_MEMORY_FIELDS = {f.name for f in v1.MemoryStat.DESCRIPTOR.fields
                     if f.message_type is None}
_V1_KERNEL_NAMES = {_v1_field(k): k for k in
                    ("pgpgin", "pgpgout", "pgfault", "pgmajfault", "total_pgpgin",
                     "total_pgpgout", "total_pgfault", "total_pgmajfault")}
_V2_MEMORY_FIELDS = {f.name for f in v2.MemoryStat.DESCRIPTOR.fields} - {
    "usage", "usage_limit", "swap_usage", "swap_limit", "max_usage", "swap_max_usage"}


def stats_to_metrics(stats) -> v1.Metrics | v2.Metrics:
    """stats: a shim StatsResponse (or anything with its attribute names)."""
    mem_stat = dict(stats.memory_stat)
    if stats.cgroup_version == 2:
        memory = v2.MemoryStat(usage=stats.memory_usage, usage_limit=stats.memory_limit,
                               max_usage=stats.memory_max_usage)
        for key, value in mem_stat.items():
            if key in _V2_MEMORY_FIELDS:
                setattr(memory, key, value)
        io = v2.IOStat()
        per_device: dict[tuple[int, int], dict[str, int]] = {}
        for e in stats.blkio_devices:
            per_device.setdefault((e.major, e.minor), {})[e.op] = e.value
        for (major, minor), ops in per_device.items():
            io.usage.add(major=major, minor=minor, rbytes=ops.get("Read", 0),
                         wbytes=ops.get("Write", 0))
        return v2.Metrics(
            pids=v2.PidsStat(current=stats.pids_current, limit=stats.pids_limit),
            cpu=v2.CPUStat(usage_usec=stats.cpu_usage_ns // 1000,
                           user_usec=stats.cpu_user_ns // 1000,
                           system_usec=stats.cpu_system_ns // 1000,
                           nr_periods=stats.cpu_periods,
                           nr_throttled=stats.cpu_throttled_periods,
                           throttled_usec=stats.cpu_throttled_ns // 1000),
            memory=memory, io=io,
            memory_events=v2.MemoryEvents(oom_kill=stats.oom_kills))
    memory = v1.MemoryStat(usage=v1.MemoryEntry(usage=stats.memory_usage,
                                                limit=stats.memory_limit,
                                                max=stats.memory_max_usage))
    for key, value in mem_stat.items():
        name = _v1_field(key)
        if name in _V1_MEMORY_FIELDS:
            setattr(memory, name, value)
    blkio = v1.BlkIOStat()
    for e in stats.blkio_devices:
        blkio.io_service_bytes_recursive.add(op=e.op, major=e.major, minor=e.minor,
                                             value=e.value)
    return v1.Metrics(
        pids=v1.PidsStat(current=stats.pids_current, limit=stats.pids_limit),
        cpu=v1.CPUStat(usage=v1.CPUUsage(total=stats.cpu_usage_ns, kernel=stats.cpu_system_ns,
                                         user=stats.cpu_user_ns,
                                         per_cpu=list(stats.cpu_percpu_ns)),
                       throttling=v1.Throttle(periods=stats.cpu_periods,
                                              throttled_periods=stats.cpu_throttled_periods,
                                              throttled_time=stats.cpu_throttled_ns)),
        memory=memory, blkio=blkio,
        memory_oom_control=v1.MemoryOomControl(oom_kill=stats.oom_kills))


def metrics_to_stats(metrics: v1.Metrics | v2.Metrics, timestamp: int) -> dict:
    """The flat dict of StatsResponse field names that the client library returns."""
    if isinstance(metrics, v2.Metrics):
        m = metrics.memory
        return {
            "timestamp": timestamp,
            "cpu_usage_ns": metrics.cpu.usage_usec * 1000,
            "cpu_user_ns": metrics.cpu.user_usec * 1000,
            "cpu_system_ns": metrics.cpu.system_usec * 1000,
            "cpu_percpu_ns": [],
            "cpu_throttled_periods": metrics.cpu.nr_throttled,
            "cpu_throttled_ns": metrics.cpu.throttled_usec * 1000,
            "memory_usage": m.usage, "memory_limit": m.usage_limit,
            "memory_max_usage": m.max_usage,
            "memory_stat": {name: getattr(m, name) for name in sorted(_V2_MEMORY_FIELDS)},
            "pids_current": metrics.pids.current, "pids_limit": metrics.pids.limit,
            "blkio_read_bytes": sum(e.rbytes for e in metrics.io.usage),
            "blkio_write_bytes": sum(e.wbytes for e in metrics.io.usage),
            "oom_kills": metrics.memory_events.oom_kill,
            "cgroup_version": 2,
            "cpu_periods": metrics.cpu.nr_periods,
            "blkio_devices": [{"major": e.major, "minor": e.minor, "op": op, "value": value}
                              for e in metrics.io.usage
                              for op, value in (("Read", e.rbytes), ("Write", e.wbytes))],
        }
    m = metrics.memory
    entries = metrics.blkio.io_service_bytes_recursive
    return {
        "timestamp": timestamp,
        "cpu_usage_ns": metrics.cpu.usage.total,
        "cpu_user_ns": metrics.cpu.usage.user,
        "cpu_system_ns": metrics.cpu.usage.kernel,
        "cpu_percpu_ns": list(metrics.cpu.usage.per_cpu),
        "cpu_throttled_periods": metrics.cpu.throttling.throttled_periods,
        "cpu_throttled_ns": metrics.cpu.throttling.throttled_time,
        "memory_usage": m.usage.usage, "memory_limit": m.usage.limit,
        "memory_max_usage": m.usage.max,
        "memory_stat": {_V1_KERNEL_NAMES.get(name, name): getattr(m, name)
                        for name in sorted(_V1_MEMORY_FIELDS)},
        "pids_current": metrics.pids.current, "pids_limit": metrics.pids.limit,
        "blkio_read_bytes": sum(e.value for e in entries if e.op.lower() == "read"),
        "blkio_write_bytes": sum(e.value for e in entries if e.op.lower() == "write"),
        "oom_kills": metrics.memory_oom_control.oom_kill,
        "cgroup_version": 1,
        "cpu_periods": metrics.cpu.throttling.periods,
        "blkio_devices": [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}
                          for e in entries],
    }
