"""Start the cgroup migration wait early, in the background, and keep it from coming back.

Moving a process into a cgroup (a write to cgroup.procs) takes a per-CPU rwsem for writing,
and when no migration happened in the last grace period or so the kernel first waits for an
RCU grace period: 6-16 ms here, much of a container start. It waits holding cgroup_mutex, so
every cgroup mkdir on the host waits with it. Once that wait is over, migrations are fast until
about a grace period passes with none (rcu_sync's GP_PASSED and GP_EXIT states): a single
early migration can lapse before the container's, which then waits a second time.

So `create`/`run`/`exec` begin with no-op migrations into a cgroup one is already in. The
`lowrt` script's sh part makes the first two, in a background subshell, 10 ms apart, from
before the interpreter (10 ms here) has started; then a thread, started before anything else
is imported, repeats one every few milliseconds, so that the fast state lasts until the
container's real migration (stop()), which then costs well under a millisecond. The thread
finds its cgroup itself: reading /proc/self/cgroup takes cgroup_mutex, which the subshell's
write may still hold through its wait, and the main thread has modules to import meanwhile.
Failures do not matter: this only saves time. Measured with timestamps inside `lowrt run`:
with the wait begun in Python, the cgroup's directories were made 5-15 ms after the fork, most
of it waiting; with the subshell, about 5 ms after, none of it waiting. As whole runs, over 600
alternating rounds each: one write from the subshell ran at 0.985x the Python-only start, and
the second write at 0.976x the first alone (`bench/lowrt_run.py` has the figures against
runc).

Not on a pure cgroup v2 host with Linux 5.7 or later: there the container's process is cloned
straight into its cgroup (CLONE_INTO_CGROUP, lowrt/spawn.py) and never migrates, and that
clone needs lowrt to have no other thread. Should the kernel refuse the clone all the same (a
seccomp filter), the process migrates without the head start.
"""
from __future__ import annotations

import _thread
import os
import time

_INTERVAL = 0.002   # well under a grace period: the kernel's fast state never lapses
_BUDGET = 0.5       # seconds at most, should nobody call stop()
_started = False
_stopped = False
_subshell = 0   # the script's subshell (lowrt/bin/lowrt), lowrt's child


def _keep_warm(pid: bytes, until: float, started) -> None:
    # Only raw system calls and sleeps here, no Python-level lock taken: lowrt forks while
    # this thread may be blocked in the write, and the child must inherit no held lock.
    started.release()
    path = _own_procs_file()
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        while True:
            os.write(fd, pid)
            if _stopped or time.monotonic() > until:
                return
            time.sleep(_INTERVAL)
    except OSError:
        pass
    finally:
        os.close(fd)


def start() -> None:
    """Start the thread (once: the `lowrt` script starts it before lowrt.cli is imported)."""
    global _started, _subshell
    if _started:
        return
    _started = True
    pid = os.environ.pop("LOWRT_WARMUP_PID", "")  # nothing lowrt starts is to inherit it
    _subshell = int(pid) if pid.isdigit() else 0
    if _clones_into_cgroup():
        return
    # The thread needs the GIL to get going, and the main thread, busy importing, would keep
    # it for up to the 5 ms switch interval: hand it over until the thread runs (its reads
    # and writes then wait in the kernel, without the GIL).
    started = _thread.allocate_lock()
    started.acquire()
    try:
        _thread.start_new_thread(_keep_warm, (str(os.getpid()).encode(),
                                              time.monotonic() + _BUDGET, started))
    except RuntimeError:
        return
    started.acquire(True, 0.05)


def stop() -> None:
    """The real migration is done: no more no-op ones."""
    global _stopped
    _stopped = True


def reap() -> None:
    """Wait for the script's subshell, if lowrt has not reaped it already (a foreground run
    reaps every child): its two writes and the pause between take a few grace periods at most."""
    if _subshell:
        try:
            os.waitpid(_subshell, 0)
        except ChildProcessError:
            pass


def _own_procs_file() -> str | None:
    """cgroup.procs of the cgroup lowrt is in: a v1 hierarchy's, or the v2 one's."""
    try:  # os-level calls only: see _keep_warm
        fd = os.open("/proc/self/cgroup", os.O_RDONLY | os.O_CLOEXEC)
        try:
            text = os.read(fd, 65536).decode()
        finally:
            os.close(fd)
    except OSError:
        return None
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        mount = "/sys/fs/cgroup/" + controllers if controllers else "/sys/fs/cgroup"
        if controllers.startswith("name=") or "," in controllers:
            continue
        procs = f"{mount}{path.rstrip('/')}/cgroup.procs"
        if os.path.exists(procs):
            return procs
    return None


def _clones_into_cgroup() -> bool:
    """A pure v2 host (cgroup2 at /sys/fs/cgroup, as lowrt.lifecycle tells it) whose kernel
    has CLONE_INTO_CGROUP (5.7)."""
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return False
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 7)
