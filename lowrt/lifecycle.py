"""A container's life, from the runtime's side: create, start, signal, destroy.

create leaves the init blocked on the exec FIFO and writes state.json; if anything fails on
the way, everything made so far (processes, cgroup, state directory) is undone before the error
is reported. The init is never lowrt's child once create returns (see lowrt/spawn.py).
"""
from __future__ import annotations

import _signal  # `signal` builds enums when imported (7 ms here); its C half is enough
import os
import time

from lowrt import hooks
from lowrt.errors import LowrtError
from lowrt.log import log
from lowrt.state import Container, alive, process_stat, remove_state_dir, validate_id
from lowrt.timefmt import rfc3339_nano

SIGKILL = 9

class CreateOptions:
    def __init__(self, root: str, cid: str, bundle: str) -> None:
        self.root = root
        self.id = cid
        self.bundle = bundle
        self.pid_file = ""
        self.console_socket = ""
        self.no_pivot = False
        self.no_new_keyring = False
        self.preserve_fds = 0
        self.exec_fifo = True        # False for `run`: nothing waits for a `start`
        self.detach = True           # False when lowrt stays attached (`run` without -d)


class Created:
    """A container whose init is ready; for `run`, the channel still says whether exec worked."""

    def __init__(self, container: Container, chan, console_master: int = -1) -> None:
        self.container = container
        self.chan = chan
        self.console_master = console_master


class InitPlan:
    """Everything the init does that the parent decided (inherited through fork)."""

    def __init__(self, cid: str, bundle: str, spec: dict, caps: dict[str, int]) -> None:
        self.cid = cid
        self.bundle = bundle
        self.spec = spec
        self.caps = caps
        self.userns = False
        self.cgroupns = False
        self.no_pivot = False
        self.no_new_keyring = False
        self.console_fd = -1                  # connected console socket (or socketpair end)
        self.fifo_fd = -1                     # O_PATH fd of exec.fifo; -1 for `run`
        self.preserve = 0                     # fds 3 .. 3+preserve-1 reach the program
        self.seccomp: tuple[bytes, int] | None = None   # (BPF program, flags)
        self.extra_env: list[str] = []


def _preload_init(plan: InitPlan) -> None:
    from lowrt import init, process  # noqa: F401
    process.preload(plan.spec["process"], plan.spec)


def _run_init(plan: InitPlan, launch, chan) -> None:
    from lowrt import init  # already imported by _preload_init
    init.main(plan, launch, chan)


