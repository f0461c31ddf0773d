"""The five capability sets of the calling thread: capset(2) and the bounding/ambient prctls."""
from __future__ import annotations

from lowrt.linux.libc import Structure, byref, c_int, c_uint32, c_ulong, check, libc, syscall
from lowrt.linux.prctl import (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE,
                               PR_CAPBSET_DROP, PR_CAPBSET_READ, prctl)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _Data(Structure):
    _fields_ = [("effective", c_uint32), ("permitted", c_uint32),
                ("inheritable", c_uint32)]


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        return int(f.read())


def bounding_set() -> int:
    """The calling thread's bounding set as a bit mask."""
    mask = 0
    for cap in range(last_cap() + 1):
        if check(libc.prctl(PR_CAPBSET_READ, c_ulong(cap), 0, 0, 0), "prctl PR_CAPBSET_READ"):
            mask |= 1 << cap
    return mask


def drop_bounding(keep: int) -> None:
    """Drop from the bounding set every capability not in keep (needs CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            prctl(PR_CAPBSET_DROP, cap, what=f"prctl PR_CAPBSET_DROP {cap}")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall("capset", byref(header), byref(data),
            target=f"effective={effective:#x} permitted={permitted:#x} inheritable={inheritable:#x}")


def set_ambient(mask: int) -> None:
    """Make the ambient set exactly mask (each must be permitted and inheritable already)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="prctl PR_CAP_AMBIENT_CLEAR_ALL")
    cap = 0
    while mask >> cap:
        if mask & (1 << cap):
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, what=f"prctl PR_CAP_AMBIENT_RAISE {cap}")
        cap += 1
