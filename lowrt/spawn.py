"""How lowrt starts a process inside a container: two forks, as runc's nsexec does.

lowrt (the parent) forks a child that joins or creates the namespaces and forks again: new pid
and time namespaces take effect only for children. The grandchild is the container's process;
the child reports its pid and exits, so the grandchild is re-parented to the caller's nearest
child-subreaper (or to lowrt itself, when lowrt waits on it: `run`, non-detached `exec`).
The parent writes a new user namespace's uid/gid maps when asked.

On cgroup v2 the first fork is a clone3 into the container's cgroup when it can be
(lowrt/linux/clone.py): the process never migrates, which spares the kernel's wait for an RCU
grace period that a migration can cost. Otherwise the child moves itself (launch.cgroup) or
the parent moves the init (lowrt/lifecycle.py).
"""
from __future__ import annotations

import _thread
import os

from lowrt.errors import LowrtError
from lowrt.sync import Channel


class Launch:
    """What the child needs to put a process into a container (built by the parent)."""

    def __init__(self) -> None:
        self.join: list[tuple[str, int, str]] = []   # (kind, fd, path) to setns, user first
        self.new_flags = 0                          # CLONE_NEW* to unshare, user excepted
        self.new_user = False
        self.uid_map: list[dict] = []
        self.gid_map: list[dict] = []
        self.cgroup = None       # a lowrt.cgroups manager the child joins itself, or None
        self.in_cgroup = False   # set by start(): the child was cloned into launch.cgroup
        self.time_offsets: dict | None = None
        self.hold = False        # the child waits for "release" before exiting (see wait_child)
        self.preload = None      # called first in the child: import what the grandchild needs
        self.direct = False      # set by start(): one fork, the child is the container's process
        self.root_fd = -1        # joining: the init's root (/proc/PID/root), made ours after setns


def start(launch: Launch, stage, *args) -> tuple[Channel, int]:
    """Fork the child; returns the parent's channel and the child's pid.

    stage(*args, launch, channel) runs in the grandchild and must not return: it execs, or
    raises (the error goes to the parent).
    """
    # prctl too, although only the processes after the fork use it: imported there, each
    # would pay for the copy-on-write faults of the import as well (~0.7 ms instead of 0.15).
    from lowrt.linux import ns, prctl  # noqa: F401

    chan = Channel()
    launch.direct = not (launch.new_user or launch.new_flags & ns.CLONE_NEWTIME or any(
        kind in ("user", "time") for kind, _, _ in launch.join))
    if launch.direct:
        pid = _fork_into_pidns(launch)
    else:
        pid = _fork(launch)
    if pid == 0:
        chan.as_child()
        try:
            if launch.direct:
                chan.as_init()
                _enter(launch, chan)
                stage(*args, launch, chan)
            else:
                _child(launch, stage, args, chan)
        except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
            chan.send("error", describe(e))
        os._exit(1)
    chan.as_parent()
    for _, fd, _ in launch.join:
        os.close(fd)
    if launch.root_fd >= 0:
        os.close(launch.root_fd)
    return chan, pid


def _fork_into_pidns(launch: Launch) -> int:
    """fork(), the child landing in the container's pid namespace (new, or joined by path)."""
    from lowrt.linux import ns

    join = [(fd, path) for kind, fd, path in launch.join if kind == "pid"]
    if not join and not launch.new_flags & ns.CLONE_NEWPID:
        return _fork(launch)
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        if join:
            ns.setns(join[0][0], "pid", join[0][1])
        else:
            ns.unshare(ns.CLONE_NEWPID)
        pid = _fork(launch)
    finally:
        if pid != 0:
            ns.setns(own, "pid", "/proc/self/ns/pid")  # lowrt's own children stay in its own
            os.close(own)
    return pid


