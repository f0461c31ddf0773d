"""The `-c`/`--change` Dockerfile instructions of `docker commit` and `docker import`, applied to
an image's run config (the `config` of the OCI image config, in docker's field names).

dockerd allows CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR
and HEALTHCHECK here; anything else is "<instruction> is not a valid change command". As in a
Dockerfile, ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER and STOPSIGNAL expand `$VAR`, `${VAR}`,
`${VAR:-word}` and `${VAR:+word}` from the environment as it stands (the config's Env with the
earlier ENV changes), not inside single quotes, a backslash-dollar being a literal `$`; CMD,
ENTRYPOINT, HEALTHCHECK and ONBUILD keep theirs for the shell.
"""
from __future__ import annotations

import json
import posixpath
import re
import shlex

from .. import timefmt
from ..errors import InvalidParameter

VALID = {"cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal",
         "user", "volume", "workdir"}
EXPANDED = {"env", "label", "expose", "volume", "workdir", "user", "stopsignal"}
_VAR = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")
LITERAL_DOLLAR = "\x00dollar\x00"       # a `\$` while the words are split; `$` after
HEALTH_FLAGS = {"--interval": "Interval", "--timeout": "Timeout",
                "--start-period": "StartPeriod", "--start-interval": "StartInterval"}


def expand(text: str, env: list[str]) -> str:
    """Dockerfile variable expansion of text from env (KEY=VALUE strings)."""
    values = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        value = values.get(name)
        if m.group(2) == "-":
            return value if value else m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value or ""
    out, quoted = [], False
    for piece in re.split(r"(\\\$|')", text):
        if piece == "'":
            quoted = not quoted
            out.append(piece)
        elif piece == "\\$":
            out.append(LITERAL_DOLLAR)
        else:
            out.append(piece if quoted else _VAR.sub(sub, piece))
    return "".join(out)


def _healthcheck(args: str) -> dict:
    """HEALTHCHECK NONE, or [--interval=D] [--timeout=D] [--start-period=D]
    [--start-interval=D] [--retries=N] CMD command (exec or shell form)."""
    words = args.split(None, 1)
    if words and words[0].upper() == "NONE":
        if len(words) > 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    check: dict = {}
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, eq, value = flag.partition("=")
        if not eq:
            raise InvalidParameter(f"HEALTHCHECK flag {flag} needs a value (--name=value)")
        if name == "--retries":
            if not value.isdigit():
                raise InvalidParameter(f"invalid retries value {value!r}")
            check["Retries"] = int(value)
        elif name in HEALTH_FLAGS:
            ns = timefmt.parse_go_duration(value)
            if ns is None:
                raise InvalidParameter(f"time: invalid duration {value!r}")
            if 0 < ns < 1_000_000 or ns < 0:
                raise InvalidParameter(f"{HEALTH_FLAGS[name]} {value!r} cannot be less than "
                                       f"1ms")
            check[HEALTH_FLAGS[name]] = ns
        else:
            raise InvalidParameter(f"Unknown flag: {name[2:]}")
    kind, _, command = rest.partition(" ")
    if kind.upper() != "CMD":
        raise InvalidParameter(f'Unknown type "{kind.upper()}" in HEALTHCHECK (try CMD)')
    command = command.strip()
    if not command:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    form = _json_or_shell(command)
    check["Test"] = ["CMD-SHELL", command] if form[:2] == ["/bin/sh", "-c"] and \
        not command.startswith("[") else ["CMD", *form]
    return check


def _lines(changes: list[str]) -> list[str]:
    """Instructions, one a line: continuation lines joined, blanks and comments dropped."""
    out, pending = [], ""
    for line in "\n".join(changes).split("\n"):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append(pending + stripped)
        pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


def _json_or_shell(args: str) -> list[str]:
    """Exec form (a JSON array of strings) or shell form (run by /bin/sh -c)."""
    if args.startswith("["):
        try:
            value = json.loads(args)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", args]


