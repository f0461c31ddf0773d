"""cgroup v2: one directory in the unified hierarchy.

Controllers must be enabled in each ancestor's cgroup.subtree_control, and the kernel's "no
internal processes" rule forbids that in a (non-root) cgroup that holds processes itself:
that is why a relative cgroupsPath goes under the *parent* of the runtime's own cgroup.
"""
from __future__ import annotations

import errno
import os
import posixpath
import time

# `stats` is imported where it is used: create, load and delete (each a lowrt process of its
# own, or the shim's OOM watch) never read statistics.
from lowrt.cgroups import devices, fs
from lowrt.cgroups.base import SIGKILL, Manager
from lowrt.cgroups.fs import CgroupError
from lowrt.cgroups.resources import (
    blkio_weight_to_io_weight, cpu_max, get_int, get_list, get_section, hugepage_limits,
    hugepage_sizes, io_max_line, pids_max, shares_to_weight, swap_to_v2, throttle_entries,
    v2_limit)


class V2Manager(Manager):
    version = 2

    def __init__(self, path: str, root: str):
        """path: the cgroup's directory; root: the cgroup2 mount it lies under."""
        self.path = path
        self.root = root
        self._made: list[str] = []   # directories make() made, parents first

    def __repr__(self) -> str:
        return f"V2Manager({self.path!r})"

    @property
    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def _procs_dir(self) -> str:
        return self.path

    def _write(self, name: str, value: str) -> None:
        """Write an interface file, turning "no such file" into the reason: the controller
        is not enabled for this cgroup."""
        try:
            fs.write(f"{self.path}/{name}", value)
        except CgroupError as err:
            if err.errno != errno.ENOENT or not os.path.isdir(self.path):
                raise
            controller = name.split(".", 1)[0]
            available = (fs.read_optional(f"{self.path}/cgroup.controllers") or "").split()
            if controller not in available and controller != "cgroup":
                raise CgroupError(
                    f"cannot set {name} to {value!r}: the {controller} controller is not "
                    f"enabled for {self.path} (enabled: {' '.join(available) or 'none'}; a "
                    "parent that holds processes cannot delegate controllers)",
                    err.errno) from None
            raise

    # -- create / update ---------------------------------------------------------------

    def create(self, resources: dict | None = None) -> list[str]:
        """Make the cgroup, enabling every controller the root offers down the path (as runc
        does), and apply the limits; returns notes on ignored settings. On failure, removes
        every directory it made."""
        self.make(resources)
        try:
            return self.configure(resources)
        except BaseException:
            self._remove_made()
            raise

    def make(self, resources: dict | None = None) -> None:
        """create's first half: the settings checked, the directories made (and remembered:
        destroy removes them too), no limit applied. On failure, removes what it made.

        lowrt makes the cgroup this far before it clones the container's first process into
        it, and configures it while that process makes its namespaces."""
        self._check(resources or {})
        rel = posixpath.relpath(self.path, self.root)
        if rel == "." or rel.startswith(".."):
            raise CgroupError(f"cgroup {self.path} is not below the cgroup2 mount {self.root}")
        self._made = []
        try:
            wanted = (fs.read_optional(f"{self.root}/cgroup.controllers") or "").split()
            current = self.root
            for part in rel.split("/"):
                if wanted:
                    _enable_controllers(current, wanted)
                current = f"{current}/{part}"
                try:
                    os.mkdir(current, 0o755)
                    self._made.append(current)
                except FileExistsError:
                    pass
                except OSError as err:
                    raise CgroupError(f"create cgroup {current}: "
                                      f"{os.strerror(err.errno).lower()}", err.errno) from None
        except BaseException:
            self._remove_made()
            raise

    def configure(self, resources: dict | None = None) -> list[str]:
        """create's second half, on a cgroup make() made: the limits and the device filter;
        returns notes on ignored settings."""
        notes: list[str] = []
        self._apply(resources or {}, notes, creating=True)
        return notes

    def _remove_made(self) -> None:
        for d in reversed(self._made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self._made = []

    def destroy(self, kill: bool = False) -> None:
        super().destroy(kill)
        self._remove_made()  # the parents this process made for it, if it made it

    def update(self, resources: dict) -> list[str]:
        res = resources or {}
        notes: list[str] = []
        self._check(res)
        self._apply(res, notes, creating=False)
        return notes

    @staticmethod
    def _check(res: dict) -> None:
        cpu = get_section(res, "cpu")
        if get_int(cpu, "realtimePeriod", "cpu") or get_int(cpu, "realtimeRuntime", "cpu"):
            raise CgroupError("linux.resources.cpu.realtimePeriod/realtimeRuntime: realtime "
                              "scheduling limits do not exist on cgroup v2")
        for key in get_section(res, "unified"):
            if "/" in key or key in (".", ".."):
                raise CgroupError(f"linux.resources.unified: key {key!r} must be a file name "
                                  "(no slashes)")

    def _apply(self, res: dict, notes: list[str], creating: bool) -> None:
        pids = get_section(res, "pids")
        limit = get_int(pids, "limit", "pids")
        if limit is not None:
            self._write("pids.max", pids_max(limit))
        self._set_memory(get_section(res, "memory"), notes)
        self._set_io(get_section(res, "blockIO"))
        self._set_cpu(get_section(res, "cpu"))
        if creating or "devices" in res:
            self._set_devices(res.get("devices") or [])
        cpu = get_section(res, "cpu")
        if cpu.get("cpus"):
            self._write("cpuset.cpus", str(cpu["cpus"]))
        if cpu.get("mems"):
            self._write("cpuset.mems", str(cpu["mems"]))
        for size, limit in hugepage_limits(res):
            self._write(f"hugetlb.{size}.max", str(limit))
            if os.path.exists(f"{self.path}/hugetlb.{size}.rsvd.max"):
                self._write(f"hugetlb.{size}.rsvd.max", str(limit))
        for device, limits in (res.get("rdma") or {}).items():
            parts = [device] + [f"{k}={limits[o]}" for o, k in
                                (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object"))
                                if isinstance(limits, dict) and limits.get(o) is not None]
            self._write("rdma.max", " ".join(parts))
        network = get_section(res, "network")
        if network.get("classID") is not None or network.get("priorities"):
            notes.append("linux.resources.network is ignored: cgroup v2 has no net_cls or "
                         "net_prio controller")
        for key, value in get_section(res, "unified").items():
            self._write(key, str(value))

    def _set_memory(self, mem: dict, notes: list[str]) -> None:
        limit = get_int(mem, "limit", "memory") or 0
        swap = get_int(mem, "swap", "memory") or 0
        reservation = get_int(mem, "reservation", "memory") or 0
        if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
            notes.append("memory.kernel and memory.kernelTCP are ignored (no such limits on "
                         "cgroup v2)")
        swappiness = get_int(mem, "swappiness", "memory")
        if swappiness is not None and swappiness != -1:
            notes.append(f"memory.swappiness {swappiness} is ignored: cgroup v2 has no "
                         "per-cgroup swappiness")
        if mem.get("disableOOMKiller"):
            notes.append("memory.disableOOMKiller is ignored: cgroup v2 cannot disable the "
                         "OOM killer")
        if not (limit or swap or reservation):
            return
        swap_only = swap_to_v2(swap, limit)
        if swap_only or swap > 0:  # swap == limit asks for no swap at all: write 0
            if os.path.exists(f"{self.path}/memory.swap.max"):
                self._write("memory.swap.max", v2_limit(swap_only))
            elif swap > 0:
                notes.append(f"memory.swap {swap} is ignored: this kernel does not account "
                             "swap (no memory.swap.max)")
        if limit:
            try:
                self._write("memory.max", v2_limit(limit))
            except CgroupError as err:
                if err.errno != errno.EBUSY:
                    raise
                from lowrt.cgroups import stats
                usage = stats.read_uint_or_zero(f"{self.path}/memory.current")
                raise CgroupError(f"unable to set memory limit to {limit} (current usage: "
                                  f"{usage}) in {self.path}", err.errno) from None
        if reservation:
            self._write("memory.low", v2_limit(reservation))

    def _set_io(self, bio: dict) -> None:
        weight = get_int(bio, "weight", "blockIO") or 0
        weight_devices = get_list(bio, "weightDevice", "blockIO.")
        if weight or weight_devices:
            # BFQ takes blkio's own 10-1000 scale (and per-device weights); without it the
            # io controller's io.weight wants 1-10000.
            bfq = os.path.exists(f"{self.path}/io.bfq.weight")
            if weight:
                if bfq:
                    self._write("io.bfq.weight", str(weight))
                else:
                    self._write("io.weight", f"default {blkio_weight_to_io_weight(weight)}")
            for i, wd in enumerate(weight_devices):
                where = f"blockIO.weightDevice[{i}]"
                major, minor = get_int(wd, "major", where), get_int(wd, "minor", where)
                w = get_int(wd, "weight", where)
                if major is None or minor is None:
                    raise CgroupError(f"linux.resources.{where}: needs major and minor")
                if w:
                    if bfq:
                        self._write("io.bfq.weight", f"{major}:{minor} {w}")
                    else:
                        self._write("io.weight",
                                    f"{major}:{minor} {blkio_weight_to_io_weight(w)}")
        for _, key, major, minor, rate in throttle_entries(bio):
            self._write("io.max", io_max_line(major, minor, key, rate))

    def _set_cpu(self, cpu: dict) -> None:
        shares = get_int(cpu, "shares", "cpu") or 0
        quota = get_int(cpu, "quota", "cpu")
        period = get_int(cpu, "period", "cpu")
        burst = get_int(cpu, "burst", "cpu")
        idle = get_int(cpu, "idle", "cpu")
        if shares:
            self._write("cpu.weight", str(shares_to_weight(shares)))
        if quota or period:
            self._write("cpu.max", cpu_max(quota, period))
        if burst is not None:
            self._write("cpu.max.burst", str(burst))
        if idle is not None:
            self._write("cpu.idle", str(idle))

    def _set_devices(self, oci_rules: list) -> None:
        """Compile the rules to an eBPF program and attach it in place of any program that
        is there already (BPF_F_REPLACE when there is one, else attach and detach the rest).
        The attachment outlives this process: the cgroup holds the program."""
        rules = devices.parse_rules(oci_rules)
        default, live = devices.effective(rules)
        from lowrt.linux import bpf
        dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)
            if default and all(r.allow for r in live) and not old:
                return  # allows everything and nothing to replace: no program needed
            pfd = bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, devices.bpf_program(rules),
                                name="lowrt_devices")
            try:
                if len(old) == 1:
                    ofd = bpf.prog_fd_by_id(old[0])
                    try:
                        bpf.prog_attach(pfd, dfd, bpf.BPF_CGROUP_DEVICE,
                                        bpf.BPF_F_ALLOW_MULTI | bpf.BPF_F_REPLACE, ofd)
                    finally:
                        os.close(ofd)
                else:
                    bpf.prog_attach(pfd, dfd, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
                    for prog_id in old:
                        ofd = bpf.prog_fd_by_id(prog_id)
                        try:
                            bpf.prog_detach(ofd, dfd, bpf.BPF_CGROUP_DEVICE)
                        finally:
                            os.close(ofd)
            finally:
                os.close(pfd)
        except OSError as err:
            raise CgroupError(f"set the device filter of {self.path}: {err.strerror}",
                              err.errno) from None
        finally:
            os.close(dfd)

    # -- freezer and kill --------------------------------------------------------------

    def _can_freeze(self) -> bool:
        return os.path.exists(f"{self.path}/cgroup.freeze")

    def freeze(self) -> None:
        """Write 1 to cgroup.freeze and wait for cgroup.events to say "frozen 1"."""
        self._write("cgroup.freeze", "1")
        self._wait_frozen(True)

    def thaw(self) -> None:
        self._write("cgroup.freeze", "0")

    def frozen(self) -> bool:
        return (fs.read_optional(f"{self.path}/cgroup.freeze") or "").strip() == "1"

    def _wait_frozen(self, want: bool, timeout_iters: int = 1000) -> None:
        for _ in range(timeout_iters):
            events = fs.read_keyed(f"{self.path}/cgroup.events")
            if bool(events.get("frozen", 0)) == want:
                return
            time.sleep(0.01)
        try:
            self.thaw()
        except CgroupError:
            pass
        raise CgroupError(f"freeze {self.path}: cgroup.events did not report frozen "
                          "within 10s")

    def kill_all(self, sig: int = SIGKILL) -> None:
        """SIGKILL through cgroup.kill (5.14+) where the kernel has it: it reaches every
        process below, forks included, with no freeze needed."""
        if sig == SIGKILL and os.path.exists(f"{self.path}/cgroup.kill"):
            self._write("cgroup.kill", "1")
            return
        super().kill_all(sig)

    # -- OOM ---------------------------------------------------------------------------

    def oom_fd(self) -> int:
        """A non-blocking inotify fd watching memory.events: readable whenever the kernel
        updates the file (an OOM kill among other events; check oom_kills())."""
        from lowrt.cgroups import notify
        return notify.watch_modify(f"{self.path}/memory.events")

    def oom_kills(self) -> int:
        return fs.read_keyed(f"{self.path}/memory.events").get("oom_kill", 0)

    # -- statistics --------------------------------------------------------------------

    def _collect(self) -> dict:
        if not os.path.isdir(self.path):
            raise CgroupError(f"cgroup {self.path} does not exist")
        from lowrt.cgroups import stats
        raw = stats.new_raw()
        d = self.path
        cpu, st = raw["cpu"], fs.read_keyed(f"{d}/cpu.stat")
        cpu["total"] = st.get("usage_usec", 0) * 1000
        cpu["user"] = st.get("user_usec", 0) * 1000
        cpu["kernel"] = st.get("system_usec", 0) * 1000
        cpu["periods"] = st.get("nr_periods", 0)
        cpu["throttled_periods"] = st.get("nr_throttled", 0)
        cpu["throttled_time"] = st.get("throttled_usec", 0) * 1000
        mem = raw["memory"]
        mem["stat"] = fs.read_keyed(f"{d}/memory.stat")
        mem["cache"] = mem["stat"].get("file", 0)
        usage = mem["usage"]
        usage["usage"] = stats.read_uint_or_zero(f"{d}/memory.current")
        usage["limit"] = stats.read_uint_or_zero(f"{d}/memory.max")
        usage["max"] = stats.read_uint_or_zero(f"{d}/memory.peak")
        events = fs.read_keyed(f"{d}/memory.events")
        usage["failcnt"] = events.get("max", 0)
        raw["oom_kills"] = events.get("oom_kill", 0)
        if os.path.exists(f"{d}/memory.swap.current"):
            # runc reports swap as memory+swap, the v1 meaning
            swap = mem["swap"]
            swap["usage"] = stats.read_uint_or_zero(f"{d}/memory.swap.current") + usage["usage"]
            swap_limit = stats.read_uint_or_zero(f"{d}/memory.swap.max")
            swap["limit"] = (swap_limit if swap_limit == fs.UINT64_MAX or
                             usage["limit"] == fs.UINT64_MAX else swap_limit + usage["limit"])
        raw["pids"]["current"] = stats.read_uint_or_zero(f"{d}/pids.current")
        limit = stats.read_uint_or_zero(f"{d}/pids.max")
        raw["pids"]["limit"] = 0 if limit == fs.UINT64_MAX else limit
        stats.parse_io_stat(fs.read_optional(f"{d}/io.stat"), raw["blkio"])
        for size in hugepage_sizes():
            current = fs.read_optional(f"{d}/hugetlb.{size}.current")
            if current is None:
                continue
            raw["hugetlb"][size] = {
                "usage": int(current),
                "max": 0,
                "failcnt": fs.read_keyed(f"{d}/hugetlb.{size}.events").get("max", 0)}
        return raw

    def stats(self) -> dict:
        from lowrt.cgroups import stats as cgstats
        return cgstats.to_shim(self._collect(), 2)

    def events_stats(self) -> dict:
        from lowrt.cgroups import stats as cgstats
        return cgstats.to_runc(self._collect())


def _enable_controllers(cgroup: str, controllers: list[str]) -> None:
    """Enable controllers for cgroup's children; one at a time when the batch is refused
    (some may be unavailable at this level). What stays off shows up later as a clear
    "controller is not enabled" error, only if a limit needs it."""
    try:
        fs.write(f"{cgroup}/cgroup.subtree_control", " ".join("+" + c for c in controllers))
    except CgroupError:
        for c in controllers:
            try:
                fs.write(f"{cgroup}/cgroup.subtree_control", "+" + c)
            except CgroupError:
                pass
