"""Linux security modules: the AppArmor profile a process takes on at exec, and personality."""
from __future__ import annotations

import os

from lowrt.linux.libc import check, libc

PER_LINUX = 0x0000
PER_LINUX32 = 0x0008
PERSONALITY_DOMAINS = {"LINUX": PER_LINUX, "LINUX32": PER_LINUX32}


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read().strip() == b"Y"
    except OSError:
        return False


def apparmor_change_onexec(profile: str) -> None:
    """The profile the next exec runs under (the kernel's attr interface, as libapparmor's
    aa_change_onexec writes it)."""
    for path in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        if os.path.exists(path):
            try:
                with open(path, "w") as f:
                    f.write(f"exec {profile}")
                return
            except OSError as e:
                raise OSError(e.errno, f"set apparmor profile {profile!r}: {e.strerror.lower()}") from None
    raise OSError(2, f"set apparmor profile {profile!r}: no /proc/self/attr interface")


def set_personality(persona: int) -> None:
    check(libc.personality(persona), "personality", hex(persona))
