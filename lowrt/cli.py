"""lowrt's command line: runc's global flags, then one verb (lowrt/commands/*).

Kept lean on purpose: a `lowrt run` must cost less than runc's, so nothing is imported here that
a verb does not need (see bench/lowrt_run.py).
"""
from __future__ import annotations

import os
import sys

from lowrt.args import Flag, ShowHelp, parse
from lowrt.errors import LowrtError
from lowrt.log import log

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2-dev"
DEFAULT_ROOT = "/run/lowrt"

GLOBAL_FLAGS = [
    Flag("root", "str", default=DEFAULT_ROOT),
    Flag("log", "str"),
    Flag("log-format", "str", default="text"),
    Flag("debug"),
    Flag("systemd-cgroup"),
    Flag("rootless", "str", default="auto"),
    Flag("criu", "str", default="criu"),
    Flag("help", short="h"),
    Flag("version", short="v"),
]

# verb -> (module under lowrt.commands, one-line usage)
COMMANDS = {
    "create": ("lifecycle", "create a container"),
    "start": ("lifecycle", "executes the user defined process in a created container"),
    "run": ("lifecycle", "create and run a container"),
    "state": ("lifecycle", "output the state of a container"),
    "kill": ("lifecycle", "send a signal (default: SIGTERM) to the container's init process"),
    "delete": ("lifecycle", "delete any resources held by the container"),
    "exec": ("exec", "execute new process inside the container"),
    "list": ("inspect", "lists containers started by lowrt with the given root"),
    "ps": ("inspect", "ps displays the processes running inside a container"),
    "events": ("inspect", "display container events such as OOM notifications and usage statistics"),
    "spec": ("inspect", "create a new specification file"),
    "features": ("inspect", "show the enabled features"),
    "pause": ("resources", "pause suspends all processes inside the container"),
    "resume": ("resources", "resumes all processes that have been previously paused"),
    "update": ("resources", "update container resource constraints"),
}
# runc prefixes these verbs' errors; exec also exits 255 on its own failure.
ERROR_PREFIX = {"create": "lowrt create failed: ", "run": "lowrt run failed: ",
                "exec": "exec failed: "}


class Globals:
    def __init__(self, values: dict) -> None:
        self.root = os.path.abspath(values["root"])
        self.log = values["log"]
        self.log_format = values["log-format"]
        self.debug = values["debug"]
        self.systemd_cgroup = values["systemd-cgroup"]


def usage() -> str:
    lines = ["NAME:", "   lowrt - a runc-compatible OCI runtime, in Python", "",
             "USAGE:", "   lowrt [global options] command [command options] [arguments...]", "",
             "COMMANDS:"]
    lines += [f"   {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "GLOBAL OPTIONS:",
              f"   --root value        root directory for container state (default: {DEFAULT_ROOT})",
              "   --log value         log file (default: stderr)",
              "   --log-format value  'text' (default) or 'json'",
              "   --debug             enable debug logging",
              "   --systemd-cgroup    not supported by lowrt: an error for commands that make cgroups",
              "   --help, -h          show help", "   --version, -v       print the version"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = ""
    try:
        g = parse(argv, GLOBAL_FLAGS, interspersed=False)
        if g["log-format"] not in ("text", "json"):
            raise LowrtError(f"invalid log-format: {g['log-format']}")
        log.path, log.format = g["log"], g["log-format"]
        log.threshold = 10 if g["debug"] else 20
        if g["version"]:
            sys.stdout.write(f"lowrt version {VERSION}\nspec: {SPEC_VERSION}\n"
                             f"python: {sys.version.split()[0]}\n")
            return 0
        if g["help"] or not g.args or g.args[0] == "help":
            sys.stdout.write(usage())
            return 0
        command, rest = g.args[0], g.args[1:]
        if command not in COMMANDS:
            raise LowrtError(f"lowrt: no such command: {command}")
        if command in ("create", "run", "exec"):
            from lowrt import warmup
            warmup.start()
        module = __import__(f"lowrt.commands.{COMMANDS[command][0]}", fromlist=["_"])
        verb = getattr(module, "cmd_" + command)
        return verb(Globals(g.values), rest) or 0
    except ShowHelp as h:
        sys.stdout.write(f"lowrt {command} - {COMMANDS[command][1]}\n\nOPTIONS:\n{h.text}")
        return 0
    except LowrtError as e:
        log.error(ERROR_PREFIX.get(command, "") + str(e))
        return 255 if command == "exec" and e.code == 1 else e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - OSError, lowrt.cgroups.CgroupError: report, exit 1
        if isinstance(e, OSError) and e.filename and e.strerror:
            msg = f"{e.strerror.lower()}: {e.filename}"
        else:
            msg = str(e) or type(e).__name__
        log.error(ERROR_PREFIX.get(command, "") + msg)
        if log.threshold <= 10:
            import traceback
            log.debug(traceback.format_exc())
        return 255 if command == "exec" else 1
