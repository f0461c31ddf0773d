"""pause, resume, update."""
from __future__ import annotations

import sys

from lowrt import units
from lowrt.args import Flag, nargs, parse
from lowrt.errors import LowrtError
from lowrt.state import Container


def cmd_pause(g, argv: list[str]) -> int:
    p = parse(argv, [], what="pause")
    nargs(p, "pause", exact=1)
    c = Container.load(g.root, p.args[0])
    status = c.status()
    if status not in ("running", "created"):
        raise LowrtError("container not running")
    c.cgroup().freeze()
    return 0


def cmd_resume(g, argv: list[str]) -> int:
    p = parse(argv, [], what="resume")
    nargs(p, "resume", exact=1)
    c = Container.load(g.root, p.args[0])
    if c.status() != "paused":
        raise LowrtError("container not paused")
    c.cgroup().thaw()
    return 0


_UPDATE_FLAGS = [
    Flag("resources", "str", short="r"),
    Flag("blkio-weight", "int"),
    Flag("cpu-period", "str"), Flag("cpu-quota", "str"), Flag("cpu-share", "str"),
    Flag("cpu-rt-period", "str"), Flag("cpu-rt-runtime", "str"),
    Flag("cpuset-cpus", "str"), Flag("cpuset-mems", "str"),
    Flag("kernel-memory", "str"), Flag("kernel-memory-tcp", "str"),
    Flag("memory", "str"), Flag("memory-reservation", "str"), Flag("memory-swap", "str"),
    Flag("pids-limit", "int"),
    Flag("l3-cache-schema", "str"), Flag("mem-bw-schema", "str"),
]


def ram_in_bytes(text: str) -> int:
    """runc's memory flags, read as docker's units.RAMInBytes (binary multiples)."""
    try:
        return units.ram_in_bytes(text)
    except ValueError as e:
        raise LowrtError(str(e)) from None


def _from_flags(p) -> dict:
    res: dict = {}

    def put(section: str, key: str, value) -> None:
        res.setdefault(section, {})[key] = value

    if p["blkio-weight"]:
        put("blockIO", "weight", p["blkio-weight"])
    for flag, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if p[flag]:
            put("cpu", key, p[flag])
    for flag, key in (("cpu-period", "period"), ("cpu-rt-period", "realtimePeriod"),
                      ("cpu-share", "shares"), ("cpu-quota", "quota"),
                      ("cpu-rt-runtime", "realtimeRuntime")):
        if p[flag]:
            try:
                value = int(p[flag])
            except ValueError:
                raise LowrtError(f"invalid value for {flag}: {p[flag]!r}") from None
            if flag in ("cpu-period", "cpu-rt-period", "cpu-share") and value < 0:
                raise LowrtError(f"invalid value for {flag}: {p[flag]!r}")
            put("cpu", key, value)
    for flag, key in (("memory", "limit"), ("memory-swap", "swap"),
                      ("memory-reservation", "reservation"), ("kernel-memory", "kernel"),
                      ("kernel-memory-tcp", "kernelTCP")):
        if p[flag]:
            put("memory", key, -1 if p[flag] == "-1" else ram_in_bytes(p[flag]))
    if p["pids-limit"]:
        put("pids", "limit", p["pids-limit"])
    return res


def prune_unchanged(res: object) -> object:
    """runc's update reads zero as "leave as it is"; so does lowrt (device rules are never
    updated, as with runc)."""
    if isinstance(res, dict):
        out = {}
        for k, v in res.items():
            if k == "devices":
                continue
            v = prune_unchanged(v)
            if v not in (0, "", None, {}, []) or isinstance(v, bool):
                out[k] = v
        return out
    return res


def cmd_update(g, argv: list[str]) -> int:
    p = parse(argv, _UPDATE_FLAGS, what="update")
    nargs(p, "update", exact=1)
    c = Container.load(g.root, p.args[0])
    if p["l3-cache-schema"] or p["mem-bw-schema"]:
        raise LowrtError("Intel RDT is not supported by lowrt")
    if p["resources"]:
        from lowrt import fastjson
        try:
            if p["resources"] == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(p["resources"], "rb") as f:
                    raw = f.read()
            res = fastjson.loads(raw)
        except OSError as e:
            raise LowrtError(f"open {p['resources']}: {e.strerror.lower()}") from None
        except ValueError as e:
            raise LowrtError(f"parse resources: {e}") from None
        if not isinstance(res, dict):
            raise LowrtError("parse resources: a JSON object is needed")
    else:
        res = _from_flags(p)
    res = prune_unchanged(res)
    if c.status() == "stopped":
        raise LowrtError(f"container {c.id} is not running")
    from lowrt.log import log
    for note in c.cgroup().update(res) or []:
        log.warning(note)
    # Keep the config in step, as runc does, so a later reader sees the limits in force.
    current = c.config.setdefault("linux", {}).setdefault("resources", {})
    for section, values in res.items():
        if isinstance(values, dict) and isinstance(current.get(section), dict):
            current[section].update(values)
        else:
            current[section] = values
    c.save()
    return 0
