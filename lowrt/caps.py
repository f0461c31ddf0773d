"""Capability names, and the five sets a process gets from its config.

Policy (lowrt differs from runc here, on purpose): a capability the config asks for that lowrt's
own bounding set lacks can be granted to no one, so lowrt drops it from every set and logs a
warning naming it, where runc fails. A host whose root lacks CAP_SYS_RESOURCE can then still run
docker's `--privileged` containers. A name lowrt does not know is an error.
"""
from __future__ import annotations

from lowrt.errors import LowrtError

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def name_of(cap: int) -> str:
    return NAMES[cap] if cap < len(NAMES) else f"CAP_{cap}"


def parse(names: list[str], where: str) -> int:
    """A mask from capability names; unknown names are an error that lists them."""
    mask = 0
    unknown = []
    for name in names:
        cap = NUMBERS.get(name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper())
        if cap is None:
            unknown.append(name)
        else:
            mask |= 1 << cap
    if unknown:
        raise LowrtError(f"unknown capabilities in {where}: {', '.join(unknown)}")
    return mask


def names(mask: int) -> list[str]:
    return [name_of(cap) for cap in range(mask.bit_length()) if mask & (1 << cap)]


def own_bounding_set() -> int:
    """lowrt's bounding set, from /proc (no ctypes needed in the parent process)."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"CapBnd:"):
                return int(line.split()[1], 16)
    raise LowrtError("no CapBnd line in /proc/self/status")


def plan(capabilities: dict | None, available: int) -> tuple[dict[str, int], int]:
    """Each set's mask limited to what is available, and the mask of what was asked but dropped.

    With no capabilities object at all the process gets none (the OCI default).
    """
    capabilities = capabilities or {}
    sets = {s: parse(capabilities.get(s) or [], f"process.capabilities.{s}") for s in SETS}
    wanted = 0
    for mask in sets.values():
        wanted |= mask
    dropped = wanted & ~available
    return {s: mask & available for s, mask in sets.items()}, dropped