def create(opts: CreateOptions) -> Created:
    """Make the container; its init is ready (blocked on the exec FIFO) when this returns.

    The parent forks the child first and creates the cgroup meanwhile (the two overlap: a
    cgroup costs milliseconds, and so do namespaces); it then puts the init into the cgroup
    before the init may run anything. With a new cgroup namespace the child must be in the
    cgroup before it unshares, so the cgroup comes first; on cgroup v2 too, so that the child
    can be cloned into it and never migrate (lowrt/spawn.py).
    """
    t0 = time.monotonic()
    # Imported here: start, kill and delete (their own lowrt processes) need neither.
    from lowrt import config, spawn

    def phase(what: str) -> None:  # `--debug` shows where create's time goes
        log.debug(f"create {opts.id}: {what} at {(time.monotonic() - t0) * 1e3:.1f} ms")

    validate_id(opts.id)
    bundle = os.path.abspath(opts.bundle or ".")
    try:
        os.chdir(bundle)
    except OSError as e:
        raise LowrtError(f"chdir to bundle {bundle}: {e.strerror.lower()}") from None
    spec = config.load(bundle)
    proc = spec["process"]
    linux = spec["linux"]
    terminal = bool(proc.get("terminal"))
    if opts.detach and terminal and not opts.console_socket:
        raise LowrtError("cannot allocate tty if lowrt will detach without setting console socket")
    if (not opts.detach or not terminal) and opts.console_socket:
        raise LowrtError("cannot use console socket if lowrt will not detach or allocate tty")
    preserve, extra_env = inherited_fds(opts.preserve_fds)

    from lowrt import caps as capsmod
    from lowrt.linux import ns
    config.check_rlimits(proc.get("rlimits") or [])
    cap_sets, dropped = capsmod.plan(proc.get("capabilities"), capsmod.own_bounding_set())
    if dropped:
        log.warning(f"capabilities not in lowrt's bounding set, dropped from every set: "
                    f"{', '.join(capsmod.names(dropped))}")
    seccomp = compile_seccomp(spec)
    namespaces = linux.get("namespaces") or []
    phase("config loaded")

    os.makedirs(opts.root, 0o711, exist_ok=True)
    c = Container(opts.root, opts.id)
    try:
        os.mkdir(c.dir, 0o711)
    except FileExistsError:
        raise LowrtError(f"container with id exists: {opts.id}") from None
    except OSError as e:
        raise LowrtError(f"create state directory {c.dir}: {e.strerror.lower()}") from None

    pid = 0
    child = 0
    cgroup = None
    chan = None
    console_master = -1
    try:
        plan = InitPlan(opts.id, bundle, spec, cap_sets)
        plan.no_pivot = opts.no_pivot
        plan.no_new_keyring = opts.no_new_keyring
        plan.preserve = preserve
        plan.extra_env = extra_env
        plan.seccomp = seccomp
        plan.userns = any(e["type"] == "user" for e in namespaces)
        plan.cgroupns = any(e["type"] == "cgroup" and not e.get("path") for e in namespaces)
        launch = spawn.Launch()
        launch.preload = lambda: _preload_init(plan)
        for entry in namespaces:
            kind, path = entry["type"], entry.get("path") or ""
            if path:
                launch.join.append((kind, _open_ns(path, kind), path))
            elif kind == "user":
                launch.new_user = True
            else:
                launch.new_flags |= ns.KINDS[kind][0]
        order = list(ns.KINDS)
        launch.join.sort(key=lambda j: order.index(j[0]))  # the user namespace first
        launch.uid_map = linux.get("uidMappings") or []
        launch.gid_map = linux.get("gidMappings") or []
        launch.time_offsets = linux.get("timeOffsets")
        launch.hold = not opts.detach

        if opts.exec_fifo:
            os.mkfifo(c.fifo, 0o622)
            os.chmod(c.fifo, 0o622)  # mkfifo obeys the umask
            plan.fifo_fd = os.open(c.fifo, os.O_PATH | os.O_CLOEXEC)
        parent_console = -1
        if terminal:
            from lowrt import console
            if opts.console_socket:
                plan.console_fd = console.connect(opts.console_socket)
            else:
                parent_console, plan.console_fd = console.socketpair()

        if plan.cgroupns or _unified_host():
            # On v2 only the directory before the fork (the child is cloned into it); its
            # limits and device filter are set while the child makes its namespaces.
            cgroup = _make_cgroup(opts.id, linux, configure=False)
            launch.cgroup = cgroup
        chan, child = spawn.start(launch, _run_init, plan)
        for fd in (plan.fifo_fd, plan.console_fd):
            if fd >= 0:
                os.close(fd)
        phase("child forked")
        if not opts.detach:
            from lowrt.linux import prctl
            prctl.set_child_subreaper()  # before the held child exits and orphans the init
        if cgroup is None:
            cgroup = _make_cgroup(opts.id, linux)
            phase("cgroup created")
        elif cgroup.version == 2:
            _log_notes(cgroup.configure(linux.get("resources") or {}))
            phase("cgroup configured")
        pid = spawn.wait_child(chan, child, launch)
        phase(f"init {pid} forked" + (" into its cgroup" if launch.in_cgroup else ""))
        # The cgroup's directories exist: the init may mount them (a "cgroup" mount) while the
        # state is saved and it is moved in; it waits for "joined" before anything that needs
        # it inside (hooks, "ready", exec).
        from lowrt import fastjson
        from lowrt.hierarchies import cgroup_sources
        wanted = any(m.get("type") == "cgroup" for m in spec.get("mounts") or [])
        chan.send("cgroup", fastjson.dumps(cgroup_sources(cgroup.paths) if wanted else [],
                                           compact=True))
        # Recorded at once: should lowrt die from here on, `delete --force` finds what to undo.
        st = process_stat(pid)
        c.record = {
            "id": opts.id, "init_pid": pid, "init_start_time": st[1] if st else 0,
            "bundle": bundle, "rootfs": spec["root"]["path"],
            "created": rfc3339_nano(time.time_ns()), "cgroup_paths": cgroup.paths,
            "config": spec,
        }
        c.save()
        try:
            if launch.cgroup is None:
                cgroup.add(pid)
        except Exception:
            if not alive(pid, None):  # an init that died meanwhile says why
                _raise_init_error(chan)
            raise
        from lowrt import warmup
        warmup.stop()   # the init is in its cgroup: no more no-op migrations
        chan.send("joined")
        _serve_until_ready(c, chan)
        phase("init ready")
        if parent_console >= 0:
            from lowrt import console
            console_master = console.recv_master(parent_console)
            os.close(parent_console)
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
    except BaseException as e:
        if chan is not None:
            chan.close()  # an init still waiting for us sees end-of-file and exits
        _undo(c, pid or child, cgroup)
        if isinstance(e, OSError):
            raise LowrtError(spawn.describe(e)) from None
        raise
    return Created(c, chan, console_master)


