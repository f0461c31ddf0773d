"""Namespaces: unshare and setns, and the names the OCI config and /proc use for each kind."""
from __future__ import annotations

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI namespace type -> (clone flag, name of its link under /proc/PID/ns/). Order matters when
# joining: the user namespace first, so the others are entered with its privileges.
KINDS: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
    "mount": (CLONE_NEWNS, "mnt"),
}


def flag_names(flags: int) -> str:
    return ",".join(kind for kind, (flag, _) in KINDS.items() if flags & flag) or "none"


# libc is imported on first use: lowrt's parent process needs this table, not the calls.

def unshare(flags: int) -> None:
    from lowrt.linux.libc import check, libc
    check(libc.unshare(flags), "unshare", f"namespaces {flag_names(flags)}")


def setns(fd: int, kind: str, path: str) -> None:
    """Join the namespace open at fd; path only names it in the error."""
    from lowrt.linux.libc import check, libc
    check(libc.setns(fd, KINDS[kind][0]), "setns", f"{kind} namespace {path}")

