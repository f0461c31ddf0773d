"""The OCI runtime spec berthd gives a container: docker's default spec (moby's
`daemon/pkg/oci/defaults.go`) with the container's Config and HostConfig applied as dockerd does
(namespaces by mode, resources, capabilities, env, user, mounts of hostname/hosts/resolv.conf,
the seccomp profile and the other --security-opt options).
"""
from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from lowrt.units import ascii_digits

from . import seccomp_profile, security_opts
from .errors import InvalidParameter
from .volumes import mountpoints as volume_mountpoints

DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# every capability by number, for `--privileged` and `--cap-add ALL`
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# the device cgroup: deny all, then the default devices (null, zero, full, random, urandom,
# tty, console/ptmx pair) as docker allows them, and explicitly deny /dev/net/tun (10:229)
_DEVICE_RULES = [(False, None, None, None)] + [
    (True, "c", major, minor) for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))
] + [(False, "c", 10, 229)]

DEFAULT_SHM_SIZE = 64 * 1024 * 1024


def _device_rules() -> list[dict]:
    rules = []
    for allow, kind, major, minor in _DEVICE_RULES:
        rule: dict = {"allow": allow, "access": "rwm"}
        if kind:
            rule.update(type=kind, major=major, minor=minor)
        rules.append(rule)
    return rules


def _mounts(shm_size: int) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def replace_or_append_env(base: list[str], extra: list[str]) -> list[str]:
    """docker's ReplaceOrAppendEnvValues: extra's KEY=V replace base's KEY, else are appended."""
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for item in extra:
        key = item.split("=", 1)[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def process_env(config: dict) -> list[str]:
    env = [f"PATH={DEFAULT_PATH_ENV}", f"HOSTNAME={config.get('Hostname') or ''}"]
    if config.get("Tty"):
        env.append("TERM=xterm")
    return replace_or_append_env(env, config.get("Env") or [])


def _read_rootfs_file(rootfs_dirs: list[Path], rel: str) -> str:
    """A file of the container's filesystem read from its layers, the top one first."""
    for d in rootfs_dirs:
        path = Path(d) / rel
        if path.is_file():
            return path.read_text(errors="replace")
    return ""


def _lookup(content: str, key: str) -> list[str] | None:
    for line in content.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and (fields[0] == key or fields[2] == key):
            return fields
    return None


def resolve_user(user: str, rootfs_dirs: list[Path], group_add: list[str]) -> dict:
    """Config.User ('', 'name', 'uid', 'name:group', 'uid:gid') -> the spec's process.user."""
    name, _, group = (user or "").partition(":")
    passwd = _read_rootfs_file(rootfs_dirs, "etc/passwd")
    groups = _read_rootfs_file(rootfs_dirs, "etc/group")
    uid, gid, username = 0, 0, "root"
    if name:
        entry = _lookup(passwd, name)
        if entry:
            username, uid, gid = entry[0], int(entry[2]), int(entry[3])
        elif ascii_digits(name):
            uid, username = int(name), ""
        else:
            raise InvalidParameter(
                f"unable to find user {name}: no matching entries in passwd file")
    if group:
        entry = _lookup(groups, group)
        if entry:
            gid = int(entry[2])
        elif ascii_digits(group):
            gid = int(group)
        else:
            raise InvalidParameter(
                f"unable to find group {group}: no matching entries in group file")
    extra = []
    for line in groups.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and username and username in fields[3].split(","):
            extra.append(int(fields[2]))
    for g in group_add or []:
        entry = _lookup(groups, g)
        if entry:
            extra.append(int(entry[2]))
        elif ascii_digits(g):
            extra.append(int(g))
        else:
            raise InvalidParameter(f"unable to find group {g}: no matching entries in group file")
    out: dict = {"uid": uid, "gid": gid}
    extra = sorted(set(extra) - {gid})
    if extra:
        out["additionalGids"] = extra
    return out


def _cap_name(c: str) -> str:
    c = c.upper()
    return c if c.startswith("CAP_") else "CAP_" + c


def _capabilities(host_config: dict) -> list[str]:
    if host_config.get("Privileged"):
        return _all_caps()   # dockerd too ignores CapAdd and CapDrop here
    adds = [_cap_name(c) for c in host_config.get("CapAdd") or []]
    drops = [_cap_name(c) for c in host_config.get("CapDrop") or []]
    caps = _all_caps() if "CAP_ALL" in adds else list(DEFAULT_CAPS)
    if "CAP_ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    caps += [c for c in adds if c != "CAP_ALL" and c not in caps]
    return caps


def _all_caps() -> list[str]:
    """Every capability berthd itself may hold: one missing from its bounding set (this host's
    root lacks CAP_SYS_RESOURCE) could be given to no container, and runc fails a config that
    asks for it."""
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [c for i, c in enumerate(ALL_CAPS) if bounding >> i & 1]


# what docker leaves out of a privileged container's copy of the host's /dev
_HOST_DEV_SKIP = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(top: str = "/dev") -> list[dict]:
    """The host's device nodes, for `--privileged` (as dockerd gives them): char and block
    devices under /dev, symlinks and the console left out."""
    found = []
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in _HOST_DEV_SKIP]
        for name in files:
            path = os.path.join(root, name)
            if path == "/dev/console":
                continue
            try:
                node = _device_node(path, os.lstat(path))
            except OSError:
                continue   # gone meanwhile
            if node is not None:
                found.append(node)
    return found


