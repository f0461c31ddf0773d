"""list, ps, events, spec, features."""
from __future__ import annotations

import os
import sys
import time

from lowrt.args import Flag, nargs, parse
from lowrt.errors import LowrtError
from lowrt.state import STATE_FILE, Container


def cmd_spec(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("bundle", "str", short="b"), Flag("rootless")], what="spec")
    nargs(p, "spec", exact=0)
    import json

    from lowrt import spec
    s = spec.example()
    if p["rootless"]:
        spec.to_rootless(s)
    path = os.path.join(p["bundle"] or ".", "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise LowrtError(f"File {path} exists. Remove it first") from None
    except OSError as e:
        raise LowrtError(f"create {path}: {e.strerror.lower()}") from None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(s, indent="\t"))
    return 0


def _containers(root: str) -> list[dict]:
    import pwd
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        os.makedirs(root, 0o711, exist_ok=True)
        names = []
    for name in names:
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, STATE_FILE)):
            continue
        try:
            c = Container.load(root, name)
            state = c.oci_state()
        except LowrtError as e:
            sys.stderr.write(f"load container {name}: {e}\n")
            continue
        uid = os.stat(d).st_uid
        try:
            state["owner"] = pwd.getpwuid(uid).pw_name
        except KeyError:
            state["owner"] = f"#{uid}"
        out.append(state)
    return out


def cmd_list(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("format", "str", short="f", default="table"), Flag("quiet", short="q")],
              what="list")
    nargs(p, "list", exact=0)
    states = _containers(g.root)
    if p["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return 0
    if p["format"] == "json":
        from lowrt.fastjson import dumps
        sys.stdout.write((dumps(states, compact=True) if states else "null") + "\n")
        return 0
    if p["format"] != "table":
        raise LowrtError("invalid format option")
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]]
             for s in states]
    sys.stdout.write(_table(rows))
    return 0


def _table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc configures it: cells padded to at least 12, 3 spaces apart."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] + "\n"
                   for r in rows)


def cmd_ps(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("format", "str", short="f", default="table")], interspersed=False,
              what="ps")
    nargs(p, "ps", minimum=1)
    cg = Container.load(g.root, p.args[0]).cgroup()
    pids = cg.pids() if cg.exists() else []
    if p["format"] == "json":
        from lowrt.fastjson import dumps
        sys.stdout.write(dumps(pids, compact=True) + "\n")
        return 0
    if p["format"] != "table":
        raise LowrtError("invalid format option")
    import subprocess
    ps_args = p.args[1:] or ["-ef"]
    proc = subprocess.run(["ps", *ps_args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LowrtError(f"ps {' '.join(ps_args)}: exit status {proc.returncode}: "
                         f"{proc.stdout}{proc.stderr}")
    lines = proc.stdout.splitlines()
    titles = lines[0].split()
    if "PID" not in titles:
        raise LowrtError("couldn't find PID field in ps output")
    col = titles.index("PID")
    wanted = set(pids)
    out = [lines[0]] + [line for line in lines[1:]
                        if line.split() and line.split()[col].isdigit()
                        and int(line.split()[col]) in wanted]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for what `events --interval` gets: 5s, 100ms, 1m30s, 1.5s."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, num, i = 0.0, "", 0
    if not text:
        raise LowrtError("invalid duration \"\"")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not num:
            raise LowrtError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        if num == "0":
            return 0.0
        raise LowrtError(f"invalid duration {text!r}: missing unit")
    return total


def cmd_events(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("interval", "str", default="5s"), Flag("stats")], what="events")
    nargs(p, "events", exact=1)
    interval = parse_duration(p["interval"])
    if interval <= 0:
        raise LowrtError("duration interval must be greater than 0")
    c = Container.load(g.root, p.args[0])
    if c.status() == "stopped":
        raise LowrtError(f"container with id {c.id} is not running")
    from lowrt.fastjson import dumps
    cg = c.cgroup()

    def emit(event: dict) -> None:
        sys.stdout.write(dumps(event, compact=True) + "\n")
        sys.stdout.flush()

    if p["stats"]:
        emit({"type": "stats", "id": c.id, "data": cg.events_stats()})
        return 0
    import gc
    gc.enable()  # off while starting (lowrt/bin/lowrt); this loop runs until the container ends
    import select
    oom = cg.oom_fd()
    kills = cg.oom_kills()
    poller = select.poll()
    poller.register(oom, select.POLLIN)
    next_stats = time.monotonic() + interval
    try:
        while c.running():
            timeout = max(0.0, next_stats - time.monotonic())
            if poller.poll(min(timeout, 1.0) * 1000):
                _drain(oom)
            # The fd wakes on any change to the cgroup's memory events (v2) or on an OOM (v1);
            # the kernel's count of kills says whether there was one, and is read at least
            # once a second in case a wake-up was missed.
            now = cg.oom_kills()
            for _ in range(now - kills):
                emit({"type": "oom", "id": c.id})
            kills = now
            if time.monotonic() >= next_stats:
                next_stats += interval
                try:
                    emit({"type": "stats", "id": c.id, "data": cg.events_stats()})
                except Exception as e:  # noqa: BLE001 - the cgroup went away: the loop ends
                    from lowrt.log import log
                    log.error(str(e))
    finally:
        os.close(oom)
    return 0


def _drain(fd: int) -> None:
    """Read everything pending on a non-blocking eventfd or inotify fd."""
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:  # EAGAIN: drained
            return


def cmd_features(g, argv: list[str]) -> int:
    p = parse(argv, [], what="features")
    nargs(p, "features", exact=0)
    import json

    from lowrt import caps, cli
    from lowrt.config import HOOK_KINDS, NS_LINKS
    from lowrt.linux import mount
    options = sorted(set(mount.FLAGS) | set(mount.PROPAGATION) | set(mount.RECURSIVE_ATTRS))
    namespaces = sorted(k for k, link in NS_LINKS.items() if os.path.exists(f"/proc/self/ns/{link}"))
    from lowrt.linux import capability
    bounding = capability.bounding_set()
    missing = [caps.name_of(i) for i in range(capability.last_cap() + 1) if not bounding & (1 << i)]
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": cli.SPEC_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": list(caps.NAMES[:capability.last_cap() + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": _seccomp_features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "org.lowrt.version": cli.VERSION,
            # lowrt's capability policy (see lowrt/caps.py): what lowrt's own bounding set
            # lacks is dropped from every set of a container, with a warning, not an error.
            "org.lowrt.capabilities.policy": "drop-unavailable-with-warning",
            "org.lowrt.capabilities.unavailable": ",".join(missing),
        },
    }
    sys.stdout.write(json.dumps(features, indent=4) + "\n")
    return 0


def _seccomp_features() -> dict:
    from lowrt.seccomp import compiler
    actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
               "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
    return {"enabled": True, "actions": actions, "operators": sorted(compiler.OPS),
            "archs": sorted(compiler.ARCHES), "knownFlags": sorted(compiler.FLAGS),
            "supportedFlags": sorted(compiler.FLAGS)}