def _unified_host() -> bool:
    """Whether /sys/fs/cgroup is a cgroup2 mount (a pure v2 host), told without reading the
    mount table: this only decides whether the cgroup is made before the fork or after."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _make_cgroup(cid: str, linux: dict, configure: bool = True):
    """The container's cgroup, made and configured; on v2 without `configure`, made only
    (its configure() is then the caller's to call). v1 is always configured: a process may
    join a cpuset cgroup only once its cpus and mems are set."""
    from lowrt import cgroups
    cgroup = cgroups.manager(linux.get("cgroupsPath") or "", cid)
    # As runc: linux.devices only makes nodes; what they may be used for is up to
    # resources.devices (lowrt.cgroups appends runc's default rules for the standard nodes).
    resources = linux.get("resources") or {}
    try:
        if configure or cgroup.version != 2:
            _log_notes(cgroup.create(resources))
        else:
            cgroup.make(resources)
    except Exception:
        try:
            cgroup.destroy()  # what create made before it failed
        except Exception:  # noqa: BLE001 - the create error is the one to report
            pass
        raise
    return cgroup


def _log_notes(notes: list[str] | None) -> None:
    for note in notes or []:
        log.warning(note)


def _raise_init_error(chan) -> None:
    """Raise the error an init reported before it exited (its end of the channel is closed)."""
    while True:
        kind, payload = chan.recv()
        if kind == "error":
            raise LowrtError(f"unable to start container process: {payload}")
        if kind == "eof":
            return


def _serve_until_ready(c: Container, chan) -> None:
    """Answer the init's requests (prestart and createRuntime hooks) until it is ready."""
    while True:
        kind, payload = chan.recv()
        if kind == "hooks":
            # "created", as crun says: these hooks run after the runtime has made the container's
            # environment (runtime-spec lifecycle steps 3-4 come after step 2, and the spec's
            # "created" is "after step 2"). runc 1.1 says "creating" here.
            state = hooks.hook_state(c.id, c.pid, "created", c.record["bundle"], c.config)
            hooks.run("prestart", c.config, state, log)
            hooks.run("createRuntime", c.config, state, log)
            chan.send("ok", str(c.pid))
        elif kind == "warning":
            log.warning(payload)
        elif kind == "ready":
            return
        elif kind == "error":
            raise LowrtError(f"unable to start container process: {payload}")
        elif kind == "eof":
            raise LowrtError("unable to start container process: the init exited before it was ready")
        else:
            raise LowrtError(f"unexpected message from the container's init: {kind!r}")


def wait_exec(created: Created) -> None:
    """For `run`: return once the init has exec'd the program (its end of the channel closed)."""
    while True:
        kind, payload = created.chan.recv()
        if kind == "eof":
            created.chan.close()
            return
        if kind == "warning":
            log.warning(payload)
        elif kind == "error":
            created.chan.close()
            raise LowrtError(f"unable to start container process: {payload}")


def inherited_fds(preserve_fds: int) -> tuple[int, list[str]]:
    """How many fds past stdio the program gets: $LISTEN_FDS (socket activation) + --preserve-fds."""
    extra_env: list[str] = []
    listen = os.environ.get("LISTEN_FDS", "")
    n_listen = int(listen) if listen.isdigit() else 0
    if n_listen:
        extra_env = [f"LISTEN_FDS={n_listen}", "LISTEN_PID=1"]
    if preserve_fds < 0:
        raise LowrtError(f"--preserve-fds {preserve_fds}: must not be negative")
    total = n_listen + preserve_fds
    for i in range(3 + n_listen, 3 + total):
        try:
            os.fstat(i)
        except OSError:
            raise LowrtError(f"unable to stat preserved-fd {i - 3 - n_listen} (of {preserve_fds}): "
                             f"fd {i} is not open") from None
    return total, extra_env


def _open_ns(path: str, kind: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise LowrtError(f"open {kind} namespace {path}: {e.strerror.lower()}") from None


def compile_seccomp(spec: dict) -> tuple[bytes, int] | None:
    """The config's seccomp profile as (BPF program, seccomp(2) flags), compiled here in the
    runtime before anything is forked (lowrt/seccomp)."""
    profile = (spec.get("linux") or {}).get("seccomp")
    if not profile:
        return None
    from lowrt import seccomp
    try:
        return seccomp.compile(profile), seccomp.flags(profile)
    except seccomp.SeccompError as e:
        raise LowrtError(f"invalid linux.seccomp: {e}") from None


def write_pid_file(path: str, pid: int) -> None:
    """Written to a temporary name and renamed, so a reader never sees a partial pid."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        raise LowrtError(f"write pid file {path}: {e.strerror.lower()}") from None


def _undo(c: Container, pid: int, cgroup) -> None:
    """Take back whatever a failed create made."""
    if pid:
        kill_and_wait(pid)
    if cgroup is not None:
        try:
            cgroup.destroy(kill=True)
        except Exception as e:  # noqa: BLE001 - CgroupError; the create error matters more
            log.warning(f"remove cgroup of failed container {c.id}: {e}")
    remove_state_dir(c.dir)


def kill_and_wait(pid: int, start_time: int | None = None, timeout: float = 10.0) -> bool:
    """SIGKILL pid and wait until it has exited (it need not be our child)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        if start_time is not None and not alive(pid, start_time):
            return True
        try:
            _signal.pidfd_send_signal(pidfd, SIGKILL)
        except ProcessLookupError:
            return True
        import select
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        return bool(p.poll(timeout * 1000))
    finally:
        os.close(pidfd)


# --- start, kill, delete --------------------------------------------------------------------

def start(c: Container) -> None:
    status = c.status()
    if status == "stopped":
        raise LowrtError("cannot start a container that has stopped")
    if status != "created":
        raise LowrtError(f"cannot start an already {status} container" if status == "running"
                         else f"cannot start a container in the {status} state")
    try:
        fd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LowrtError("cannot start an already running container") from None
    try:
        import select
        p = select.poll()
        p.register(fd, select.POLLIN)
        # The init writes one byte once it has opened its end; poll with a timeout so that
        # an init killed meanwhile does not leave start waiting forever.
        while not p.poll(100):
            if not c.running():
                raise LowrtError("cannot start a container that has stopped")
        if not os.read(fd, 1):
            raise LowrtError("cannot start a container that has stopped")
    finally:
        os.close(fd)
    os.unlink(c.fifo)
    run_poststart(c)


def run_poststart(c: Container) -> None:
    """The poststart hooks; one that fails stops the container (runtime-spec 1.1), whose
    delete is then up to the caller, as after any exit."""
    if not hooks.has(c.config, "poststart"):
        return
    try:
        hooks.run("poststart", c.config, hooks.hook_state(c.id, c.pid, "running",
                                                            c.record["bundle"], c.config), log)
    except LowrtError:
        kill(c, SIGKILL, all_processes=True)
        raise


def kill(c: Container, sig: int, all_processes: bool = False) -> None:
    status = c.status()
    if status == "stopped" and not all_processes:
        raise LowrtError("container not running")
    if all_processes:
        c.cgroup().kill_all(sig)
    elif status != "stopped":
        try:
            os.kill(c.pid, sig)
        except ProcessLookupError:
            raise LowrtError("container not running") from None
    if sig == SIGKILL and status == "paused":
        c.cgroup().thaw()  # a frozen task dies only once thawed


def delete(root: str, cid: str, force: bool) -> None:
    validate_id(cid)
    try:
        c = Container.load(root, cid)
    except LowrtError:
        path = os.path.join(root, cid)
        if os.path.isdir(path):  # a state directory without its state: half made, remove it
            remove_state_dir(path)
        if force:
            return
        raise
    status = c.status()
    if status in ("running", "paused") and not force:
        raise LowrtError(f"cannot delete container {cid} that is not stopped: {status}")
    if status != "stopped":
        if status == "paused":
            c.cgroup().thaw()
        if not kill_and_wait(c.pid, c.record.get("init_start_time")):
            raise LowrtError(f"container {cid}: init {c.pid} still running after SIGKILL")
    destroy(c)


def destroy(c: Container) -> None:
    """Remove what the container holds: its processes (those left when it shares the host's
    pid namespace, or that are still dying), cgroup and state; then poststop hooks."""
    try:
        cg = c.cgroup()
        cg.destroy(kill=bool(cg.pids()))  # no freeze-and-thaw for an empty cgroup
    except Exception as e:  # noqa: BLE001 - lowrt.cgroups.CgroupError
        raise LowrtError(f"remove cgroup of container {c.id}: {e}") from None
    remove_state_dir(c.dir)
    if hooks.has(c.config, "poststop"):
        hooks.run("poststop", c.config, hooks.hook_state(c.id, 0, "stopped", c.record["bundle"],
                                                           c.config), log)
