"""`GET /containers/{id}/top`: as dockerd, `ps` runs on the host (ps_args, default -ef) and its
output is cut down to the container's processes (the supervisor's ListPids)."""
from __future__ import annotations

import asyncio
import re

from .errors import Internal

_PS_ARGS_PID = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")


def validate_ps_args(ps_args: str) -> None:
    """Only `pid=` may rename the PID column: the output is matched on it."""
    for key, value in _PS_ARGS_PID.findall(ps_args):
        if key != "pid":
            raise Internal(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    return [f for f in _ASCII_SPACE.split(line) if f]


def parse(output: str, pids: list[int]) -> dict:
    """{"Titles", "Processes"}: the lines of the given pids (and the thread lines under them,
    which `ps -m` shows with a PID of "-"); fields past the titles' count join the last."""
    lines = output.split("\n")
    titles = _fields(lines[0])
    if "PID" not in titles:
        raise Internal("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    wanted = set(pids)
    processes = []
    previous_ours = False
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            ours = previous_ours
        else:
            try:
                ours = int(fields[pid_index]) in wanted
            except ValueError:
                raise Internal(f"Unexpected pid '{fields[pid_index]}'") from None
            previous_ours = ours
        if ours:
            n = len(titles)
            processes.append(fields[:n - 1] + [" ".join(fields[n - 1:])])
    return {"Titles": titles, "Processes": processes}


async def _ps(args: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out, err


async def top(ps_args: str, pids: list[int]) -> dict:
    args = (ps_args or "-ef").split(" ")
    code, out, err = await _ps(args + ["-q" + ",".join(map(str, pids))])
    if code != 0:
        # some options (f) do not go with -q: all processes then, filtered below
        code, out, err = await _ps(args)
        if code != 0:
            first = err.decode(errors="replace").split("\n", 1)[0]
            raise Internal(f"ps: {first or f'exit status {code}'}")
    return parse(out.decode(errors="replace"), pids)
