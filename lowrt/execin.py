"""`exec`: a new process in a running container's namespaces and cgroup.

The same two forks as the init's (lowrt/spawn.py), joining every namespace the container's
config lists through /proc/<init>/ns/, the user namespace first. The process gets the
container's seccomp profile and its own capabilities, user, rlimits and terminal.
"""
from __future__ import annotations

import os

from lowrt import caps as capsmod, config, process, spawn
from lowrt.errors import LowrtError
from lowrt.linux import fds, ns
from lowrt.log import log
from lowrt.state import Container
from lowrt.sync import Channel


class ExecOptions:
    def __init__(self) -> None:
        self.detach = False
        self.pid_file = ""
        self.console_socket = ""
        self.preserve_fds = 0
        self.ignore_paused = False


class _Plan:
    def __init__(self, proc: dict, caps: dict[str, int], seccomp: tuple[bytes, int] | None,
                 preserve: int,
                 console_fd: int, extra_env: list[str]) -> None:
        self.proc = proc
        self.caps = caps
        self.seccomp = seccomp
        self.preserve = preserve
        self.console_fd = console_fd
        self.extra_env = extra_env


def prepare(c: Container, proc: dict, opts: ExecOptions) -> None:
    """The checks runc makes before it forks anything."""
    status = c.status()
    if status == "stopped":
        raise LowrtError("cannot exec in a stopped container")
    if status == "paused" and not opts.ignore_paused:
        raise LowrtError("cannot exec in a paused container (use --ignore-paused to override)")
    config.validate_process(proc)
    terminal = bool(proc.get("terminal"))
    if opts.detach and terminal and not opts.console_socket:
        raise LowrtError("cannot allocate tty if lowrt will detach without setting console socket")
    if (not opts.detach or not terminal) and opts.console_socket:
        raise LowrtError("cannot use console socket if lowrt will not detach or allocate tty")
    config.check_rlimits(proc.get("rlimits") or [])


def run(c: Container, proc: dict, opts: ExecOptions) -> int:
    prepare(c, proc, opts)
    from lowrt.lifecycle import compile_seccomp, inherited_fds, write_pid_file
    from lowrt.linux import prctl

    preserve, extra_env = inherited_fds(opts.preserve_fds)
    cap_sets, dropped = capsmod.plan(proc.get("capabilities"), capsmod.own_bounding_set())
    if dropped:
        log.warning(f"capabilities not in lowrt's bounding set, dropped from every set: "
                    f"{', '.join(capsmod.names(dropped))}")
    seccomp = compile_seccomp(c.config)
    launch = spawn.Launch()
    launch.cgroup = c.cgroup()
    order = list(ns.KINDS)
    kinds = sorted((e["type"] for e in c.config.get("linux", {}).get("namespaces") or []),
                   key=order.index)
    for kind in kinds:
        path = f"/proc/{c.pid}/ns/{ns.KINDS[kind][1]}"
        try:
            launch.join.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC), path))
        except OSError as e:
            raise LowrtError(f"open {path}: {e.strerror.lower()}") from None
    root = f"/proc/{c.pid}/root"
    try:
        launch.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise LowrtError(f"open {root}: {e.strerror.lower()}") from None
    console_fd = parent_console = -1
    if proc.get("terminal"):
        from lowrt import console
        if opts.console_socket:
            console_fd = console.connect(opts.console_socket)
        else:
            parent_console, console_fd = console.socketpair()
    plan = _Plan(proc, cap_sets, seccomp, preserve, console_fd, extra_env)
    process.preload(proc, c.config)
    if not c.running():  # it may have exited while we prepared
        raise LowrtError("cannot exec in a stopped container")

    forwarder = None
    if not opts.detach:
        from lowrt.signals import Forwarder
        forwarder = Forwarder()
        forwarder.install()
        prctl.set_child_subreaper()
    chan, child = spawn.start(launch, _stage(plan))
    if console_fd >= 0:
        os.close(console_fd)
    pid = spawn.wait_child(chan, child, launch)
    try:
        while True:
            kind, payload = chan.recv()
            if kind == "warning":
                log.warning(payload)
                continue
            if kind == "ready":
                break
            raise LowrtError(payload if kind == "error" else "the process exited before it started")
        from lowrt import warmup
        warmup.stop()   # the process has joined the container's cgroup
        master = -1
        if parent_console >= 0:
            from lowrt import console
            master = console.recv_master(parent_console)
            os.close(parent_console)
        from lowrt.lifecycle import Created, wait_exec
        wait_exec(Created(c, chan))
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
    except BaseException:
        from lowrt.lifecycle import kill_and_wait
        kill_and_wait(pid)
        if not opts.detach:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        raise
    if opts.detach:
        return 0
    import gc
    gc.enable()  # off while starting (lowrt/bin/lowrt); this process may now live for days
    relay = None
    if master >= 0:
        from lowrt.relay import Relay
        relay = Relay(master, pid)
        relay.start()
    try:
        return forwarder.wait(pid)
    finally:
        if relay is not None:
            relay.stop()


def _stage(plan: _Plan):
    def run(launch: spawn.Launch, chan: Channel) -> None:
        proc = plan.proc
        os.setsid()
        if proc.get("terminal"):
            from lowrt import console
            console.setup_in_container(plan.console_fd, proc.get("consoleSize"))
        process.apply_rlimits(proc.get("rlimits") or [])
        env = process.environment(proc)
        for item in plan.extra_env:
            key, _, value = item.partition("=")
            env[key] = value
        user = proc.get("user") or {}
        if not env.get("HOME"):  # unset or empty, as runc
            env["HOME"] = process.home_of(user.get("uid", 0))
        cwd = proc["cwd"]
        in_cwd = process.chdir_early(cwd, "process.json")
        path = process.lookup(proc["args"][0], env)
        process.fix_stdio_owner(user)
        process.apply_lsm(proc, None, lambda msg: chan.send("warning", msg))
        process.apply_privileges(proc, plan.caps, plan.seccomp)
        os.umask(user["umask"] if user.get("umask") is not None else 0o022)
        fds.cloexec_from(3 + plan.preserve)
        for fd in range(3, 3 + plan.preserve):
            fds.set_cloexec(fd, False)
        chan.send("ready")
        process.exec_process(path, proc["args"], env, None if in_cwd else cwd, "process.json")
    return run
