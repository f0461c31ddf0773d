"""Timestamps as Go formats them: runc's state JSON and logs are read by Go programs."""
from __future__ import annotations

import time


def rfc3339_nano(ns: int) -> str:
    """UTC, nanoseconds with trailing zeros dropped (Go's time.RFC3339Nano)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def rfc3339(seconds: float) -> str:
    """Local time with its zone offset, to the second (logrus's default timestamp)."""
    t = time.localtime(seconds)
    off = t.tm_gmtoff
    if off == 0:
        zone = "Z"
    else:
        sign = "+" if off > 0 else "-"
        off = abs(off)
        zone = f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone
