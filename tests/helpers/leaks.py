"""Snapshots of what a test run can leave behind on the host, and the difference between two.

A leak is anything present after the run that was not there before: a process of ours (by name,
one a test started, or a container's: one whose root or namespaces are neither ours nor our
ancestors'), a mount, a cgroup directory, a network namespace, a network link, or an iptables
rule.

berth's own network state is also checked on its own, snapshots aside: a rule in one of berth's
chains (BERTH*) that names an interface that is gone is a rule berthd forgot to remove, and a
berth-* entry of /run/netns with no namespace mounted on it is a file it forgot to delete; an
identical rule added twice counts twice.

The machine is shared with other programs, so only what berth and its tests can have made
counts: a new cgroup is ours when it was made at the top of a hierarchy, under the test
process's own cgroup (where relative cgroup paths land), under one of ours, in the cgroup of one
of our processes, or under a name of berth's; one that another program made under a cgroup of
its own (a sibling of ours included) is not. The /run/netns mount that the first `ip netns add`
on a machine makes, and that stays by design, is not a leak; a namespace file in it is.
"""
from __future__ import annotations

import glob
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
# names berth gives its cgroups whatever their parent (the engine's default parent, lowrt's)
OUR_CGROUP_NAMES = ("berth", "lowrt")
# made once by iproute2 (and pyroute2) on first use, shared, and kept: machine state, not a leak
NETNS_MOUNTS = {"/run/netns", "/var/run/netns"}
BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
NAMESPACES = ("mnt", "pid", "net", "uts", "ipc")


@dataclass
class Snapshot:
    processes: dict[int, str] = field(default_factory=dict)
    mounts: set[str] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)
    # where a new cgroup counts as ours: hierarchy roots and this process's own cgroups
    cgroup_anchors: set[str] = field(default_factory=set)
    netns: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    iptables: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _environment(pid: int | str) -> tuple:
    """What places a process: its root (device and inode) and its namespaces."""
    st = os.stat(f"/proc/{pid}/root")
    return (st.st_dev, st.st_ino), tuple(os.readlink(f"/proc/{pid}/ns/{ns}") for ns in NAMESPACES)


def _homes() -> list[tuple]:
    """The places the machine's own programs run in: ours and our ancestors'. They differ when
    the tests run chrooted in a mount namespace of their own, as the fresh-root harness runs
    them; the host's other programs then run where the harness's parent does. (The init's
    would do, but a sandbox's init may not let its namespaces be read.)"""
    homes = []
    pid = os.getpid()
    while pid > 0:
        try:
            homes.append(_environment(pid))
            with open(f"/proc/{pid}/status") as f:
                pid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            break
    return homes


def _started_by_a_test(pid: int) -> bool:
    """pytest puts PYTEST_CURRENT_TEST in its environment for each test, and every process a
    test starts inherits it: a `sleep` a test's shell left behind is found by that."""
    environ = "\0" + _read(f"/proc/{pid}/environ")
    return pid != os.getpid() and "\0PYTEST_CURRENT_TEST=" in environ


def _is_ours(pid: int, cmdline: str, homes: list[tuple]) -> bool:
    """By name (a program of ours or of our peers), started by a test, or a container's: a
    process whose root or namespaces are not those of a home."""
    argv0 = os.path.basename(cmdline.split(" ", 1)[0])
    words = {os.path.basename(w) for w in cmdline.split()[:3]}
    if argv0 in OUR_PROGRAMS or words & set(OUR_PROGRAMS) or _started_by_a_test(pid):
        return True
    try:
        return _environment(pid) not in homes
    except OSError:
        return False


def processes() -> dict[int, str]:
    homes = _homes()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
        if not cmdline:  # kernel thread or already gone
            continue
        if _is_ours(pid, cmdline, homes):
            found[pid] = cmdline[:200]
    return found


def mounts() -> set[str]:
    points = set()
    for line in _read("/proc/self/mountinfo").splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[4] not in NETNS_MOUNTS:
            points.add(parts[4])
    return points


def cgroup_mounts(mountinfo: str | None = None) -> list[tuple[str, str, set[str]]]:
    """(mount point, root inside the hierarchy, super options: its controllers, name=, rw...)
    of each cgroup filesystem mounted here, or in the mountinfo text given; cgroup2's set is
    empty."""
    found = []
    if mountinfo is None:
        mountinfo = _read("/proc/self/mountinfo")
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, extra = fields.split(), tail.split()
        if len(parts) > 4 and len(extra) > 2 and extra[0] in ("cgroup", "cgroup2"):
            options = set() if extra[0] == "cgroup2" else set(extra[2].split(","))
            found.append((parts[4], parts[3], options))
    return found


