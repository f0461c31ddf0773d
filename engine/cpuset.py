"""CPU and memory-node lists ("0-2,4") as cgroup cpuset files write them, and the check dockerd
makes at create and update that `--cpuset-cpus` / `--cpuset-mems` name only what the host has:
otherwise the runtime fails at start to write cpuset.cpus ("numerical result out of range"),
after a container record was made, where dockerd refuses the request with a 400."""
from __future__ import annotations

import functools
import os

from . import sysinfo
from .errors import InvalidParameter

# as dockerd (CVE-2018-20699): "1-9223372036854775807" must not make a set of that many
DEFAULT_MAX_CPUS = 8192


def parse_list(text: str, maximum: int = 0) -> set[int]:
    """'0,3-4,7' -> {0, 3, 4, 7}; ValueError with dockerd's words when it is not such a list
    or names a number above maximum (when maximum is not 0)."""
    if text == "":
        return set()
    out: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        try:
            low = _atoi(first)
            high = _atoi(last) if dash else low
        except ValueError:
            raise ValueError(f"invalid format: {text}") from None
        if high < low:
            raise ValueError(f"invalid format: {text}")
        if maximum and high > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(low, high + 1))
    return out


def _atoi(s: str) -> int:
    """Go's strconv.Atoi: an optional sign and ASCII digits, nothing else."""
    digits = s[1:] if s[:1] in "+-" else s
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(s)
    return int(s)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


@functools.cache
def available(cgroup_v2: bool) -> tuple[str, str]:
    """The host's CPUs and memory nodes, as its root cpuset lists them ("0-1", "0")."""
    if cgroup_v2:
        cpus = _read("/sys/fs/cgroup/cpuset.cpus.effective")
        mems = _read("/sys/fs/cgroup/cpuset.mems.effective")
    else:
        mount = sysinfo.v1_mount("cpuset")
        cpus = _read(f"{mount}/cpuset.cpus") if mount else None
        mems = _read(f"{mount}/cpuset.mems") if mount else None
    if not cpus:
        cpus = _format(os.sched_getaffinity(0))
    return cpus, mems or "0"


def _format(numbers: set[int]) -> str:
    runs: list[str] = []
    for n in sorted(numbers):
        if runs and runs[-1].rpartition("-")[2] == str(n - 1):
            runs[-1] = f"{runs[-1].partition('-')[0]}-{n}"
        else:
            runs.append(str(n))
    return ",".join(runs)


def check(resources: dict, cgroup_v2: bool) -> None:
    """CpusetCpus and CpusetMems name only CPUs and nodes the host has, as dockerd checks."""
    cpus, mems = available(cgroup_v2)
    for key, what, noun, have in (("CpusetCpus", "cpus", "CPUs", cpus),
                                  ("CpusetMems", "mems", "memory nodes", mems)):
        wanted = resources.get(key) or ""
        if not wanted:
            continue
        have_set = parse_list(have)
        try:
            asked = parse_list(wanted, max(have_set | {DEFAULT_MAX_CPUS}))
        except ValueError as e:
            raise InvalidParameter(f"Invalid value {wanted} for cpuset {what}: {e}") from None
        if not asked <= have_set:
            raise InvalidParameter(f"Requested {noun} are not available - requested {wanted}, "
                                   f"available: {have}")
