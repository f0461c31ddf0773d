"""exec."""
from __future__ import annotations

import os

from lowrt.args import Flag, nargs, parse
from lowrt.errors import LowrtError
from lowrt.state import Container

_FLAGS = [
    Flag("console-socket", "str"),
    Flag("cwd", "str"),
    Flag("env", "list", short="e"),
    Flag("tty", short="t"),
    Flag("user", "str", short="u"),
    Flag("additional-gids", "list", short="g"),
    Flag("process", "str", short="p"),
    Flag("detach", short="d"),
    Flag("pid-file", "str"),
    Flag("process-label", "str"),
    Flag("apparmor", "str"),
    Flag("no-new-privs"),
    Flag("cap", "list", short="c"),
    Flag("preserve-fds", "int"),
    Flag("cgroup", "list"),
    Flag("ignore-paused"),
]


def cmd_exec(g, argv: list[str]) -> int:
    p = parse(argv, _FLAGS, interspersed=False, what="exec")
    nargs(p, "exec", minimum=1)
    from lowrt import execin
    c = Container.load(g.root, p.args[0])
    proc = _process(c, p)
    opts = execin.ExecOptions()
    opts.detach = p["detach"]
    opts.pid_file = os.path.abspath(p["pid-file"]) if p["pid-file"] else ""
    opts.console_socket = p["console-socket"]
    opts.preserve_fds = p["preserve-fds"]
    opts.ignore_paused = p["ignore-paused"]
    if p["cgroup"]:
        raise LowrtError("--cgroup (exec into a sub-cgroup) is not supported by lowrt")
    return execin.run(c, proc, opts)


def _process(c: Container, p) -> dict:
    """The process to run: --process FILE as is, or the config's process with the arguments
    and flags applied (runc's rules)."""
    if p["process"]:
        from lowrt import fastjson
        try:
            with open(p["process"], "rb") as f:
                proc = fastjson.loads(f.read())
        except OSError as e:
            raise LowrtError(f"open {p['process']}: {e.strerror.lower()}") from None
        except ValueError as e:
            raise LowrtError(f"parse {p['process']}: {e}") from None
        if not isinstance(proc, dict):
            raise LowrtError(f"parse {p['process']}: the process must be a JSON object")
        return proc
    if len(p.args) < 2:
        raise LowrtError("process args cannot be empty")
    import copy
    proc = copy.deepcopy(c.config.get("process") or {})
    proc["args"] = p.args[1:]
    if p["cwd"]:
        proc["cwd"] = p["cwd"]
    if p["apparmor"]:
        proc["apparmorProfile"] = p["apparmor"]
    if p["process-label"]:
        proc["selinuxLabel"] = p["process-label"]
    if p["cap"]:
        capabilities = proc.setdefault("capabilities", {})
        for s in ("bounding", "effective", "permitted", "ambient"):
            capabilities[s] = list(capabilities.get(s) or []) + p["cap"]
    proc["env"] = list(proc.get("env") or []) + p["env"]
    proc["terminal"] = p["tty"]
    if "no-new-privs" in p.given:
        proc["noNewPrivileges"] = p["no-new-privs"]
    user = proc.setdefault("user", {})
    if p["user"]:
        uid, _, gid = p["user"].partition(":")
        try:
            user["uid"] = int(uid)
            if gid:
                user["gid"] = int(gid)
        except ValueError:
            raise LowrtError(f"parsing {p['user']!r} as uid[:gid] failed: not a number") from None
    for gid in p["additional-gids"]:
        if not gid.isdigit():
            raise LowrtError(f"additional-gids must be a positive number {gid}")
        user.setdefault("additionalGids", []).append(int(gid))
    return proc