def process_cgroups(pid: int | str = "self") -> set[str]:
    """The host directories of a process's cgroups, one per mounted hierarchy."""
    dirs = set()
    mounted = cgroup_mounts()
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        wanted = set(controllers.split(",")) if controllers else set()
        for point, root, options in mounted:
            if (wanted and wanted <= options) or (not wanted and not options):
                inside = path[len(root):] if root != "/" and path.startswith(root) else path
                dirs.add(os.path.normpath(point + "/" + inside))
    return dirs


def cgroup_anchors() -> set[str]:
    """Where a cgroup made by berth or its tests may hang: the top of each hierarchy (and the
    tmpfs that holds them), and this process's own cgroups."""
    return ({str(CGROUP_ROOT)} | {point for point, _, _ in cgroup_mounts()}
            | process_cgroups())


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
        seen: dict[str, int] = {}
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
                key = f"{tool} {table} {line}"
                seen[key] = seen.get(key, 0) + 1
                # a rule added a second time is a second rule (removing one leaves the other)
                rules.add(key if seen[key] == 1 else f"{key} (copy {seen[key]})")
    return rules


BERTH_CHAIN_PREFIX = "BERTH"
BERTH_NETNS_PREFIX = "berth-"


def stale_berth_state(rules: set[str] | None = None, link_names: set[str] | None = None,
                      netns_dir: str = "/run/netns") -> list[str]:
    """berth's network leftovers whatever the snapshots say: rules in its chains naming an
    interface that no longer exists, and its /run/netns files with no namespace on them."""
    rules = iptables() if rules is None else rules
    link_names = links() if link_names is None else link_names
    out = []
    for rule in sorted(rules):
        words = rule.split()
        if len(words) < 4 or not words[3].startswith(BERTH_CHAIN_PREFIX) or words[2] != "-A":
            continue
        named = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-i", "-o")}
        gone = sorted(n for n in named if n not in link_names)
        if gone:
            out.append(f"stale berth rule (interface {', '.join(gone)} gone): {rule}")
    mounted = {line.split()[4] for line in _read("/proc/self/mountinfo").splitlines()
               if len(line.split()) > 4}
    try:
        entries = os.listdir(netns_dir)
    except OSError:
        entries = []
    for name in sorted(entries):
        if name.startswith(BERTH_NETNS_PREFIX) and f"{netns_dir}/{name}" not in mounted:
            out.append(f"stale berth netns file {netns_dir}/{name} (nothing mounted on it)")
    return out


# berthd data roots of the tests' private daemons and of the session's (tests/helpers/
# engine_daemon.py puts them under /tmp/bt-*/data)
VOLUME_DIRS_GLOB = "/tmp/bt-*/data/volumes/*"


def volume_dirs(pattern: str = VOLUME_DIRS_GLOB) -> set[str]:
    """The volume directories of the tests' berthd data roots. Named volumes outlive their
    containers by design, so a test that made one and did not remove it leaves it here; the
    mounts of an --opt volume show among the mounts."""
    return {p for p in glob.glob(pattern) if os.path.isdir(p)}


def snapshot() -> Snapshot:
    return Snapshot(processes(), mounts(), cgroups(), cgroup_anchors(), netns(), links(),
                    iptables(), volume_dirs())


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _our_new_cgroups(before: Snapshot, after: Snapshot) -> set[str]:
    ours = set(before.cgroup_anchors | after.cgroup_anchors)
    for pid in after.processes:
        ours |= process_cgroups(pid)
    counted = set()
    for c in sorted(after.cgroups - before.cgroups, key=len):  # parents before children
        if (os.path.dirname(c) in ours or c in ours
                or any(part.startswith(OUR_CGROUP_NAMES) for part in c.split("/"))):
            ours.add(c)
            counted.add(c)
    return counted


def leaked(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable lines, one per leaked thing; empty when nothing leaked."""
    out = [f"process {pid}: {cmd}" for pid, cmd in sorted(after.processes.items())
           if pid not in before.processes and _alive(pid)]
    out += [f"mount {m}" for m in sorted(after.mounts - before.mounts)]
    out += [f"cgroup {c}" for c in sorted(_our_new_cgroups(before, after))]
    out += [f"netns {n}" for n in sorted(after.netns - before.netns)]
    out += [f"link {lk}" for lk in sorted(after.links - before.links)]
    out += [f"iptables {r}" for r in sorted(after.iptables - before.iptables)]
    # a data root removed since (its berthd cleaned up) took its volumes with it
    out += [f"volume {v}" for v in sorted(after.volumes - before.volumes) if os.path.exists(v)]
    before_stale = set(stale_berth_state(before.iptables, before.links))
    out += [s for s in stale_berth_state(after.iptables, after.links) if s not in before_stale]
    return out
