"""Host and domain name of the UTS namespace."""
from __future__ import annotations

import os

from lowrt.linux.libc import check, libc


def sethostname(name: str) -> None:
    raw = os.fsencode(name)
    check(libc.sethostname(raw, len(raw)), "sethostname", repr(name))


def setdomainname(name: str) -> None:
    raw = os.fsencode(name)
    check(libc.setdomainname(raw, len(raw)), "setdomainname", repr(name))
