"""A private mount namespace whose /sys/fs/cgroup has every cgroup v1 hierarchy the kernel
offers, for the real peers' daemons (dockerd, containerd) on hosts that leave some unmounted.

containerd's shim loads a container's cgroups from /proc/<pid>/cgroup and the hierarchies it
finds under /sys/fs/cgroup; on a hybrid host with, say, hugetlb or net_cls,net_prio unmounted,
`docker run` then answers "cannot start a stopped process: unknown". The host's own mounts are
left as they are: the daemon runs under `unshare -m` on a fresh tmpfs at /sys/fs/cgroup holding
the host's hierarchies again plus the missing ones. When the daemon has exited, the cgroups it
left in the hierarchies mounted here are removed, so the kernel lets those hierarchies go: it
may keep one bound (to no mount) for some minutes while its removed cgroups finish dying, and a
process started meanwhile is listed in its root in /proc/<pid>/cgroup.

    argv = full_v1_cgroups(["dockerd", ...])   # unchanged on pure v2, or with nothing missing
"""
from __future__ import annotations

import shlex

from tests.helpers.leaks import cgroup_mounts

CGROUP_ROOT = "/sys/fs/cgroup"

_WRAPPER = r"""
set -u
mount -t tmpfs -o mode=755 cgroup {root}
for spec in {mounts}; do
    dir=${{spec%%=*}}; opts=${{spec#*=}}
    mkdir -p {root}/$dir
    if [ "$opts" = cgroup2 ]; then mount -t cgroup2 cgroup2 {root}/$dir
    else mount -t cgroup -o "$opts" cgroup {root}/$dir ||
        echo "bench: cannot mount the $opts cgroup hierarchy" >&2
    fi
done
"$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null' TERM INT
wait $child; rc=$?
while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done
for dir in {added}; do
    find {root}/$dir -mindepth 1 -depth -type d -exec rmdir {{}} + 2>/dev/null
done
exit $rc
"""


def _mounted() -> list[tuple[str, str]]:
    """(directory under /sys/fs/cgroup, mount options) of each cgroup hierarchy mounted there."""
    found = []
    for point, _, options in cgroup_mounts():
        if not point.startswith(CGROUP_ROOT + "/"):
            continue
        opts = sorted(options - {"rw", "ro"})
        if not options:
            opts = ["cgroup2"]
        elif any(o.startswith("name=") for o in opts):
            opts.insert(0, "none")
        found.append((point[len(CGROUP_ROOT) + 1:], ",".join(opts)))
    return found


def _unmounted_controllers() -> list[str]:
    """v1 controllers the kernel has enabled that no hierarchy holds, except those in use by
    cgroup v2 (enabled in its root's subtree_control: they cannot be mounted as v1)."""
    in_v2: set[str] = set()
    for dirname, opts in _mounted():
        if opts == "cgroup2":
            try:
                with open(f"{CGROUP_ROOT}/{dirname}/cgroup.subtree_control") as f:
                    in_v2 |= set(f.read().split())
            except OSError:
                pass
    missing = []
    with open("/proc/cgroups") as f:
        for line in f:
            if line.startswith("#"):
                continue
            name, hierarchy, _, enabled = line.split()
            if hierarchy == "0" and enabled == "1" and name not in in_v2:
                missing.append(name)
    return missing


def full_v1_cgroups(argv: list[str]) -> list[str]:
    """argv, run where every v1 hierarchy is mounted; argv itself where nothing is missing."""
    import os
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):   # pure v2: no v1 hierarchies
        return argv
    missing = _unmounted_controllers()
    if not missing:
        return argv
    mounts = [f"{d}={o}" for d, o in _mounted()] + [f"{c}={c}" for c in missing]
    script = _WRAPPER.format(root=CGROUP_ROOT, mounts=" ".join(shlex.quote(m) for m in mounts),
                             added=" ".join(missing))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "full-v1-cgroups",
            *argv]
