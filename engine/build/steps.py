"""The Dockerfile's metadata instructions as the classic builder applies them to the image's
run config (ENV, LABEL, MAINTAINER, EXPOSE, USER, WORKDIR's path, VOLUME, STOPSIGNAL, CMD,
ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD), each returning the comment the classic builder
records for the step ("ENV X=1"): its ContainerConfig.Cmd is ["/bin/sh", "-c", "#(nop) ",
comment] and the history's created_by that joined by spaces. Pure: no files, no containers."""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

from ..errors import InvalidParameter

DEFAULT_SHELL = ["/bin/sh", "-c"]
DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                  "h": 3600 * 10**9}


@dataclass
class StageState:
    """One stage being built: its run config and what the builder tracks beside it."""
    config: dict
    image_id: str = ""                  # the current image ("" before FROM or for scratch)
    cmd_set: bool = False               # CMD given in this stage (ENTRYPOINT keeps it then)
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in the stage

    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


def go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string, as the classic builder writes CMD/ENTRYPOINT comments."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def go_list(items: list[str]) -> str:
    """Go's %v of a []string (SHELL, VOLUME comments)."""
    return "[" + " ".join(items) + "]"


def env_list_set(env: list[str], key: str, value: str) -> list[str]:
    """env with key set: in its place when there, else appended (as the builder keeps order)."""
    if any(e.split("=", 1)[0] == key for e in env):
        return [f"{key}={value}" if e.split("=", 1)[0] == key else e for e in env]
    return [*env, f"{key}={value}"]


def env_get(env: list[str], key: str) -> str | None:
    for e in env:
        k, _, v = e.partition("=")
        if k == key:
            return v
    return None


def apply_env(state: StageState, pairs: list[tuple[str, str]]) -> str:
    env = list(state.config.get("Env") or [])
    for key, value in pairs:
        env = env_list_set(env, key, value)
    state.config["Env"] = env
    return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


def apply_label(state: StageState, pairs: list[tuple[str, str]]) -> str:
    labels = dict(state.config.get("Labels") or {})
    labels.update(pairs)
    state.config["Labels"] = labels
    return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)


