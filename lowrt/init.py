"""The container's first process, from its namespaces to exec of the config's program.

It sets up the rootfs, reports "ready" to lowrt, and for `create` blocks on the exec FIFO
until `start` opens it; then startContainer hooks run and the program replaces it. lowrt makes
the cgroup meanwhile and says where it is on the host ("cgroup", for a "cgroup" mount: the
init waits for that before it mounts a cgroup filesystem); it then saves the state, moves the
init in and says so ("joined"): the init waits for that before it runs a hook or reports ready.
"""
from __future__ import annotations

import os

from lowrt import hooks, process
from lowrt.linux import fds, keyring, uts
from lowrt.rootfs import Rootfs, proc_reaches, write_sysctls
from lowrt.spawn import Launch
from lowrt.sync import Channel


def main(plan, launch: Launch, chan: Channel) -> None:
    """The init, in the container's new namespaces; plan is lowrt.lifecycle.InitPlan."""
    spec = plan.spec
    proc = spec["process"]
    linux = spec.get("linux") or {}
    keep = {0, 1, 2, *chan.fds(), *range(3, 3 + plan.preserve)}
    fds.close_all_but(keep | {fd for fd in (plan.fifo_fd, plan.console_fd) if fd >= 0})
    os.setsid()
    if not plan.no_new_keyring:
        keyring.join_session_keyring(f"_ses.{plan.cid}")
    # The exec FIFO is reopened for writing through /proc/self/fd after pivot_root: the
    # container's /proc, as runc, where it has one. A handle on the host's /proc is taken for a
    # container without one and dropped at once otherwise: held, it is a way out to the host
    # (/proc/1/fd/N/1/root from a process with CAP_SYS_PTRACE over the init, or a cwd of
    # /proc/self/fd/N: CVE-2024-21626).
    host_proc = -1
    if plan.fifo_fd >= 0:
        host_proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    sources: list = []

    def cgroup_sources() -> list[dict]:
        if not sources:
            from lowrt import fastjson
            sources.append(fastjson.loads(chan.expect("cgroup")))
        return sources[0]

    if process.new_netns(spec):
        from lowrt.linux import netdev  # preloaded
        netdev.loopback_up()
    rfs = Rootfs(spec, userns=plan.userns, cgroupns=plan.cgroupns, cgroups=cgroup_sources)
    rfs.prepare()
    cgroup_sources()
    chan.expect("joined")
    host_pid = 0
    if hooks.has(spec, "prestart", "createRuntime", "createContainer", "startContainer"):
        chan.send("hooks")
        host_pid = int(chan.expect("ok"))
        if hooks.has(spec, "createContainer"):
            state = hooks.hook_state(plan.cid, host_pid, "created", plan.bundle, spec)
            hooks.run_cwd("createContainer", spec, state, rfs.root)
    rfs.pivot(plan.no_pivot)
    if host_proc >= 0 and proc_reaches(plan.fifo_fd):
        os.close(host_proc)
        host_proc = -1
    cwd = proc["cwd"]
    os.makedirs(cwd, 0o755, exist_ok=True)
    if proc.get("terminal"):
        from lowrt import console  # preloaded
        slave = console.setup_in_container(plan.console_fd, proc.get("consoleSize"))
        rfs.mount_console(slave)
    rfs.finalize()
    if spec.get("hostname"):
        uts.sethostname(spec["hostname"])
    if spec.get("domainname"):
        uts.setdomainname(spec["domainname"])
    if linux.get("sysctl"):
        write_sysctls(linux["sysctl"])
    rfs.restrict()

    process.apply_rlimits(proc.get("rlimits") or [])
    if proc.get("oomScoreAdj") is not None:
        process.set_oom_score_adj(proc["oomScoreAdj"], lambda msg: chan.send("warning", msg))
    env = process.environment(proc)
    for item in plan.extra_env:
        key, _, value = item.partition("=")
        env[key] = value
    user = proc.get("user") or {}
    if not env.get("HOME"):  # unset or empty, as runc
        env["HOME"] = process.home_of(user.get("uid", 0))
    in_cwd = process.chdir_early(cwd, "config.json")
    path = process.lookup(proc["args"][0], env)
    process.fix_stdio_owner(user)
    process.apply_lsm(proc, linux.get("personality"), lambda msg: chan.send("warning", msg))
    process.apply_privileges(proc, plan.caps, plan.seccomp)
    os.umask(user["umask"] if user.get("umask") is not None else 0o022)
    fds.cloexec_from(3 + plan.preserve)
    for fd in range(3, 3 + plan.preserve):
        fds.set_cloexec(fd, False)
    chan.send("ready")

    if plan.fifo_fd >= 0:
        # "self" in either /proc names this process by its pid there
        if host_proc >= 0:
            fifo = os.open(f"self/fd/{plan.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=host_proc)
            os.close(host_proc)
        else:
            fifo = os.open(f"/proc/self/fd/{plan.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        if not _same_file(fifo, plan.fifo_fd):
            from lowrt.errors import LowrtError
            raise LowrtError("the exec fifo reopened through /proc is another file: refusing")
        os.write(fifo, b"0")
        os.close(fifo)
        os.close(plan.fifo_fd)
    if hooks.has(spec, "startContainer"):
        state = hooks.hook_state(plan.cid, host_pid, "created", plan.bundle, spec)
        # it runs in the container as its program will: with the process's environment
        # unless it has one of its own (as runc has always done)
        hooks.run("startContainer", spec, state, inherit=env)
    process.exec_process(path, proc["args"], env, None if in_cwd else cwd)


def _same_file(a: int, b: int) -> bool:
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)