def _pairs(keyword: str, args: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"`, or the old `k v` form (ENV, LABEL)."""
    try:
        words = shlex.split(args)
    except ValueError as e:
        raise InvalidParameter(f"{keyword} {args}: {e}") from None
    if not words:
        raise InvalidParameter(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = args.partition(" ")
        if not value.strip():
            raise InvalidParameter(f"{keyword} names can not be blank" if not key else
                                   f"{keyword} must have two arguments")
        return [(key, value.strip())]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"{keyword} names can not be blank" if eq else
                                   f"Syntax error - can't find = in {word!r}. Must be of the "
                                   f"form: name=value")
        out.append((key, value))
    return out


def _port(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise InvalidParameter(f"invalid containerPort: {port}")
    lo, hi = int(first), int(last or first)
    if not 0 < lo <= hi <= 65535:
        raise InvalidParameter(f"invalid range specified for container port: {port}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def apply(config: dict, changes: list[str]) -> dict:
    """config with the changes applied (a new dict; config is not modified)."""
    out = json.loads(json.dumps(config or {}))
    lines = _lines(changes)
    parsed = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        if keyword.lower() not in VALID:
            raise InvalidParameter(f"{keyword.lower()} is not a valid change command")
        parsed.append((keyword.lower(), args.strip()))
    cmd_set = False
    for keyword, args in parsed:
        if not args and keyword not in ("cmd", "entrypoint"):
            raise InvalidParameter(f"{keyword.upper()} requires at least one argument")
        if keyword in EXPANDED:
            args = expand(args, out.get("Env") or [])
        if keyword == "healthcheck":
            out["Healthcheck"] = _healthcheck(args)
        elif keyword == "cmd":
            out["Cmd"], cmd_set = _json_or_shell(args), True
        elif keyword == "entrypoint":
            out["Entrypoint"] = _json_or_shell(args) if args else None
            if not cmd_set:           # as in a Dockerfile: a new entrypoint drops the old CMD
                out["Cmd"] = None
        elif keyword == "env":
            env = list(out.get("Env") or [])
            for key, value in _pairs("ENV", args):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            out["Env"] = env
        elif keyword == "label":
            out["Labels"] = {**(out.get("Labels") or {}), **dict(_pairs("LABEL", args))}
        elif keyword == "expose":
            ports = dict(out.get("ExposedPorts") or {})
            for spec in args.split():
                ports.update({p: {} for p in _port(spec)})
            out["ExposedPorts"] = ports
        elif keyword == "volume":
            value = _json_or_shell(args)
            paths = value if value[:2] != ["/bin/sh", "-c"] else args.split()
            if any(not p.strip() for p in paths):
                raise InvalidParameter("VOLUME specified can not be an empty string")
            out["Volumes"] = {**(out.get("Volumes") or {}), **{p: {} for p in paths}}
        elif keyword == "workdir":
            base = out.get("WorkingDir") or "/"
            out["WorkingDir"] = posixpath.normpath(posixpath.join(base, args))
        elif keyword == "user":
            out["User"] = args
        elif keyword == "stopsignal":
            out["StopSignal"] = args
        elif keyword == "onbuild":
            trigger = args.split(None, 1)[0].upper()
            if trigger == "ONBUILD":
                raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
            if trigger in ("FROM", "MAINTAINER"):
                raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
            out["OnBuild"] = [*(out.get("OnBuild") or []), args]
    return _literal_dollars(out)


def _literal_dollars(value):
    """A backslash-dollar, kept out of expansion and word splitting, becomes `$` here."""
    if isinstance(value, str):
        return value.replace(LITERAL_DOLLAR, "$")
    if isinstance(value, list):
        return [_literal_dollars(v) for v in value]
    if isinstance(value, dict):
        return {_literal_dollars(k): _literal_dollars(v) for k, v in value.items()}
    return value
