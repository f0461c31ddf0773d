"""Statistics: one version-neutral collection, shaped two ways.

A manager collects into `new_raw()` (libcontainer's cgroups.Stats, as plain dicts), and
the shim's StatsResponse fields (`to_shim`) and runc's `events --stats` JSON (`to_runc`,
the shape of runc's types/events.go) are both made from it.
"""
from __future__ import annotations

import time

from lowrt.cgroups import fs


def _entry() -> dict:
    return {"usage": 0, "max": 0, "limit": 0, "failcnt": 0}


def new_raw() -> dict:
    return {
        "cpu": {"total": 0, "user": 0, "kernel": 0, "percpu": [], "percpu_user": [],
                "percpu_kernel": [], "periods": 0, "throttled_periods": 0,
                "throttled_time": 0},
        "cpuset": {},
        "memory": {"cache": 0, "usage": _entry(), "swap": _entry(), "kernel": _entry(),
                   "kernel_tcp": _entry(), "stat": {}},
        "pids": {"current": 0, "limit": 0},
        "blkio": {"io_service_bytes_recursive": [], "io_serviced_recursive": []},
        "hugetlb": {},
        "oom_kills": 0,
    }


def parse_blkio_v1(text: str | None) -> list[dict]:
    """blkio.*_recursive: "MAJ:MIN Op value" lines and a closing "Total N"."""
    out = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue
        major, _, minor = fields[0].partition(":")
        try:
            out.append({"major": int(major), "minor": int(minor), "op": fields[1],
                        "value": int(fields[2])})
        except ValueError:
            continue
    return out


_IO_STAT = {"rbytes": ("io_service_bytes_recursive", "Read"),
            "wbytes": ("io_service_bytes_recursive", "Write"),
            "rios": ("io_serviced_recursive", "Read"),
            "wios": ("io_serviced_recursive", "Write")}


def parse_io_stat(text: str | None, blkio: dict) -> None:
    """v2 io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...") into v1's entry lists."""
    for line in (text or "").splitlines():
        fields = line.split()
        if not fields or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        for item in fields[1:]:
            key, _, value = item.partition("=")
            if key in _IO_STAT:
                table, op = _IO_STAT[key]
                blkio[table].append({"major": int(major), "minor": int(minor), "op": op,
                                     "value": int(value)})


def parse_list(text: str | None) -> list[int]:
    """A cpuset list ("0-3,7") as the numbers it names."""
    out: list[int] = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def to_shim(raw: dict, version: int) -> dict:
    """The fields of berth.shim.v1.StatsResponse, zero where this cgroup version has none."""
    cpu, mem, blkio = raw["cpu"], raw["memory"], raw["blkio"]
    read = sum(e["value"] for e in blkio["io_service_bytes_recursive"] if e["op"] == "Read")
    write = sum(e["value"] for e in blkio["io_service_bytes_recursive"] if e["op"] == "Write")
    return {
        "timestamp": time.time_ns(),
        "cpu_usage_ns": cpu["total"],
        "cpu_user_ns": cpu["user"],
        "cpu_system_ns": cpu["kernel"],
        "cpu_percpu_ns": list(cpu["percpu"]),
        "cpu_throttled_periods": cpu["throttled_periods"],
        "cpu_throttled_ns": cpu["throttled_time"],
        "memory_usage": mem["usage"]["usage"],
        "memory_limit": mem["usage"]["limit"],
        "memory_max_usage": mem["usage"]["max"],
        "memory_stat": dict(mem["stat"]),
        "pids_current": raw["pids"]["current"],
        "pids_limit": raw["pids"]["limit"],
        "blkio_read_bytes": read,
        "blkio_write_bytes": write,
        "oom_kills": raw["oom_kills"],
        "cgroup_version": version,
        "cpu_periods": cpu["periods"],
        "blkio_devices": [dict(e) for e in blkio["io_service_bytes_recursive"]
                          if e["op"] in ("Read", "Write")],
    }


def _omit_zero(d: dict, *keys: str) -> dict:
    """Go's `omitempty`: drop these keys where the value is zero or empty."""
    return {k: v for k, v in d.items() if not (k in keys and not v)}


def _memory_entry(e: dict) -> dict:
    return _omit_zero({"limit": e["limit"], "usage": e["usage"], "max": e["max"],
                       "failcnt": e["failcnt"]}, "usage", "max")


def _blkio_entries(entries: list[dict]) -> list[dict]:
    return [_omit_zero(dict(e), "major", "minor", "op", "value") for e in entries]


CPUSET_FLAGS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                 "memory_spread_page", "memory_spread_slab", "memory_pressure",
                 "sched_load_balance", "sched_relax_domain_level")


def to_runc(raw: dict) -> dict:
    """The `data` of runc's `events --stats` event: types.Stats as runc 1.1 encodes it (Go
    drops zero `omitempty` fields but always writes structs and non-nil maps)."""
    cpu, mem, blkio, cpuset = raw["cpu"], raw["memory"], raw["blkio"], raw["cpuset"]
    usage = _omit_zero({"total": cpu["total"], "percpu": cpu["percpu"],
                        "percpu_kernel": cpu["percpu_kernel"], "percpu_user": cpu["percpu_user"],
                        "kernel": cpu["kernel"], "user": cpu["user"]},
                       "total", "percpu", "percpu_kernel", "percpu_user")
    throttling = _omit_zero({"periods": cpu["periods"],
                             "throttledPeriods": cpu["throttled_periods"],
                             "throttledTime": cpu["throttled_time"]},
                            "periods", "throttledPeriods", "throttledTime")
    cpuset_out: dict = {"cpus": cpuset["cpus"]} if cpuset.get("cpus") else {}
    cpuset_out["cpu_exclusive"] = cpuset.get("cpu_exclusive", 0)
    if cpuset.get("mems"):
        cpuset_out["mems"] = cpuset["mems"]
    for flag in CPUSET_FLAGS[1:]:
        cpuset_out[flag] = cpuset.get(flag, 0)
    memory = {}
    if mem["cache"]:
        memory["cache"] = mem["cache"]
    memory.update({"usage": _memory_entry(mem["usage"]), "swap": _memory_entry(mem["swap"]),
                   "kernel": _memory_entry(mem["kernel"]),
                   "kernelTCP": _memory_entry(mem["kernel_tcp"])})
    if mem["stat"]:
        memory["raw"] = dict(mem["stat"])
    blkio_out = {}
    if blkio["io_service_bytes_recursive"]:
        blkio_out["ioServiceBytesRecursive"] = _blkio_entries(blkio["io_service_bytes_recursive"])
    if blkio["io_serviced_recursive"]:
        blkio_out["ioServicedRecursive"] = _blkio_entries(blkio["io_serviced_recursive"])
    return {
        "cpu": {"usage": usage, "throttling": throttling},
        "cpuset": cpuset_out,
        "memory": memory,
        "pids": _omit_zero(dict(raw["pids"]), "current", "limit"),
        "blkio": blkio_out,
        "hugetlb": {size: _omit_zero({"usage": h["usage"], "max": h["max"],
                                      "failcnt": h["failcnt"]}, "usage", "max")
                    for size, h in raw["hugetlb"].items()},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def read_uint_or_zero(path: str) -> int:
    text = fs.read_optional(path)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return fs.UINT64_MAX
    try:
        return int(text)
    except ValueError:
        return 0
