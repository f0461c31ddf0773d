"""The local driver's options (`docker volume create --opt`, --mount volume-opt=…): what
dockerd's local driver accepts (type, o, device, size) checked as it checks them, and the mount
they stand for, made when a container first uses the volume."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import InvalidParameter
from . import mounts as sys_mounts

VALID = ("type", "o", "device", "size")
# an option given needs these with it (dockerd's mandatoryOpts)
REQUIRED_WITH = {"device": ("type",), "type": ("device",), "o": ("device", "type")}

# the flag words of `o=` (the rest goes to the filesystem as its data), as mount(8) reads them
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0), "ro": (False, sys_mounts.MS_RDONLY),
    "rw": (True, sys_mounts.MS_RDONLY), "suid": (True, sys_mounts.MS_NOSUID),
    "nosuid": (False, sys_mounts.MS_NOSUID), "dev": (True, sys_mounts.MS_NODEV),
    "nodev": (False, sys_mounts.MS_NODEV), "exec": (True, sys_mounts.MS_NOEXEC),
    "noexec": (False, sys_mounts.MS_NOEXEC), "sync": (False, sys_mounts.MS_SYNCHRONOUS),
    "async": (True, sys_mounts.MS_SYNCHRONOUS), "dirsync": (False, sys_mounts.MS_DIRSYNC),
    "mand": (False, sys_mounts.MS_MANDLOCK), "nomand": (True, sys_mounts.MS_MANDLOCK),
    "atime": (True, sys_mounts.MS_NOATIME), "noatime": (False, sys_mounts.MS_NOATIME),
    "diratime": (True, sys_mounts.MS_NODIRATIME),
    "nodiratime": (False, sys_mounts.MS_NODIRATIME), "bind": (False, sys_mounts.MS_BIND),
    "rbind": (False, sys_mounts.MS_BIND | sys_mounts.MS_REC),
    "relatime": (False, sys_mounts.MS_RELATIME), "norelatime": (True, sys_mounts.MS_RELATIME),
    "strictatime": (False, sys_mounts.MS_STRICTATIME),
    "nostrictatime": (True, sys_mounts.MS_STRICTATIME),
}
_PROPAGATION = {"private": sys_mounts.MS_PRIVATE, "rprivate": sys_mounts.MS_PRIVATE
                | sys_mounts.MS_REC, "slave": sys_mounts.MS_SLAVE,
                "rslave": sys_mounts.MS_SLAVE | sys_mounts.MS_REC,
                "shared": sys_mounts.MS_SHARED, "rshared": sys_mounts.MS_SHARED
                | sys_mounts.MS_REC, "unbindable": sys_mounts.MS_UNBINDABLE,
                "runbindable": sys_mounts.MS_UNBINDABLE | sys_mounts.MS_REC}


@dataclass
class MountSpec:
    device: str
    fstype: str
    flags: int
    propagation: int
    data: str


def check(opts: dict[str, str]) -> None:
    """dockerd's validateOpts, and what berth cannot apply refused with why: a size (dockerd's
    quota needs an XFS project quota berth does not manage), type=none without o=bind (mount(2)
    has no filesystem "none"), nfs or cifs naming a host (dockerd resolves it; berthd resolves
    no names for a mount)."""
    if not opts:
        return
    for key in opts:
        if key not in VALID:
            raise InvalidParameter(f'invalid option: "{key}"')
    if "size" in opts:
        raise InvalidParameter("quota size requested but no quota support")
    for key, needed in REQUIRED_WITH.items():
        if key in opts:
            for other in needed:
                if other not in opts:
                    raise InvalidParameter(f'missing required option: "{other}"')
    spec = parse(opts)
    if opts["type"] == "none" and not spec.flags & sys_mounts.MS_BIND:
        raise InvalidParameter("berth cannot apply the volume option type=none without "
                               "o=bind: a mount of type none is a bind of device, give "
                               "o=bind")
    if spec.flags & sys_mounts.MS_BIND and not opts["device"].startswith("/"):
        raise InvalidParameter(f"berth cannot apply the volume option device={opts['device']} "
                               f"with o=bind: the device of a bind must be an absolute path")
    if opts["type"] in ("nfs", "nfs4", "cifs"):
        host = _option(opts.get("o") or "", "addr")
        if opts["type"] == "cifs" and opts["device"].startswith("//"):
            host = host or opts["device"][2:].split("/")[0]
        if host:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise InvalidParameter(f"berth cannot apply the volume option type="
                                       f"{opts['type']} naming the host {host}: berthd resolves "
                                       f"no host names for a mount; give its IP address") \
                    from None


def _option(o: str, key: str) -> str:
    for item in o.split(","):
        name, eq, value = item.partition("=")
        if name == key and eq:
            return value
    return ""


def parse(opts: dict[str, str]) -> MountSpec:
    """The mount the options describe: flag words out of o=, the rest its data."""
    flags, propagation, data = 0, 0, []
    for item in (opts.get("o") or "").split(","):
        if not item:
            continue
        if item in _FLAGS:
            clear, bit = _FLAGS[item]
            flags = flags & ~bit if clear else flags | bit
        elif item in _PROPAGATION:
            propagation |= _PROPAGATION[item]
        else:
            data.append(item)
    return MountSpec(opts.get("device") or "", opts.get("type") or "", flags, propagation,
                     ",".join(data))


def needs_mount(opts: dict[str, str]) -> bool:
    return bool(opts.get("type") or opts.get("device"))


def mount(opts: dict[str, str], target: str) -> None:
    """Mount what the options describe on target (the volume's _data), as moby's mount.Mount:
    a bind with flags is remounted to take them, propagation set by a call of its own."""
    spec = parse(opts)
    base = spec.flags & ~sys_mounts.MS_REMOUNT
    sys_mounts.mount(spec.device, target, spec.fstype, base, spec.data)
    try:
        rest = base & ~(sys_mounts.MS_BIND | sys_mounts.MS_REC)
        if base & sys_mounts.MS_BIND and rest:
            sys_mounts.mount("", target, "", sys_mounts.MS_REMOUNT | sys_mounts.MS_BIND | rest,
                             "")
        if spec.propagation:
            sys_mounts.mount("", target, "", spec.propagation, "")
    except OSError:
        sys_mounts.unmount(target)
        raise