def _device_node(path: str, st: os.stat_result) -> dict | None:
    """The OCI linux.devices entry that makes a node like the one st describes at path; None
    for anything but a char or block device."""
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def resources(hc: dict) -> dict:
    if hc.get("Privileged"):
        res: dict = {"devices": [{"allow": True, "access": "rwm"}]}
    else:
        res = {"devices": _device_rules()}
    memory = {}
    if hc.get("Memory", 0) > 0:
        memory["limit"] = hc["Memory"]
    if hc.get("MemoryReservation", 0) > 0:
        memory["reservation"] = hc["MemoryReservation"]
    if hc.get("MemorySwap", 0) > 0:
        memory["swap"] = hc["MemorySwap"]
    if hc.get("MemorySwappiness") is not None and hc["MemorySwappiness"] >= 0:
        memory["swappiness"] = hc["MemorySwappiness"]
    if hc.get("OomKillDisable") is not None:
        memory["disableOOMKiller"] = bool(hc["OomKillDisable"])
    if memory:
        res["memory"] = memory
    cpu: dict = {}
    if hc.get("CpuShares"):
        if hc["CpuShares"] < 0:
            raise InvalidParameter(
                f"invalid CPU shares ({hc['CpuShares']}): value must be a positive integer")
        cpu["shares"] = hc["CpuShares"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if hc.get("NanoCpus", 0) > 0:
        cpu["period"] = 100_000
        cpu["quota"] = hc["NanoCpus"] * 100_000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("PidsLimit") is not None:
        res["pids"] = {"limit": hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1}
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = hc["CpuRealtimePeriod"]
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = hc["CpuRealtimeRuntime"]
    if cpu:
        res["cpu"] = cpu
    block_io: dict = {}
    if hc.get("BlkioWeight"):
        block_io["weight"] = hc["BlkioWeight"]
    if hc.get("BlkioWeightDevice"):
        block_io["weightDevice"] = [
            {**_major_minor(d["Path"]), "weight": d["Weight"]} for d in hc["BlkioWeightDevice"]]
    for key, oci in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                     ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        if hc.get(key):
            block_io[oci] = [{**_major_minor(d["Path"]), "rate": d["Rate"]} for d in hc[key]]
    if block_io:
        res["blockIO"] = block_io
    if not hc.get("Privileged"):
        res["devices"] += [device_cgroup_rule(r) for r in hc.get("DeviceCgroupRules") or []]
    return res


def _major_minor(path: str) -> dict:
    """dockerd's getBlkio*Devices: the device's numbers from a stat of its path."""
    try:
        rdev = os.stat(path).st_rdev
    except OSError as e:
        raise InvalidParameter(f"stat {path}: {e.strerror.lower()}") from None
    return {"major": os.major(rdev), "minor": os.minor(rdev)}


_RULE_TYPES = {"a", "b", "c"}


def device_cgroup_rule(rule: str) -> dict:
    """--device-cgroup-rule 'c 1:3 rwm' (a star for any major or minor) as an OCI device rule,
    as dockerd's AppendDevicePermissionsFromCgroupRules reads it."""
    fields = rule.split()
    error = InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
    if len(fields) != 3 or fields[0] not in _RULE_TYPES or not fields[2] \
            or set(fields[2]) - set("rwm") or len(fields[2]) > 3:
        raise error
    major, sep, minor = fields[1].partition(":")
    if not sep or not all(n == "*" or ascii_digits(n) for n in (major, minor)):
        raise error
    out: dict = {"allow": True, "type": fields[0]}
    if major != "*":
        out["major"] = int(major)
    if minor != "*":
        out["minor"] = int(minor)
    out["access"] = fields[2]
    return out


def _namespaces(hc: dict, cgroup_v2: bool) -> list[dict]:
    ns = [{"type": "mount"}]
    net = hc.get("NetworkMode") or "bridge"
    if net != "host":
        ns.append({"type": "network"})
    if (hc.get("UTSMode") or "") != "host":
        ns.append({"type": "uts"})
    if (hc.get("PidMode") or "") != "host":
        ns.append({"type": "pid"})
    if (hc.get("IpcMode") or "") != "host":
        ns.append({"type": "ipc"})
    cgroupns = hc.get("CgroupnsMode") or ("private" if cgroup_v2 else "host")
    if cgroupns == "private":
        ns.append({"type": "cgroup"})
    return ns


def _host_binds(hc: dict) -> list[str]:
    """The HostConfig.Binds entries that bind a host path; the others (NAME:/path, /path)
    are volumes, which engine/volumes makes into mount points."""
    return [b for b in hc.get("Binds") or [] if not volume_mountpoints.is_volume_bind(b)]


def _bind(spec: str) -> tuple[str, str, list[str]]:
    """One host bind of HostConfig.Binds, '/src:/dst[:opts]', as (source, destination,
    options)."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[1].startswith("/"):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    opts = parts[2].split(",") if len(parts) > 2 else []
    if opts and not _valid_bind_mode(opts):
        raise InvalidParameter(f"invalid mode: {parts[2]}")
    return parts[0], parts[1], opts


PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


def _valid_bind_mode(opts: list[str]) -> bool:
    """moby's linuxValidMountMode for a bind: at most one of rw/ro, one of z/Z, one
    propagation; nothing else (nocopy is for volumes)."""
    groups = (("rw", "ro"), ("z", "Z"), PROPAGATIONS)
    counts = [sum(o in g for o in opts) for g in groups]
    return all(any(o in g for g in groups) for o in opts) and max(counts) <= 1


def bind_propagation(opts: list[str]) -> str:
    """A bind's propagation (rprivate unless given). z and Z ask for an SELinux relabel, which
    dockerd too skips without a word where SELinux is off (berthd's hosts: it is not
    supported here, see security_opts)."""
    return next((o for o in opts if o in PROPAGATIONS), "rprivate")


def _device(entry: dict) -> tuple[str, str, str]:
    """One HostConfig.Devices entry (`--device /dev/x[:/dev/y][:rwm]`) as (host path, path in
    the container, cgroup permissions)."""
    host = entry.get("PathOnHost") or ""
    inside = entry.get("PathInContainer") or host
    perms = entry.get("CgroupPermissions") or "rwm"
    if not host.startswith("/") or not inside.startswith("/") or set(perms) - set("rwm"):
        raise InvalidParameter(f"invalid device mapping: {host}:{inside}:{perms}")
    return host, inside, perms


def check_host_config(hc: dict, daemon_root: Path | None = None) -> None:
    """At create, as dockerd: what berthd cannot give the container is refused before a
    container record exists, naming the item. daemon_root: berthd's data root, which a bind
    may hold only with rslave or rshared propagation (_check_daemon_root)."""
    if daemon_root is not None:
        _check_daemon_root(hc, str(daemon_root))
    for key in ("CapAdd", "CapDrop"):
        for name in hc.get(key) or []:
            if _cap_name(name) not in ALL_CAPS and _cap_name(name) != "CAP_ALL":
                raise InvalidParameter(f"invalid {key}: unknown capability: \"{_cap_name(name)}\"")
    for spec in hc.get("Binds") or []:
        if volume_mountpoints.is_volume_bind(spec):
            volume_mountpoints.parse_volume_bind(spec)      # checked; made at create
            continue
        _, _, opts = _bind(spec)
        relabel = [o for o in opts if o in ("z", "Z")]
        if relabel and security_opts.selinux_enabled():
            raise InvalidParameter(f"berth cannot apply the bind option '{relabel[0]}' yet "
                                   f"(HostConfig.Binds): SELinux relabelling is not supported")
    for m in hc.get("Mounts") or []:
        kind, target = m.get("Type"), m.get("Target") or ""
        if not target.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"{kind}\": "
                                   f"invalid mount path: '{target}' mount path must be absolute")
        if kind == "bind":
            if not os.path.exists(m.get("Source") or ""):
                raise InvalidParameter(f"invalid mount config for type \"bind\": bind source "
                                       f"path does not exist: {m.get('Source')}")
        elif kind == "volume":
            volume_mountpoints.parse_volume_mount(m)    # checked; made at create
        elif kind != "tmpfs":
            # npipe (Windows), cluster (swarm), image (an image's content mounted)
            raise InvalidParameter(f"berth cannot apply --mount type={kind} yet "
                                   f"(HostConfig.Mounts): mounts of type \"{kind}\" are not "
                                   f"supported: bind a host directory (type=bind), use a "
                                   f"volume (type=volume) or type=tmpfs")
    for dest in hc.get("Tmpfs") or {}:
        if not dest.startswith("/"):
            raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
        if posixpath.normpath(dest) == "/":
            raise InvalidParameter("invalid specification: destination can't be '/'")
    for entry in hc.get("Devices") or []:
        host, _, _ = _device(entry)
        if not os.path.exists(host):
            raise InvalidParameter(f"error gathering device information while adding custom "
                                   f"device \"{host}\": no such file or directory")
    security_opts.parse(hc.get("SecurityOpt"))


def _check_daemon_root(hc: dict, root: str) -> None:
    """dockerd's validateBindDaemonRoot: a bind whose source holds the daemon's data root (or
    lies in it) must not be given private or slave-less propagation, or the container would pin
    the overlay and shm mounts berthd makes there (and later unmounts) for as long as it runs;
    rslave or rshared, or none (dockerd then picks rslave), is what it may have."""
    binds = [(src, bind_propagation(opts) if any(o in PROPAGATIONS for o in opts) else "")
             for src, _, opts in (_bind(spec) for spec in _host_binds(hc))]
    binds += [(m.get("Source") or "", (m.get("BindOptions") or {}).get("Propagation") or "")
              for m in hc.get("Mounts") or [] if m.get("Type") == "bind"]
    for src, propagation in binds:
        if propagation in ("", "rslave", "rshared") or not src.startswith("/"):
            continue
        source = posixpath.normpath(src)
        if _within(source, root) or _within(root, source):
            raise InvalidParameter(
                f'invalid mount config: must use either propagation mode "rslave" or "rshared" '
                f'when mount source is within the daemon root, daemon root: "{root}", bind '
                f'mount source: "{source}", propagation: "{propagation}"')


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _source_mount(path: str) -> tuple[str, set[str]]:
    """The mount point holding path and its propagation tags (shared:N, master:N), from
    /proc/self/mountinfo, as moby's mountinfo.GetSourceMount."""
    path = os.path.realpath(path)
    best, tags = "/", set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ")[0].split()
            point = fields[4].replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) \
                    and len(point) >= len(best):
                best, tags = point, {t.split(":")[0] for t in fields[6:]}
    return best, tags


