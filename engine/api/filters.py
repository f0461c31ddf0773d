"""Filter values as dockerd reads them, for the list and prune endpoints: times and durations
(`until`, timetypes.GetTimestamp), booleans (`is-task`, `dangling`, filters.GetBoolOrDefault),
port ranges (`publish`, `expose`), and labels (filters.MatchKVList)."""
from __future__ import annotations

from datetime import datetime

from .. import timefmt
from ..errors import InvalidParameter


def timestamp_ns(value: str, now_ns: int | None = None) -> int:
    """dockerd's timetypes.GetTimestamp: a Go duration counts back from now ("24h"), else unix
    seconds[.nanoseconds], RFC 3339, or a date or date-time without zone in local time."""
    now = timefmt.now_ns() if now_ns is None else now_ns
    text = value.strip()
    duration = timefmt.parse_go_duration(text) if text != "0" else None
    if duration is not None:
        return now - duration
    try:
        return timefmt.parse_unix_timestamp(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"failed to parse value as time or duration: \"{value}\"") from None
    if when.tzinfo is None:
        when = when.astimezone()        # dockerd: in the daemon's local zone
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def bool_filter(filters: dict[str, list[str]], key: str, default: bool) -> bool:
    """filters.GetBoolOrDefault: exactly one of true/1 or false/0, else dockerd's error."""
    if key not in filters:
        return default
    values = set(filters[key])
    is_true = bool(values & {"true", "1"})
    is_false = bool(values & {"false", "0"})
    if is_true == is_false:
        shown = "[" + " ".join(filters[key]) + "]" if filters[key] else ""
        raise InvalidParameter(f"invalid filter '{key}={shown}'" if shown
                               else f"invalid filter '{key}'")
    return is_true


def _port_number(text: str, key: str, value: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidParameter(f"error while looking up for {key} {value}: strconv.ParseUint: "
                               f"parsing \"{text}\": invalid syntax")
    number = int(text)
    if number > 65535:
        raise InvalidParameter(f"error while looking up for {key} {value}: strconv.ParseUint: "
                               f"parsing \"{text}\": value out of range")
    return number


def port_filter(key: str, values: list[str]) -> set[str]:
    """`publish` and `expose` values ("80", "80/udp", "8000-8080/tcp") as the "port/proto"
    strings they name; dockerd's messages for values it refuses."""
    out: set[str] = set()
    for value in values:
        if ":" in value:
            raise InvalidParameter(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        proto = proto or "tcp"
        if not port:
            raise InvalidParameter(f"error while looking up for {key} {value}: empty string "
                                   f"specified for ports")
        first, dash, last = port.partition("-")
        start = _port_number(first, key, value)
        end = _port_number(last, key, value) if dash else start
        if end < start:
            raise InvalidParameter(f"error while looking up for {key} {value}: invalid range "
                                   f"specified for port: {port}")
        out.update(f"{p}/{proto.lower()}" for p in range(start, end + 1))
    return out


def label_matches(labels: dict, selector: str) -> bool:
    """One `label` value: "key" (present) or "key=value" (present with that value)."""
    key, eq, want = selector.partition("=")
    return key in labels and (not eq or labels[key] == want)
