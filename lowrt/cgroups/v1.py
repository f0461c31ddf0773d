"""cgroup v1: one directory per controller hierarchy (and the name=systemd one, joined only)."""
from __future__ import annotations

import errno
import os
import posixpath
import time

# `stats` and `devices` are imported where they are used: create, load and delete (each a
# lowrt process of its own, or the shim's OOM watch) never read statistics, and only create
# and update write device rules.
from lowrt.cgroups import fs
from lowrt.cgroups.base import Manager
from lowrt.cgroups.fs import CgroupError
from lowrt.cgroups.resources import (
    get_int, get_list, get_section, hugepage_limits, hugepage_sizes, pids_max,
    throttle_entries)

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _missing(what: str, controller: str) -> CgroupError:
    return CgroupError(f"cannot set {what}: the {controller} cgroup controller is not mounted "
                       "on this host")


class V1Manager(Manager):
    version = 1

    def __init__(self, paths: dict[str, str]):
        self._paths = dict(paths)

    def __repr__(self) -> str:
        return f"V1Manager({self._paths!r})"

    @property
    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def _dir(self, controller: str) -> str | None:
        return self._paths.get(controller)

    def _procs_dir(self) -> str | None:
        for c in ("pids", "freezer", "devices", "memory", "cpu", "name=systemd"):
            if c in self._paths:
                return self._paths[c]
        return next(iter(self._paths.values()), None)

    # -- create / update ---------------------------------------------------------------

    def create(self, resources: dict | None = None) -> list[str]:
        """Make the cgroup in every hierarchy and apply the limits; returns notes on settings
        that were ignored. On failure, removes every directory it made."""
        res = resources or {}
        notes: list[str] = []
        self._check_mounted(res)
        created: list[str] = []
        try:
            for d in self._dirs():
                created.extend(_mkdirs(d))
            cpuset = self._dir("cpuset")
            if cpuset is not None:
                _fill_cpuset(cpuset)
            self._apply(res, notes, creating=True)
        except BaseException:
            for d in reversed(created):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise
        return notes

    def update(self, resources: dict) -> list[str]:
        """Apply changed limits to the live cgroup (`runc update`, `docker update`)."""
        res = resources or {}
        notes: list[str] = []
        self._check_mounted(res)
        self._apply(res, notes, creating=False)
        return notes

    def _check_mounted(self, res: dict) -> None:
        """Refuse limits for controllers this host lacks before making anything, as runc
        does ("cannot set ... limit"); asking for none of them is fine."""
        if res.get("unified"):
            raise CgroupError("linux.resources.unified: cannot be used on cgroup v1 (it "
                              "holds cgroup v2 file names)")
        if res.get("hugepageLimits") and "hugetlb" not in self._paths:
            raise _missing("hugepageLimits", "hugetlb")
        network = get_section(res, "network")
        if network.get("classID") is not None and "net_cls" not in self._paths:
            raise _missing("network.classID", "net_cls")
        if network.get("priorities") and "net_prio" not in self._paths:
            raise _missing("network.priorities", "net_prio")
        if res.get("rdma") and "rdma" not in self._paths:
            raise _missing("rdma", "rdma")

    def _apply(self, res: dict, notes: list[str], creating: bool) -> None:
        if creating or "devices" in res:
            self._set_devices(res.get("devices") or [])
        self._set_memory(get_section(res, "memory"), notes)
        self._set_cpu(get_section(res, "cpu"), notes)
        pids = get_section(res, "pids")
        limit = get_int(pids, "limit", "pids")
        if limit is not None:
            d = self._dir("pids")
            if d is None:
                raise _missing("pids.limit", "pids")
            fs.write(f"{d}/pids.max", pids_max(limit))
        self._set_blkio(get_section(res, "blockIO"), notes)
        for size, limit in hugepage_limits(res):
            d = self._dir("hugetlb")
            fs.write(f"{d}/hugetlb.{size}.limit_in_bytes", str(limit))
            if os.path.exists(f"{d}/hugetlb.{size}.rsvd.limit_in_bytes"):
                fs.write(f"{d}/hugetlb.{size}.rsvd.limit_in_bytes", str(limit))
        self._set_network(get_section(res, "network"))
        for device, limits in (res.get("rdma") or {}).items():
            fs.write(f"{self._dir('rdma')}/rdma.max", _rdma_line(device, limits))

    def _set_devices(self, oci_rules: list) -> None:
        from lowrt.cgroups import devices
        rules = devices.parse_rules(oci_rules)
        d = self._dir("devices")
        if d is None:
            # runc treats a missing devices controller as fatal: it is a security boundary.
            raise CgroupError("cannot restrict devices: the devices cgroup controller is not "
                              "mounted on this host")
        for name, line in devices.v1_writes(rules):
            fs.write(f"{d}/{name}", line)

    def _set_memory(self, mem: dict, notes: list[str]) -> None:
        limit = get_int(mem, "limit", "memory") or 0
        swap = get_int(mem, "swap", "memory") or 0
        reservation = get_int(mem, "reservation", "memory") or 0
        swappiness = get_int(mem, "swappiness", "memory")
        disable_oom = mem.get("disableOOMKiller")
        if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
            notes.append("memory.kernel and memory.kernelTCP are ignored (kernel memory limits "
                         "are deprecated), as runc ignores them")
        wanted = limit or swap or reservation or disable_oom or (
            swappiness is not None and swappiness != -1)
        if not wanted:
            return
        d = self._dir("memory")
        if d is None:
            raise _missing("memory limits", "memory")
        memsw = f"{d}/memory.memsw.limit_in_bytes"
        has_memsw = os.path.exists(memsw)
        if limit == -1 and swap == 0 and has_memsw:
            swap = -1  # unlimited memory with no swap given: unlimited memory+swap as well
        if swap and not has_memsw:
            notes.append(f"memory.swap {swap} is ignored: this kernel does not account swap "
                         "(no memory.memsw.limit_in_bytes)")
            swap = 0
        if limit and swap:
            # The kernel refuses memory > memsw, so order the two writes by direction.
            current = fs.read_uint(f"{d}/memory.limit_in_bytes")
            if swap == -1 or current < swap:
                fs.write(memsw, str(swap))
                self._write_memory_limit(d, limit)
            else:
                self._write_memory_limit(d, limit)
                fs.write(memsw, str(swap))
        else:
            if limit:
                self._write_memory_limit(d, limit)
            if swap:
                fs.write(memsw, str(swap))
        if reservation:
            fs.write(f"{d}/memory.soft_limit_in_bytes", str(reservation))
        if swappiness is not None and swappiness != -1:
            if not 0 <= swappiness <= 100:
                raise CgroupError(f"linux.resources.memory.swappiness {swappiness}: invalid "
                                  "memory swappiness value (valid range is 0-100)")
            fs.write(f"{d}/memory.swappiness", str(swappiness))
        if disable_oom:
            fs.write(f"{d}/memory.oom_control", "1")

    @staticmethod
    def _write_memory_limit(d: str, limit: int) -> None:
        try:
            fs.write(f"{d}/memory.limit_in_bytes", str(limit))
        except CgroupError as err:
            if err.errno != errno.EBUSY:
                raise
            from lowrt.cgroups import stats
            usage = stats.read_uint_or_zero(f"{d}/memory.usage_in_bytes")
            peak = stats.read_uint_or_zero(f"{d}/memory.max_usage_in_bytes")
            raise CgroupError(f"unable to set memory limit to {limit} (current usage: {usage}, "
                              f"peak usage: {peak}) in {d}", err.errno) from None

    def _set_cpu(self, cpu: dict, notes: list[str]) -> None:
        shares = get_int(cpu, "shares", "cpu") or 0
        quota = get_int(cpu, "quota", "cpu") or 0
        period = get_int(cpu, "period", "cpu") or 0
        burst = get_int(cpu, "burst", "cpu")
        rt_period = get_int(cpu, "realtimePeriod", "cpu") or 0
        rt_runtime = get_int(cpu, "realtimeRuntime", "cpu") or 0
        idle = get_int(cpu, "idle", "cpu")
        if shares or quota or period or burst is not None or rt_period or rt_runtime \
                or idle is not None:
            d = self._dir("cpu")
            if d is None:
                raise _missing("cpu limits", "cpu")
            if shares:
                fs.write(f"{d}/cpu.shares", str(shares))
                got = fs.read_uint(f"{d}/cpu.shares")
                if shares > got:
                    raise CgroupError(f"cpu.shares {shares}: the maximum allowed cpu-shares "
                                      f"is {got}")
                if shares < got:
                    raise CgroupError(f"cpu.shares {shares}: the minimum allowed cpu-shares "
                                      f"is {got}")
            pending_period = ""
            if period:
                try:
                    fs.write(f"{d}/cpu.cfs_period_us", str(period))
                except CgroupError as err:
                    # A period shorter than the current one can be refused while the old
                    # quota stands (quota/period would exceed the parent's); retry after.
                    if err.errno != errno.EINVAL or not quota:
                        raise
                    pending_period = str(period)
            if quota:
                fs.write(f"{d}/cpu.cfs_quota_us", str(quota))
                if pending_period:
                    fs.write(f"{d}/cpu.cfs_period_us", pending_period)
            if burst is not None:
                if not os.path.exists(f"{d}/cpu.cfs_burst_us"):
                    raise CgroupError("cannot set cpu.burst: this kernel has no cpu.cfs_burst_us")
                fs.write(f"{d}/cpu.cfs_burst_us", str(burst))
            if rt_period:
                fs.write(f"{d}/cpu.rt_period_us", str(rt_period))
            if rt_runtime:
                fs.write(f"{d}/cpu.rt_runtime_us", str(rt_runtime))
            if idle is not None:
                fs.write(f"{d}/cpu.idle", str(idle))
        cpus, mems = cpu.get("cpus"), cpu.get("mems")
        if cpus or mems:
            d = self._dir("cpuset")
            if d is None:
                raise _missing("cpu.cpus/cpu.mems", "cpuset")
            if cpus:
                fs.write(f"{d}/cpuset.cpus", str(cpus))
            if mems:
                fs.write(f"{d}/cpuset.mems", str(mems))

    def _set_blkio(self, bio: dict, notes: list[str]) -> None:
        weight = get_int(bio, "weight", "blockIO") or 0
        leaf = get_int(bio, "leafWeight", "blockIO") or 0
        weight_devices = get_list(bio, "weightDevice", "blockIO.")
        throttles = throttle_entries(bio)
        if not (weight or leaf or weight_devices or throttles):
            return
        d = self._dir("blkio")
        if d is None:
            raise _missing("blockIO limits", "blkio")
        # CFQ offers blkio.weight; BFQ (the only proportional scheduler of newer kernels)
        # offers blkio.bfq.weight with the same range; a kernel without BFQ has neither.
        prefix = "blkio." if os.path.exists(f"{d}/blkio.weight") else "blkio.bfq."
        if (weight or weight_devices) and not os.path.exists(f"{d}/{prefix}weight"):
            raise CgroupError("linux.resources.blockIO: weights cannot be applied: this kernel "
                              f"has neither blkio.weight nor blkio.bfq.weight in {d} "
                              "(no CFQ or BFQ I/O scheduler)")
        if weight:
            fs.write(f"{d}/{prefix}weight", str(weight))
        if leaf:
            if os.path.exists(f"{d}/blkio.leaf_weight"):
                fs.write(f"{d}/blkio.leaf_weight", str(leaf))
            else:
                notes.append("blockIO.leafWeight is ignored: this kernel has no "
                             "blkio.leaf_weight (CFQ is gone)")
        for i, wd in enumerate(weight_devices):
            where = f"blockIO.weightDevice[{i}]"
            major, minor = get_int(wd, "major", where), get_int(wd, "minor", where)
            if major is None or minor is None:
                raise CgroupError(f"linux.resources.{where}: needs major and minor")
            w = get_int(wd, "weight", where)
            if w:
                try:
                    fs.write(f"{d}/{prefix}weight_device", f"{major}:{minor} {w}")
                except CgroupError as err:
                    if err.errno != errno.EOPNOTSUPP:
                        raise
                    raise CgroupError(f"linux.resources.{where}: device {major}:{minor} does "
                                      "not take per-device weights (its I/O scheduler is not "
                                      f"BFQ): {err}", err.errno) from None
            lw = get_int(wd, "leafWeight", where)
            if lw:
                if os.path.exists(f"{d}/blkio.leaf_weight_device"):
                    fs.write(f"{d}/blkio.leaf_weight_device", f"{major}:{minor} {lw}")
                else:
                    notes.append(f"linux.resources.{where}.leafWeight is ignored: this kernel "
                                 "has no blkio.leaf_weight_device")
        for v1_file, _, major, minor, rate in throttles:
            fs.write(f"{d}/{v1_file}", f"{major}:{minor} {rate}")

    def _set_network(self, network: dict) -> None:
        class_id = get_int(network, "classID", "network")
        if class_id is not None:
            fs.write(f"{self._dir('net_cls')}/net_cls.classid", str(class_id))
        for i, prio in enumerate(get_list(network, "priorities", "network.")):
            if not isinstance(prio, dict) or not isinstance(prio.get("name"), str):
                raise CgroupError(f"linux.resources.network.priorities[{i}]: needs a name")
            value = get_int(prio, "priority", f"network.priorities[{i}]") or 0
            fs.write(f"{self._dir('net_prio')}/net_prio.ifpriomap", f"{prio['name']} {value}")

    # -- freezer -----------------------------------------------------------------------

    def _can_freeze(self) -> bool:
        return "freezer" in self._paths

    def _freezer_state(self) -> str:
        d = self._dir("freezer")
        if d is None:
            raise CgroupError("cannot pause: the freezer cgroup controller is not mounted")
        return f"{d}/freezer.state"

    def freeze(self) -> None:
        """Write FROZEN until the state reads FROZEN. v1 can stall in FREEZING while tasks
        keep forking; a brief thaw now and then lets it through (runc's approach)."""
        state_file = self._freezer_state()
        try:
            for i in range(1000):
                if i % 50 == 49:
                    fs.write(state_file, "THAWED")
                    time.sleep(0.01)
                fs.write(state_file, "FROZEN")
                if i % 25 == 24:
                    time.sleep(0.00001)
                state = fs.read(state_file).strip()
                if state == "FROZEN":
                    return
                if state != "FREEZING":
                    raise CgroupError(f"freeze {state_file}: unexpected state {state}")
            raise CgroupError(f"freeze {state_file}: still FREEZING after 1000 tries")
        except BaseException:
            # never leave a cgroup half frozen
            try:
                fs.write(state_file, "THAWED")
            except CgroupError:
                pass
            raise

    def thaw(self) -> None:
        fs.write(self._freezer_state(), "THAWED")

    def frozen(self) -> bool:
        d = self._dir("freezer")
        if d is None:
            return False
        return (fs.read_optional(f"{d}/freezer.state") or "").strip() == "FROZEN"

    # -- OOM ---------------------------------------------------------------------------

    def oom_fd(self) -> int:
        """A non-blocking eventfd the kernel signals on each OOM in this cgroup (and when the
        cgroup is removed), registered through cgroup.event_control on memory.oom_control."""
        d = self._dir("memory")
        if d is None:
            raise CgroupError("cannot watch for OOM: the memory cgroup controller is not mounted")
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            try:
                cfd = os.open(f"{d}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise CgroupError(f"open {d}/memory.oom_control: "
                                  f"{os.strerror(err.errno).lower()}", err.errno) from None
            try:
                # The kernel keeps its own references once registered; cfd can go.
                fs.write(f"{d}/cgroup.event_control", f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except BaseException:
            os.close(efd)
            raise
        return efd

    def oom_kills(self) -> int:
        d = self._dir("memory")
        if d is None:
            return 0
        return fs.read_keyed(f"{d}/memory.oom_control").get("oom_kill", 0)

    # -- statistics --------------------------------------------------------------------

    def _collect(self) -> dict:
        from lowrt.cgroups import stats
        raw = stats.new_raw()
        if not self.exists():
            raise CgroupError(f"cgroup {self._procs_dir()} does not exist")
        cpu = raw["cpu"]
        d = self._dir("cpuacct")
        if d:
            cpu["total"] = stats.read_uint_or_zero(f"{d}/cpuacct.usage")
            ticks = fs.read_keyed(f"{d}/cpuacct.stat")
            cpu["user"] = ticks.get("user", 0) * 1_000_000_000 // _CLK_TCK
            cpu["kernel"] = ticks.get("system", 0) * 1_000_000_000 // _CLK_TCK
            cpu["percpu"] = [int(v) for v in
                             (fs.read_optional(f"{d}/cpuacct.usage_percpu") or "").split()]
            for line in (fs.read_optional(f"{d}/cpuacct.usage_all") or "").splitlines()[1:]:
                fields = line.split()
                if len(fields) == 3:
                    cpu["percpu_user"].append(int(fields[1]))
                    cpu["percpu_kernel"].append(int(fields[2]))
        d = self._dir("cpu")
        if d:
            st = fs.read_keyed(f"{d}/cpu.stat")
            cpu["periods"] = st.get("nr_periods", 0)
            cpu["throttled_periods"] = st.get("nr_throttled", 0)
            cpu["throttled_time"] = st.get("throttled_time", 0)
        d = self._dir("memory")
        if d:
            mem = raw["memory"]
            mem["stat"] = fs.read_keyed(f"{d}/memory.stat")
            mem["cache"] = mem["stat"].get("cache", 0)
            for key, prefix in (("usage", "memory."), ("swap", "memory.memsw."),
                                ("kernel", "memory.kmem."), ("kernel_tcp", "memory.kmem.tcp.")):
                e = mem[key]
                e["usage"] = stats.read_uint_or_zero(f"{d}/{prefix}usage_in_bytes")
                e["max"] = stats.read_uint_or_zero(f"{d}/{prefix}max_usage_in_bytes")
                e["limit"] = stats.read_uint_or_zero(f"{d}/{prefix}limit_in_bytes")
                e["failcnt"] = stats.read_uint_or_zero(f"{d}/{prefix}failcnt")
            raw["oom_kills"] = self.oom_kills()
        d = self._dir("pids")
        if d:
            raw["pids"]["current"] = stats.read_uint_or_zero(f"{d}/pids.current")
            limit = stats.read_uint_or_zero(f"{d}/pids.max")
            raw["pids"]["limit"] = 0 if limit == fs.UINT64_MAX else limit
        d = self._dir("blkio")
        if d:
            # runc's order: BFQ's counters, CFQ's, then the throttle layer's (which counts
            # every bio whatever the scheduler); the first group with data wins.
            for served, service_bytes in (
                    ("blkio.bfq.io_serviced_recursive", "blkio.bfq.io_service_bytes_recursive"),
                    ("blkio.io_serviced_recursive", "blkio.io_service_bytes_recursive"),
                    ("blkio.throttle.io_serviced_recursive",
                     "blkio.throttle.io_service_bytes_recursive")):
                entries = stats.parse_blkio_v1(fs.read_optional(f"{d}/{served}"))
                if entries:
                    raw["blkio"]["io_serviced_recursive"] = entries
                    raw["blkio"]["io_service_bytes_recursive"] = stats.parse_blkio_v1(
                        fs.read_optional(f"{d}/{service_bytes}"))
                    break
        d = self._dir("hugetlb")
        if d:
            for size in hugepage_sizes():
                raw["hugetlb"][size] = {
                    "usage": stats.read_uint_or_zero(f"{d}/hugetlb.{size}.usage_in_bytes"),
                    "max": stats.read_uint_or_zero(f"{d}/hugetlb.{size}.max_usage_in_bytes"),
                    "failcnt": stats.read_uint_or_zero(f"{d}/hugetlb.{size}.failcnt")}
        d = self._dir("cpuset")
        if d:
            cs = raw["cpuset"]
            cs["cpus"] = stats.parse_list(fs.read_optional(f"{d}/cpuset.cpus"))
            cs["mems"] = stats.parse_list(fs.read_optional(f"{d}/cpuset.mems"))
            for flag in stats.CPUSET_FLAGS:
                text = fs.read_optional(f"{d}/cpuset.{flag}")
                if text is not None and text.strip().lstrip("-").isdigit():
                    cs[flag] = int(text)
        return raw

    def stats(self) -> dict:
        """The shim's StatsResponse fields (see lowrt.cgroups.stats.to_shim)."""
        from lowrt.cgroups import stats as cgstats
        return cgstats.to_shim(self._collect(), 1)

    def events_stats(self) -> dict:
        """The `data` object of `runc events --stats` for this cgroup."""
        from lowrt.cgroups import stats as cgstats
        return cgstats.to_runc(self._collect())


def _mkdirs(path: str) -> list[str]:
    """mkdir -p; returns the directories it made, top first."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = posixpath.dirname(p)
        if parent == p:
            break
        p = parent
    made = []
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
            made.append(d)
        except FileExistsError:
            pass
        except OSError as err:
            for m in reversed(made):
                try:
                    os.rmdir(m)
                except OSError:
                    pass
            raise CgroupError(f"create cgroup {d}: {os.strerror(err.errno).lower()}",
                              err.errno) from None
    return made


def _fill_cpuset(d: str) -> None:
    """A new v1 cpuset cgroup starts with empty cpus and mems and refuses tasks (ENOSPC) until
    they are set: copy them down from the nearest ancestor that has them (runc's ensureParent).

    Every empty ancestor is filled, not only those this process made: when two containers
    start at once, the other process may have made the shared parent and not yet filled it,
    and a child copied from that empty parent stays empty."""
    empty = []
    p = d
    while os.path.exists(f"{p}/cpuset.cpus") and not all(
            fs.read(f"{p}/{name}").strip() for name in _CPUSET_FILES):
        empty.append(p)
        p = posixpath.dirname(p)
    for p in reversed(empty):
        parent = posixpath.dirname(p)
        for name in _CPUSET_FILES:
            if not fs.read(f"{p}/{name}").strip():
                fs.write(f"{p}/{name}", fs.read(f"{parent}/{name}").strip())


_CPUSET_FILES = ("cpuset.cpus", "cpuset.mems")


def _rdma_line(device: str, limits: dict) -> str:
    parts = [device]
    for oci_key, key in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
        value = limits.get(oci_key) if isinstance(limits, dict) else None
        if value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts)