def check_propagation(source: str, propagation: str) -> None:
    """dockerd's ensureShared / ensureSharedOrSlave: a shared bind needs its source on a shared
    mount, a slave one on a shared or slave mount; else the start fails with its words."""
    if propagation in ("shared", "rshared"):
        point, tags = _source_mount(source)
        if "shared" not in tags:
            raise InvalidParameter(f"path {source} is mounted on {point} but it is not a shared "
                                   f"mount")
    elif propagation in ("slave", "rslave"):
        point, tags = _source_mount(source)
        if not tags & {"shared", "master"}:
            raise InvalidParameter(f"path {source} is mounted on {point} but it is not a shared "
                                   f"or slave mount")


def _default_propagation(source: str, daemon_root: str | None) -> str:
    """A bind's propagation where the user gave none: rprivate, but rslave for one that holds
    the daemon's data root or lies in it (dockerd: so that berthd's later unmounts there reach
    the container), falling back to rprivate where the source's mount is neither shared nor
    slave, as dockerd falls back."""
    if daemon_root is None:
        return "rprivate"
    source = posixpath.normpath(source)
    if not (_within(source, daemon_root) or _within(daemon_root, source)):
        return "rprivate"
    _, tags = _source_mount(source)
    return "rslave" if tags & {"shared", "master"} else "rprivate"


