"""`berth events`: the daemon's events, printed as the docker CLI prints them."""
from __future__ import annotations

import json
import re
import sys
import time

import click

def timestamp(value: str, now: float) -> str:
    """--since/--until as the docker CLI sends them: a Go duration ('10m', '1h30m') counts back
    from now; unix seconds go as they are; an RFC 3339 time becomes unix seconds."""
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    from ..timefmt import parse_go_duration, parse_rfc3339
    duration = parse_go_duration(value)
    if duration is not None:
        at = now - duration / 1e9
        return f"{int(at)}.{int(round((at % 1) * 1e9)):09d}"
    try:
        ns = parse_rfc3339(value if re.search(r"(Z|[+-]\d\d:\d\d)$", value) else value + "Z")
    except ValueError:
        raise click.BadParameter(f"invalid time {value!r}: use a duration (10m), unix seconds "
                                 f"or an RFC 3339 time") from None
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _filters(values: tuple[str, ...]) -> str | None:
    out: dict[str, dict[str, bool]] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq:
            raise click.BadParameter(f"bad format of filter (expected name=value): {item}")
        out.setdefault(key.strip().lower(), {})[value] = True
    return json.dumps(out) if out else None


def line(ev: dict) -> str:
    """`<time> <type> <action> <id> (k=v, ...)`, the time in RFC 3339 with nine digits in the
    local zone, the attributes sorted."""
    ns = ev.get("timeNano") or ev.get("time", 0) * 1_000_000_000
    seconds, frac = divmod(ns, 1_000_000_000)
    local = time.localtime(seconds)
    zone = time.strftime("%z", local)
    zone = "Z" if zone in ("+0000", "") else f"{zone[:3]}:{zone[3:]}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{frac:09d}{zone}"
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    out = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        out += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return out


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("--since", help="Show events created since this time")
@click.option("--until", help="Stream events until this time")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter (e.g. type=container)")
@click.option("--format", "template", help="'json' for one JSON object per line")
@click.pass_obj
def events(obj, since, until, filters, template):
    """Get real time events from the server."""
    now = time.time()
    query = {"since": timestamp(since, now) if since else None,
             "until": timestamp(until, now) if until else None,
             "filters": _filters(filters)}
    resp = obj.client.request("GET", "/events", query)
    buf = b""
    try:
        for piece in resp.chunks():
            buf += piece
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                if raw.strip():
                    ev = json.loads(raw)
                    print(json.dumps(ev) if template == "json" else line(ev), flush=True)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return 0


COMMANDS = [events]
