"""The host's cgroup hierarchies, for a container's "cgroup" mount.

Computed by lowrt (which knows where the container's cgroup is) and sent to the init, which
mounts them: each hierarchy either fresh (in a cgroup namespace) or bound from the host.
"""
from __future__ import annotations


def cgroup_sources(paths: dict[str, str]) -> list[dict]:
    """The host's cgroup hierarchies, each with the directory a "cgroup" mount binds from it.

    paths is the container's cgroup ({controller: dir}, "" for v2, lowrt.cgroups' `paths`);
    a hierarchy the container was not put in (the empty cgroup2 of a hybrid host) gives the
    cgroup lowrt is in, which the init inherits.
    """
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, superopts = fields[sep + 1], fields[sep + 3]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            root, point = fields[3], fields[4]
            keys = [""] if fstype == "cgroup2" else [o for o in superopts.split(",") if o in own]
            if not keys:
                continue
            joined = next((paths[k] for k in keys if k in paths), None)
            if joined is None:
                path = own[keys[0]]
                rel = path[len(root):] if root != "/" and path.startswith(root) else path
                joined = point + (rel if rel != "/" else "")
            out.append({"fstype": fstype, "point": point, "source": joined,
                        "controllers": sorted(k for k in keys if k)})
    return out