def _user_mounts(hc: dict, daemon_root: str | None = None,
                 volume_mounts: list[dict] | None = None) -> list[dict]:
    """-v, --mount and --tmpfs, as OCI mounts, with the container's volumes (volume_mounts:
    binds of their data, made by containers.py), a parent before what is mounted in it, as
    dockerd sorts them."""
    mounts = []
    for spec in _host_binds(hc):
        src, dst, opts = _bind(spec)
        if not os.path.exists(src):
            os.makedirs(src, exist_ok=True)   # dockerd creates a missing bind source directory
        propagation = bind_propagation(opts) if any(o in PROPAGATIONS for o in opts) \
            else _default_propagation(src, daemon_root)
        check_propagation(src, propagation)
        mounts.append({"destination": dst, "type": "bind", "source": src,
                       "options": ["rbind", "ro" if "ro" in opts else "rw", propagation]})
    for m in hc.get("Mounts") or []:
        ro = "ro" if m.get("ReadOnly") else "rw"
        if m["Type"] == "volume":
            continue        # among volume_mounts
        if m["Type"] == "bind":
            propagation = (m.get("BindOptions") or {}).get("Propagation") \
                or _default_propagation(m["Source"], daemon_root)
            check_propagation(m["Source"], propagation)
            mounts.append({"destination": m["Target"], "type": "bind", "source": m["Source"],
                           "options": ["rbind", ro, propagation]})
        else:
            tmpfs = m.get("TmpfsOptions") or {}
            opts = ["nosuid", "nodev", "noexec", ro]
            if tmpfs.get("SizeBytes"):
                opts.append(f"size={tmpfs['SizeBytes']}")
            if tmpfs.get("Mode"):
                opts.append(f"mode={tmpfs['Mode']:o}")
            mounts.append({"destination": m["Target"], "type": "tmpfs", "source": "tmpfs",
                           "options": opts})
    for dest, data in (hc.get("Tmpfs") or {}).items():
        # docker's defaults, which the user's options follow (and so override)
        opts = ["noexec", "nosuid", "nodev"] + [o for o in data.split(",") if o]
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
    mounts += volume_mounts or []
    # stable: mounts at the same depth keep their order
    return sorted(mounts, key=lambda m: posixpath.normpath(m["destination"]).count("/"))


