"""create, start, run, state, kill, delete."""
from __future__ import annotations

import os
import sys

from lowrt import lifecycle
from lowrt.args import Flag, nargs, parse
from lowrt.errors import LowrtError
from lowrt.log import log
from lowrt.state import Container

_CREATE_FLAGS = [
    Flag("bundle", "str", short="b"),
    Flag("console-socket", "str"),
    Flag("pid-file", "str"),
    Flag("no-pivot"),
    Flag("no-new-keyring"),
    Flag("preserve-fds", "int"),
]
_RUN_FLAGS = _CREATE_FLAGS + [Flag("detach", short="d"), Flag("keep"), Flag("no-subreaper")]


def _check_systemd(g) -> None:
    if g.systemd_cgroup:
        raise LowrtError("--systemd-cgroup is not supported: lowrt manages cgroups through "
                         "cgroupfs only; drop the flag (e.g. docker's native.cgroupdriver=cgroupfs)")


def _options(g, p, command: str) -> lifecycle.CreateOptions:
    nargs(p, command, exact=1)
    opts = lifecycle.CreateOptions(g.root, p.args[0], p["bundle"])
    opts.pid_file = os.path.abspath(p["pid-file"]) if p["pid-file"] else ""
    opts.console_socket = p["console-socket"]
    opts.no_pivot = p["no-pivot"]
    opts.no_new_keyring = p["no-new-keyring"]
    opts.preserve_fds = p["preserve-fds"]
    return opts


def cmd_create(g, argv: list[str]) -> int:
    p = parse(argv, _CREATE_FLAGS, what="create")
    _check_systemd(g)
    lifecycle.create(_options(g, p, "create"))
    return 0


def cmd_run(g, argv: list[str]) -> int:
    p = parse(argv, _RUN_FLAGS, what="run")
    _check_systemd(g)
    opts = _options(g, p, "run")
    opts.exec_fifo = False
    opts.detach = p["detach"]
    forwarder = None
    if not opts.detach:
        from lowrt.signals import Forwarder
        forwarder = Forwarder()
        forwarder.install()
    created = lifecycle.create(opts)
    c = created.container
    try:
        lifecycle.wait_exec(created)
        lifecycle.run_poststart(c)
    except BaseException:
        lifecycle.delete(g.root, c.id, force=True)
        raise
    log.debug(f"run {c.id}: started")
    if opts.detach:
        return 0
    import gc
    gc.enable()  # off while starting (lowrt/bin/lowrt); this process may now live for days
    relay = None
    if created.console_master >= 0:
        from lowrt.relay import Relay
        relay = Relay(created.console_master, c.pid)
        relay.start()
    try:
        code = forwarder.wait(c.pid)
    finally:
        if relay is not None:
            relay.stop()
    log.debug(f"run {c.id}: exited {code}")
    if not p["keep"]:
        lifecycle.destroy(c)  # its init is reaped; destroy kills whatever else is left
        log.debug(f"run {c.id}: deleted")
    return code


def cmd_start(g, argv: list[str]) -> int:
    p = parse(argv, [], what="start")
    nargs(p, "start", exact=1)
    lifecycle.start(Container.load(g.root, p.args[0]))
    return 0


def cmd_state(g, argv: list[str]) -> int:
    p = parse(argv, [], what="state")
    nargs(p, "state", exact=1)
    from lowrt.fastjson import dumps_indent
    sys.stdout.write(dumps_indent(Container.load(g.root, p.args[0]).oci_state()))
    return 0


def cmd_kill(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("all", short="a")], what="kill")
    nargs(p, "kill", minimum=1, maximum=2)
    from lowrt import signals
    sig = signals.parse(p.args[1] if len(p.args) > 1 else "SIGTERM")
    lifecycle.kill(Container.load(g.root, p.args[0]), sig, p["all"])
    return 0


def cmd_delete(g, argv: list[str]) -> int:
    p = parse(argv, [Flag("force", short="f")], what="delete")
    nargs(p, "delete", exact=1)
    lifecycle.delete(g.root, p.args[0], p["force"])
    return 0
