"""A private mount namespace whose /sys/fs/cgroup has every cgroup v1 hierarchy the kernel
has, for the real peers' daemons (dockerd, containerd) in the tests and benchmarks, on hosts
that leave some unmounted.

containerd's shim loads a container's cgroups from /proc/<pid>/cgroup and the hierarchies it
finds under /sys/fs/cgroup. A hierarchy that exists but is mounted nowhere (another program
mounted it privately, and the kernel keeps it while cgroups in it exist or are dying) is listed
there and cannot be found: `docker run` can answer "cannot start a stopped process: unknown",
and `docker stats` reads zeros. (A controller in no hierarchy at all is not listed, and does no
harm.) The host's own mounts are left as they are: the daemon runs under `unshare -m` on a
fresh tmpfs at /sys/fs/cgroup holding the host's hierarchies again plus the missing ones.

    argv = full_v1_cgroups(["dockerd", ...])   # unchanged on pure v2, or with nothing missing
    ...                                          # the daemon runs, stops
    remove_cgroups_left_in_added_hierarchies("docker")   # what it left where the host cannot

The kernel keeps a hierarchy mounted this way bound, to no mount, while cgroups in it exist or
are still dying (minutes): a process started meanwhile lists it at "/" in /proc/<pid>/cgroup.
"""
from __future__ import annotations

import os
import shlex
import subprocess

from tests.helpers.leaks import cgroup_mounts

CGROUP_ROOT = "/sys/fs/cgroup"

_MOUNT_ALL = r"""
mount -t tmpfs -o mode=755 cgroup {root}
for spec in {mounts}; do
    dir=${{spec%%=*}}; opts=${{spec#*=}}
    mkdir -p {root}/$dir
    if [ "$opts" = cgroup2 ]; then mount -t cgroup2 cgroup2 {root}/$dir
    else mount -t cgroup -o "$opts" cgroup {root}/$dir ||
        echo "cannot mount the $opts cgroup hierarchy" >&2
    fi
done
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


def _unmounted_hierarchies() -> list[str]:
    """The v1 hierarchies that exist but are mounted nowhere here, each as its controllers
    ("net_cls,net_prio"), the options it must be mounted with."""
    mounted = {o for _, opts in _mounted() for o in opts.split(",")}
    by_hierarchy: dict[str, list[str]] = {}
    with open("/proc/cgroups") as f:
        for line in f:
            if line.startswith("#"):
                continue
            name, hierarchy, _, enabled = line.split()
            if enabled == "1" and hierarchy != "0" and name not in mounted:
                by_hierarchy.setdefault(hierarchy, []).append(name)
    return [",".join(names) for names in by_hierarchy.values()]


def _private_namespace(mounts: list[str], then: str) -> list[str]:
    script = _MOUNT_ALL.format(root=CGROUP_ROOT, mounts=" ".join(shlex.quote(m) for m in mounts))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script + then,
            "full-v1-cgroups"]


def full_v1_cgroups(argv: list[str]) -> list[str]:
    """argv, run where every v1 hierarchy is mounted (it execs: signals reach the daemon
    itself); argv as it is on a pure v2 host or where nothing is missing."""
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):   # pure v2: no v1 hierarchies
        return argv
    missing = _unmounted_hierarchies()
    if not missing:
        return argv
    mounts = [f"{d}={o}" for d, o in _mounted()] + [f"{c}={c}" for c in missing]
    return [*_private_namespace(mounts, 'exec "$@"'), *argv]


def remove_cgroups_left_in_added_hierarchies(parent: str) -> None:
    """After the daemon has exited: remove its cgroup parent (containerd's namespace, dockerd's
    --cgroup-parent) and what is left under it in the hierarchies that only its namespace had
    mounted, where the host cannot reach them."""
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        return
    missing = _unmounted_hierarchies()
    if not missing:
        return
    remove = "".join(f"[ -d {d} ] && find {d} -depth -type d -exec rmdir {{}} + 2>/dev/null\n"
                     for d in (shlex.quote(f"{CGROUP_ROOT}/{c}/{parent.strip('/')}")
                               for c in missing))
    subprocess.run(_private_namespace([f"{c}={c}" for c in missing], remove),
                   capture_output=True, timeout=60)