def _user_devices(hc: dict) -> tuple[list[dict], list[dict]]:
    """--device: the nodes to create and the device cgroup rules that allow them."""
    nodes, rules = [], []
    for entry in hc.get("Devices") or []:
        host, inside, perms = _device(entry)
        node = _device_node(inside, os.stat(host))
        if node is None:
            raise InvalidParameter(f"{host} is not a device node")
        nodes.append(node)
        rules.append({"allow": True, "type": node["type"], "major": node["major"],
                      "minor": node["minor"], "access": perms})
    return nodes, rules


def _seccomp(opts: security_opts.SecurityOptions, caps: list[str],
             privileged: bool) -> dict | None:
    """The container's linux.seccomp, as dockerd makes it: the default profile (docker's,
    engine/seccomp_default.py) unless the container is privileged or asks for none, or the
    profile it gives (applied even to a privileged one), its rules for capabilities resolved
    against the container's bounding set."""
    if opts.seccomp == "unconfined" or (opts.seccomp == "default" and privileged):
        return None
    if not seccomp_profile.kernel_supports():
        return None   # dockerd too runs without its default on such a kernel (a custom
                      # profile was refused at create)
    if isinstance(opts.seccomp, seccomp_profile.Profile):
        return seccomp_profile.to_oci(opts.seccomp, caps)
    return seccomp_profile.to_oci(seccomp_profile.default_profile(), caps)