def _fork(launch: Launch) -> int:
    """fork(); on cgroup v2, a clone3 that starts the child in launch.cgroup where possible."""
    cgroup = launch.cgroup
    # A raw clone3 runs no libc fork handlers: only while lowrt has no other thread (the
    # warmup thread does not run where this path is taken: see lowrt/warmup.py).
    if cgroup is None or cgroup.version != 2 or _thread._count():
        return os.fork()
    try:
        fd = os.open(cgroup.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return os.fork()  # the migration that follows reports what is wrong with it
    try:
        from lowrt.linux.clone import fork_into_cgroup
        pid = fork_into_cgroup(fd, cgroup.path)
    except OSError:
        return os.fork()  # refused (old kernel, seccomp): fork and migrate
    finally:
        os.close(fd)
    launch.in_cgroup = True
    return pid


def _enter(launch: Launch, chan: Channel) -> None:
    """One-fork path, in the container's process: the namespaces other than pid."""
    from lowrt.linux import ns, prctl

    if launch.preload is not None:
        launch.preload()
    prctl.set_dumpable(False)  # see _child
    if launch.cgroup is not None and not launch.in_cgroup:
        launch.cgroup.add(os.getpid())
    for kind, fd, path in launch.join:
        if kind != "pid":
            ns.setns(fd, kind, path)
        os.close(fd)
    _take_root(launch)
    flags = launch.new_flags & ~ns.CLONE_NEWPID
    if flags:
        ns.unshare(flags)


def describe(e: BaseException) -> str:
    """An error as one line without Python's "[Errno N]" prefix."""
    if isinstance(e, OSError) and e.strerror:
        if e.filename:
            return f"{e.filename}: {e.strerror.lower()}"
        return e.strerror
    return str(e) or type(e).__name__


def _child(launch: Launch, stage, args: tuple, chan: Channel) -> None:
    from lowrt.linux import ns, prctl

    if launch.preload is not None:
        # Imported here, while the host's files are still reachable and in parallel with the
        # parent's work; the grandchild inherits the modules.
        launch.preload()
    # lowrt's own process must not be reachable through /proc from inside the container:
    # non-dumpable before it joins or creates any of its namespaces.
    prctl.set_dumpable(False)
    if launch.cgroup is not None and not launch.in_cgroup:
        launch.cgroup.add(os.getpid())
    for kind, fd, path in launch.join:
        ns.setns(fd, kind, path)
        os.close(fd)
    _take_root(launch)
    if launch.new_user:
        ns.unshare(ns.CLONE_NEWUSER)
        chan.send("userns")
        chan.expect("ok")
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if launch.new_flags:
        ns.unshare(launch.new_flags)
    if launch.time_offsets:
        _write_time_offsets(launch.time_offsets)
    pid = os.fork()
    if pid == 0:
        chan.as_init()
        try:
            stage(*args, launch, chan)
        except BaseException as e:  # noqa: BLE001
            chan.send("error", describe(e))
        os._exit(1)
    chan.send("pid", str(pid))
    if launch.hold:
        chan.expect("release")
    os._exit(0)


def _take_root(launch: Launch) -> None:
    """Make the init's root directory ours. setns(CLONE_NEWNS) alone puts us at the root of
    its mount namespace, which is not the container's when lowrt runs chrooted (in a build
    sandbox, say): the init pivoted into a mount below it."""
    if launch.root_fd >= 0:
        os.fchdir(launch.root_fd)
        os.chroot(".")
        os.close(launch.root_fd)
        launch.root_fd = -1


def _write_time_offsets(offsets: dict) -> None:
    with open("/proc/self/timens_offsets", "w") as f:
        for clock in ("monotonic", "boottime"):
            o = offsets.get(clock)
            if o:  # the kernel takes one clock per write
                f.write(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
                f.flush()


def write_id_maps(pid: int, launch: Launch) -> None:
    """Parent side of a new user namespace: the maps must be written from outside it."""
    for name, entries in (("uid_map", launch.uid_map), ("gid_map", launch.gid_map)):
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in entries)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise LowrtError(f"write /proc/{pid}/{name} ({text.strip()!r}): {e.strerror.lower()}") from None


def wait_child(chan: Channel, pid: int, launch: Launch) -> int:
    """The container process's pid. On the two-fork path: serve the child until it reports
    the grandchild's pid, and reap the child.

    A held child (`launch.hold`) exits only when released here: by then the parent must be
    the subreaper that will adopt the grandchild.
    """
    if launch.direct:
        return pid
    ok = False
    try:
        while True:
            kind, payload = chan.recv()
            if kind == "userns":
                write_id_maps(pid, launch)
                chan.send_child("ok")
            elif kind == "pid":
                if launch.hold:
                    chan.send_child("release")
                ok = True
                return int(payload)
            elif kind == "error":
                raise LowrtError(payload)
            elif kind == "eof":
                raise LowrtError("lowrt's child exited before starting the container process")
            else:
                raise LowrtError(f"unexpected message from lowrt's child: {kind!r}")
    finally:
        if not ok:  # a held child would wait for its release forever
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
