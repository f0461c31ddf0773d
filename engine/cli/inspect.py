"""Looking at containers: inspect (container, then image), top, stats."""
from __future__ import annotations

import json
import re
import sys
import time

import click

from .client import DaemonError
from .format import bytes_size, human_size, table, truncate_id

CTX = {"help_option_names": ["--help"]}
_FIELD = re.compile(r"{{\s*(json\s+)?((?:\.[A-Za-z0-9_]+)+|\.)\s*}}")


def _go_text(value) -> str:
    """A value as Go's text/template prints it."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def render(template: str, obj) -> str:
    """The `{{.Field.Sub}}` and `{{json .Field}}` parts of a Go template, which is what
    `--format` is mostly used for."""
    def field(m: re.Match) -> str:
        value = obj
        for part in m.group(2).split(".")[1:]:
            if part:
                value = value.get(part) if isinstance(value, dict) else None
        return json.dumps(value) if m.group(1) else _go_text(value)
    return _FIELD.sub(field, template)


@click.command(context_settings=CTX)
@click.option("-f", "--format", "template", help="Format the output with a Go template")
@click.option("--type", "kind", type=click.Choice(["container", "image"]),
              help="Only this type of object")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, template, kind, names):
    """Return low-level information on containers or images."""
    found, errors = [], []
    for name in names:
        for k in [kind] if kind else ["container", "image"]:
            path = f"/containers/{name}/json" if k == "container" else f"/images/{name}/json"
            try:
                found.append(obj.client.call("GET", path))
                break
            except DaemonError as e:
                if e.status != 404 or kind:
                    errors.append(f"Error response from daemon: {e.message}")
                    break
        else:
            errors.append(f"Error: No such object: {name}")
    if template:
        for item in found:
            print(render(template, item))
    else:
        print(json.dumps(found, indent=4))
    for message in errors:
        print(message, file=sys.stderr)
    return 1 if errors else 0


@click.command(context_settings={**CTX, "allow_interspersed_args": False})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def top(obj, container, ps_args):
    """Display the running processes of a container."""
    query = {"ps_args": " ".join(ps_args)} if ps_args else None
    result = obj.client.call("GET", f"/containers/{container}/top", query)
    print(table([result["Titles"], *result["Processes"]], minwidth=20))
    return 0


def _cpu_percent(s: dict) -> float:
    """As the docker CLI: the container's share of the host's CPU time since the sample before,
    times the number of CPUs."""
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage")
                                           or [])
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def _memory(s: dict) -> tuple[float, float]:
    mem = s.get("memory_stats") or {}
    usage, stats = mem.get("usage", 0), mem.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    if inactive < usage:
        usage -= inactive
    return usage, mem.get("limit", 0)


def stats_row(s: dict) -> list[str]:
    used, limit = _memory(s)
    nets = (s.get("networks") or {}).values()
    rx, tx = sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)
    read = write = 0
    for entry in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (entry.get("op") or " ")[0].lower()
        if op == "r":
            read += entry.get("value", 0)
        elif op == "w":
            write += entry.get("value", 0)
    return [truncate_id(s.get("id", "")), (s.get("name") or "").lstrip("/"),
            f"{_cpu_percent(s):.2f}%", f"{bytes_size(used)} / {bytes_size(limit)}",
            f"{used / limit * 100 if limit else 0:.2f}%",
            f"{human_size(rx)} / {human_size(tx)}", f"{human_size(read)} / {human_size(write)}",
            str((s.get("pids_stats") or {}).get("current", 0))]


STATS_TITLES = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                "BLOCK I/O", "PIDS"]


@click.command(context_settings=CTX)
@click.option("--no-stream", is_flag=True, help="Print one sample and exit")
@click.argument("containers", nargs=-1)
@click.pass_obj
def stats(obj, no_stream, containers):
    """Display a live stream of containers' resource usage statistics."""
    client = obj.client
    names = list(containers) or [truncate_id(c["Id"])
                                 for c in client.call("GET", "/containers/json")]
    def sample(name: str):
        """One container's stats, each on its own connection: they are read in parallel."""
        try:
            resp = client.request("GET", f"/containers/{name}/stats", {"stream": 0},
                                  new_connection=True)
            return stats_row(json.loads(resp.read()))
        except DaemonError as e:
            return e

    from concurrent.futures import ThreadPoolExecutor
    while True:
        rows, errors = [STATS_TITLES], []
        with ThreadPoolExecutor(max(1, min(len(names), 16))) as pool:
            for result in pool.map(sample, names):
                if isinstance(result, DaemonError):
                    errors.append(f"Error response from daemon: {result.message}")
                else:
                    rows.append(result)
        if not no_stream:
            sys.stdout.write("\x1b[2J\x1b[H")      # redraw in place, as docker does
        print(table(rows))
        for message in errors:
            print(message, file=sys.stderr)
        if no_stream or errors:
            return 1 if errors else 0
        sys.stdout.flush()
        time.sleep(0.5)


COMMANDS = [inspect, top, stats]
