"""Time in the forms the Docker API uses: Go's RFC 3339 (nano) text and go-units' human durations.

Times are kept as integer nanoseconds since the epoch (what the shim and supervisor report), and
formatted only at the edge.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what dockerd shows for "never"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$")


def now_ns() -> int:
    return time.time_ns()


def _split(ns: int) -> tuple[str, int]:
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return stamp, frac


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano: trailing zeros of the fraction dropped; the zero time for 0."""
    if not ns:
        return ZERO_TIME
    stamp, frac = _split(ns)
    fraction = f"{frac:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def rfc3339nano_fixed(ns: int) -> str:
    """dockerd's log timestamp: always nine digits of fraction, so lines sort as text."""
    stamp, frac = _split(ns)
    return f"{stamp}.{frac:09d}Z"


def parse_rfc3339(text: str) -> int:
    """RFC 3339 with any number of fraction digits -> ns since the epoch."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"invalid RFC 3339 time {text!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                  tzinfo=timezone.utc)
    ns = int(dt.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        ns -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
    return ns


def parse_unix_timestamp(value: str) -> int:
    """The API's since/until: 'SECONDS[.NANOSECONDS]' (what the CLI sends), or RFC 3339."""
    value = value.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value) * 1_000_000_000
    m = re.fullmatch(r"(-?\d+)\.(\d{1,9})", value)
    if m:
        return int(m.group(1)) * 1_000_000_000 + int(m.group(2).ljust(9, "0"))
    return parse_rfc3339(value)


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, the words in `docker ps`'s STATUS column."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(value: str) -> int | None:
    """Go's time.ParseDuration ("1h30m", "1.5h", "-10m", "0") in nanoseconds; None if it is
    not one."""
    text = value
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)