def parse_port(spec: str) -> list[str]:
    """EXPOSE's word: port, port/proto or a range -> the ExposedPorts keys."""
    m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", spec.lower())
    if not m:
        raise InvalidParameter(f"invalid containerPort: {spec}")
    lo, hi, proto = int(m.group(1)), int(m.group(2) or m.group(1)), m.group(3) or "tcp"
    if hi < lo or hi > 65535:
        raise InvalidParameter(f"invalid range specified for container port: {spec}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def apply_expose(state: StageState, words: list[str]) -> str:
    ports = dict(state.config.get("ExposedPorts") or {})
    for w in words:
        for p in parse_port(w):
            ports[p] = {}
    state.config["ExposedPorts"] = ports
    return "EXPOSE " + " ".join(sorted(words))     # the words as given, sorted, as dockerd


def apply_user(state: StageState, user: str) -> str:
    state.config["User"] = user
    return "USER " + user


def workdir_path(state: StageState, path: str) -> str:
    """WORKDIR's new path: a relative one is under the current one."""
    current = state.config.get("WorkingDir") or "/"
    return posixpath.normpath(posixpath.join(current, path)) if path else current


def apply_volume(state: StageState, paths: list[str]) -> str:
    volumes = dict(state.config.get("Volumes") or {})
    for p in paths:
        if not p.strip():
            raise InvalidParameter("VOLUME specified can not be an empty string")
        volumes[p] = {}
    state.config["Volumes"] = volumes
    return "VOLUME " + go_list(paths)


def apply_stopsignal(state: StageState, sig: str) -> str:
    if not re.fullmatch(r"(SIG)?[A-Z0-9+-]+|\d+", sig.upper()):
        raise InvalidParameter(f"Invalid signal: {sig}")
    state.config["StopSignal"] = sig
    return "STOPSIGNAL " + sig


def command_of(state: StageState, args: list[str], is_json: bool) -> list[str]:
    """A CMD/ENTRYPOINT/RUN: the exec form as given, the shell form through SHELL."""
    return list(args) if is_json else state.shell() + [args[0] if args else ""]


def apply_cmd(state: StageState, args: list[str], is_json: bool) -> str:
    cmd = command_of(state, args, is_json)
    state.config["Cmd"] = cmd
    state.cmd_set = True
    return "CMD " + go_quote_list(cmd)


def apply_entrypoint(state: StageState, args: list[str], is_json: bool) -> str:
    if not is_json and not (args and args[0].strip()):
        entry = None        # an empty shell-form ENTRYPOINT removes it
    else:
        entry = command_of(state, args, is_json)
    state.config["Entrypoint"] = entry
    if not state.cmd_set:
        state.config["Cmd"] = None      # the base's CMD does not go with a new ENTRYPOINT
    return "ENTRYPOINT " + go_quote_list(entry or [])


def apply_shell(state: StageState, args: list[str], is_json: bool) -> str:
    if not is_json:
        raise InvalidParameter("SHELL requires the arguments to be in JSON form")
    if not args:
        raise InvalidParameter("SHELL requires at least one argument")
    state.config["Shell"] = list(args)
    return "SHELL " + go_list(args)


def parse_duration(flag: str, text: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms") in ns; 0 is allowed, under 1ms is refused."""
    if text in ("", "0"):
        return 0
    total, pos = 0, 0
    for m in re.finditer(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * DURATION_UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise InvalidParameter(f'time: invalid duration "{text}"')
    if 0 < total < 10**6:
        raise InvalidParameter(f"Interval \"{flag}\" cannot be less than 1ms")
    return total


def apply_healthcheck(state: StageState, args: list[str], is_json: bool,
                      flags: dict[str, str]) -> str:
    kind = (args[0].upper() if args else "")
    if kind == "NONE":
        if len(args) > 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        hc: dict = {"Test": ["NONE"]}
    elif kind == "CMD":
        rest = args[1:]
        if not rest:
            raise InvalidParameter("Missing command after HEALTHCHECK CMD")
        test = ["CMD", *rest] if is_json else ["CMD-SHELL", rest[0]]
        hc = {"Test": test}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                          ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            if flags.get(flag):
                hc[key] = parse_duration(flag, flags[flag])
        if flags.get("retries"):
            try:
                retries = int(flags["retries"])
            except ValueError:
                raise InvalidParameter(f'strconv.ParseInt: parsing "{flags["retries"]}": '
                                       f'invalid syntax') from None
            if retries < 0:
                raise InvalidParameter("--retries cannot be negative")
            hc["Retries"] = retries
    else:
        raise InvalidParameter(f"Unknown type \"{kind}\" in HEALTHCHECK "
                               f"(try CMD)")
    state.config["Healthcheck"] = hc
    return healthcheck_comment(hc)


def apply_onbuild(state: StageState, trigger: str) -> str:
    word = trigger.split(None, 1)[0].upper() if trigger.strip() else ""
    if word == "ONBUILD":
        raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if word in ("MAINTAINER", "FROM"):
        raise InvalidParameter(f"{word} isn't allowed as an ONBUILD trigger")
    state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), trigger]
    return "ONBUILD " + trigger


def nop_cmd(state: StageState, comment: str) -> list[str]:
    """ContainerConfig.Cmd of a metadata step, as the classic builder encodes it: the
    stage's shell, "#(nop) " and the comment (history shows "#(nop)  ENV X=1")."""
    return [*state.shell(), "#(nop) ", comment]


def nop_cmd_string(state: StageState, comment: str) -> list[str]:
    """The same for WORKDIR, COPY and ADD, whose comment the classic builder joins to
    "#(nop) " in one word (history shows "#(nop) COPY file:... in /dst ")."""
    return [*state.shell(), "#(nop) " + comment]


def go_duration(ns: int) -> str:
    """Go's time.Duration String() for the whole units a Dockerfile gives."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                value = ns / size
                return (f"{value:g}" if value != int(value) else str(int(value))) + unit
    out = ""
    h, rest = divmod(ns, 3600 * 10**9)
    m, rest = divmod(rest, 60 * 10**9)
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    seconds = rest / 10**9
    return out + (f"{seconds:g}" if seconds != int(seconds) else str(int(seconds))) + "s"


def go_rune(n: int) -> str:
    """Go's %q of an int: a quoted character literal."""
    if 32 <= n < 127:
        ch = chr(n)
        return "'" + ("\\" + ch if ch in "'\\" else ch) + "'"
    if n < 256:
        return f"'\\x{n:02x}'"
    return f"'\\u{n:04x}'"


def healthcheck_comment(hc: dict) -> str:
    """HEALTHCHECK's comment: Go's %q of the HealthConfig struct, as dockerd 20.10 has it."""
    durations = " ".join(f'"{go_duration(hc.get(k) or 0)}"'
                         for k in ("Interval", "Timeout", "StartPeriod"))
    return (f"HEALTHCHECK &{{{go_quote_list(hc.get('Test') or [])} {durations} "
            f"{go_rune(hc.get('Retries') or 0)}}}")
