"""berthd's settings, from its command line and /etc/berth/daemon.json (engine/daemon_options.py
merges the two as dockerd does)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "unix:///run/berth/berth.sock"
DEFAULT_DATA_ROOT = "/var/lib/berth"
DEFAULT_EXEC_ROOT = "/run/berth"
DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json"
DEFAULT_GROUP = "berth"             # owns the unix socket when it exists (dockerd's "docker")


def cgroup_v2_only() -> bool:
    """True on a pure cgroup v2 host (controllers in the unified hierarchy)."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    exec_root: Path = Path(DEFAULT_EXEC_ROOT)
    supervisor: str | None = None       # address of a running supervisor; None: start our own
    default_runtime: str = "lowrt"
    cgroup_parent: str = "/berth"
    debug: bool = False
    pidfile: Path | None = None
    cgroup_v2: bool = field(default_factory=cgroup_v2_only)
    init: bool = False                  # --init for every container that does not say
    init_path: str | None = None        # --init-path; None: docker-init, then tini-static
    log_level: str = "info"
    group: str | None = DEFAULT_GROUP   # of the unix sockets; None: root's
    group_required: bool = False        # -G named it: a missing group is an error
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    insecure_tcp: bool = False          # serve tcp:// without client certificates (loudly)
    cpu_rt_period: int = 0              # --cpu-rt-period, µs (engine/cpu_rt.py)
    cpu_rt_runtime: int = 0             # --cpu-rt-runtime, µs: the parent's real-time budget
    bip: str | None = None              # --bip: the default bridge's address/prefix
    insecure_registries: list[str] = field(default_factory=list)  # host[:port] or CIDR
    registry_mirrors: list[str] = field(default_factory=list)     # URLs, for docker.io pulls

    def init_binary(self) -> str | None:
        """The static init that --init runs as pid 1: --init-path, else docker-init on PATH (as
        dockerd; Debian's is tini-static), else Debian's tini-static."""
        if self.init_path:
            path = shutil.which(self.init_path)
            return os.path.realpath(path) if path else None
        for name in ("docker-init", "tini-static"):
            path = shutil.which(name)
            if path:
                return os.path.realpath(path)
        return None

    def socket_paths(self) -> list[Path]:
        """The unix sockets berthd makes (and removes at exit)."""
        return [Path(h[len("unix://"):]) for h in self.hosts if h.startswith("unix://")]