INIT_PATH = "/sbin/docker-init"   # where dockerd puts its init in a container


def build(*, container_id: str, config: dict, host_config: dict, rootfs_dirs: list[Path],
          container_dir: Path, cgroup_parent: str, cgroup_v2: bool,
          init_binary: str | None = None, daemon_root: Path | None = None,
          volume_mounts: list[dict] | None = None) -> dict:
    """The config.json for the container's bundle. rootfs is 'rootfs': the shim mounts it there.
    init_binary: the host's static init, run as pid 1 in front of the program (--init).
    daemon_root: berthd's data root, which a bind holding it gets rslave propagation for (as
    under dockerd) where the user gave none. volume_mounts: the container's volumes, as binds
    of their data (containers.py mounts and fills them)."""
    hc = host_config
    privileged = bool(hc.get("Privileged"))
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("No command specified")
    if init_binary:
        args = [INIT_PATH, "--", *args]
    caps = _capabilities(hc)
    security = security_opts.parse(hc.get("SecurityOpt"))
    user = resolve_user(config.get("User") or "", rootfs_dirs, hc.get("GroupAdd") or [])
    shm = hc.get("ShmSize") or DEFAULT_SHM_SIZE
    net = hc.get("NetworkMode") or "bridge"
    mounts = _mounts(shm)
    if (hc.get("IpcMode") or "") == "none":
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]   # dockerd's "none"
    # the files dockerd writes per container and binds over the image's
    for name, dest in (("hostname", "/etc/hostname"), ("hosts", "/etc/hosts"),
                       ("resolv.conf", "/etc/resolv.conf")):
        mounts.append({"destination": dest, "type": "bind", "source": str(container_dir / name),
                       "options": ["rbind", "rprivate"]})
    mounts += _user_mounts(hc, None if daemon_root is None else str(daemon_root), volume_mounts)
    if init_binary:
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": init_binary,
                       "options": ["rbind", "ro", "rprivate"]})
    # --security-opt writable-cgroups, which is the default for a privileged container
    writable_cgroups = privileged if security.writable_cgroups is None \
        else security.writable_cgroups
    for m in mounts:
        if (m["type"] == "sysfs" and privileged) or (m["type"] == "cgroup" and writable_cgroups):
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    process = {
        "terminal": bool(config.get("Tty")),
        "user": user,
        "args": args,
        "env": process_env(config),
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": security.no_new_privileges,
    }
    if security.apparmor and security_opts.apparmor_enabled():
        process["apparmorProfile"] = security.apparmor
    if config.get("Tty") and hc.get("ConsoleSize") and any(hc["ConsoleSize"]):
        height, width = hc["ConsoleSize"]
        process["consoleSize"] = {"height": height, "width": width}
    if hc.get("Ulimits"):
        process["rlimits"] = [{"type": "RLIMIT_" + u["Name"].upper(), "hard": u["Hard"],
                               "soft": u["Soft"]} for u in hc["Ulimits"]]
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = hc["OomScoreAdj"]
    linux: dict = {
        "namespaces": _namespaces(hc, cgroup_v2),
        "resources": resources(hc),
        "cgroupsPath": os.path.join(hc.get("CgroupParent") or cgroup_parent, container_id),
        "maskedPaths": [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(READONLY_PATHS),
        "sysctl": dict(hc.get("Sysctls") or {}),
    }
    seccomp = _seccomp(security, caps, privileged)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if privileged:
        linux["devices"] = host_devices()
    elif hc.get("Devices"):
        linux["devices"], rules = _user_devices(hc)
        linux["resources"]["devices"] += rules
    if net != "host":
        # as dockerd, for a private network namespace: ping and low ports without capabilities
        linux["sysctl"].setdefault("net.ipv4.ping_group_range", "0 2147483647")
        linux["sysctl"].setdefault("net.ipv4.ip_unprivileged_port_start", "0")
    spec = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
    }
    if (hc.get("UTSMode") or "") != "host":
        spec["hostname"] = config.get("Hostname") or container_id[:12]
    if config.get("Domainname"):
        spec["domainname"] = config["Domainname"]
    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])   # as dockerd: into the OCI spec
    return spec
