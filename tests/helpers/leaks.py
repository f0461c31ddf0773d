"""Snapshots of what a test run can leave behind on the host, and the difference between two.

A leak is anything present after the run that was not there before: a process of ours (by name,
or one whose root or namespaces differ from ours, i.e. a container process), a mount, a cgroup
directory, a network namespace, a network link, or an iptables rule.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Programs a test may start; any such process that outlives the run is a leak.
OUR_PROGRAMS = (
    "berthd", "berth-supervisor", "berth-shim", "lowrt", "runc", "crun", "containerd",
    "containerd-shim", "dockerd", "docker-registry", "registry", "ctr",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_DEPTH = 4
BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


@dataclass
class Snapshot:
    processes: dict[int, str] = field(default_factory=dict)
    mounts: set[str] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)
    netns: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    iptables: set[str] = field(default_factory=set)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _is_ours(pid: int, cmdline: str, own_ns: dict[str, str]) -> bool:
    argv0 = os.path.basename(cmdline.split(" ", 1)[0])
    words = {os.path.basename(w) for w in cmdline.split()[:3]}
    if argv0 in OUR_PROGRAMS or words & set(OUR_PROGRAMS):
        return True
    try:
        if os.readlink(f"/proc/{pid}/root") != "/":
            return True
        for ns, ident in own_ns.items():
            if os.readlink(f"/proc/{pid}/ns/{ns}") != ident:
                return True
    except OSError:
        return False
    return False


def processes() -> dict[int, str]:
    own_ns = {}
    for ns in ("mnt", "pid", "net", "uts", "ipc"):
        try:
            own_ns[ns] = os.readlink(f"/proc/self/ns/{ns}")
        except OSError:
            pass
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
        if not cmdline:  # kernel thread or already gone
            continue
        if _is_ours(pid, cmdline, own_ns):
            found[pid] = cmdline[:200]
    return found


def mounts() -> set[str]:
    points = set()
    for line in _read("/proc/self/mountinfo").splitlines():
        parts = line.split()
        if len(parts) > 4:
            points.add(parts[4])
    return points


def cgroups() -> set[str]:
    found = set()
    if not CGROUP_ROOT.is_dir():
        return found
    base_depth = len(CGROUP_ROOT.parts)
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        if len(Path(dirpath).parts) - base_depth >= CGROUP_DEPTH:
            dirnames[:] = []
        found.add(dirpath)
    return found


def netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def links() -> set[str]:
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return set()


def iptables() -> set[str]:
    rules = set()
    for tool in ("iptables-save", "ip6tables-save"):
        if not shutil.which(tool):
            continue
        table = ""
        out = subprocess.run([tool], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                # A chain line carries packet counters; keep its name. Built-in chains appear
                # with their table the first time any rule is added, so they are not leaks.
                chain = line.split()[0][1:]
                if chain not in BUILTIN_CHAINS:
                    rules.add(f"{tool} {table} chain {chain}")
            elif line.startswith("-A"):
                rules.add(f"{tool} {table} {line}")
    return rules


def snapshot() -> Snapshot:
    return Snapshot(processes(), mounts(), cgroups(), netns(), links(), iptables())


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def leaked(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable lines, one per leaked thing; empty when nothing leaked."""
    out = [f"process {pid}: {cmd}" for pid, cmd in sorted(after.processes.items())
           if pid not in before.processes and _alive(pid)]
    out += [f"mount {m}" for m in sorted(after.mounts - before.mounts)]
    out += [f"cgroup {c}" for c in sorted(after.cgroups - before.cgroups)]
    out += [f"netns {n}" for n in sorted(after.netns - before.netns)]
    out += [f"link {lk}" for lk in sorted(after.links - before.links)]
    out += [f"iptables {r}" for r in sorted(after.iptables - before.iptables)]
    return out
