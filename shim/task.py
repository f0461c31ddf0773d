"""The one container a shim serves: every request of shim.proto, as plain methods.

Each method takes (request body, connection, request seq) and returns the response body, None
for an empty response, or server.PARKED when it answers later (Wait) or turns the connection
into a stream (Subscribe, Attach). Errors are shim.errors exceptions. State rules and messages
follow containerd's runc shim (cmd/containerd-shim-runc-v2/process).
"""
from __future__ import annotations

import _signal  # see shim/reaper.py
import os
import time

from protos.berth.shim.v1 import shim_lean as pb
from shim import errors
from shim.attach import AttachClient
from shim.io import ProcessIO, StdioError
from shim.process import STATUS_NAMES, Process
from shim.runtime import RuntimeFailure
from shim.server import PARKED, STREAM_BUFFER_LIMIT

VERSION = "berth-shim 0.1.0"
_EXEC_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise errors.Internal(f"reading the runtime's pid file {path}: {e}") from None


def _preload_oom_watch() -> None:
    """While the runtime creates the container: import what the OOM watch set up after it
    needs (a few ms of imports that the answer to Create would otherwise wait for)."""
    try:
        from shim import oom
        oom.preload()
    except Exception:   # noqa: BLE001 - _watch_oom says what is wrong, if anything
        pass


class Task:
    def __init__(self, *, loop, reaper, events, runtime, namespace: str, id: str, bundle: str,
                 socket_path: str, log, on_exit) -> None:
        self.loop = loop
        self.reaper = reaper
        self.events = events
        self.runtime = runtime
        self.namespace = namespace
        self.id = id
        self.bundle = bundle
        self.socket_path = socket_path
        self.log = log
        self._on_exit = on_exit
        self.init: Process | None = None
        self.execs: dict[str, Process] = {}
        self.rootfs = os.path.join(bundle, "rootfs")
        self._mounted = False
        self._made_rootfs = False
        self._own_pidns = True
        self._oom = None

    # -- lookups ---------------------------------------------------------------------------
    def _container(self, cid: str) -> Process:
        if cid != self.id:
            raise errors.NotFound(f"container {cid} not found: this shim serves {self.id}")
        if self.init is None or self.init.deleted:
            raise errors.NotFound(f"container {cid} not created")
        return self.init

    def _process(self, cid: str, exec_id: str) -> Process:
        init = self._container(cid)
        if not exec_id:
            return init
        p = self.execs.get(exec_id)
        if p is None:
            raise errors.NotFound(f"process {exec_id} does not exist in container {cid}")
        return p

    def _pid_file(self, p: Process) -> str:
        # "exec-" keeps an exec named "init" from taking the init's pid file.
        return os.path.join(self.bundle, f"exec-{p.exec_id}.pid" if p.exec_id else "init.pid")

    # -- create / start --------------------------------------------------------------------
    def create(self, req, conn, seq):
        if req.id != self.id:
            raise errors.InvalidArgument(f"create {req.id}: this shim serves container {self.id}")
        if self.init is not None:
            raise errors.AlreadyExists(f"container {req.id} already exists")
        bundle = req.bundle or self.bundle
        if os.path.realpath(bundle) != os.path.realpath(self.bundle):
            raise errors.InvalidArgument(f"create {req.id}: bundle {bundle} is not this shim's "
                                         f"bundle {self.bundle}")
        p = Process(self, "", terminal=req.terminal, stdin=req.stdin, stdout=req.stdout,
                    stderr=req.stderr)
        pid_file = self._pid_file(p)
        try:
            self._mount_rootfs(req.rootfs)
            p.pid = self._run_process(p, lambda stdio, console: self.runtime.create(
                self.id, self.bundle, pid_file, stdio, console, meanwhile=_preload_oom_watch),
                pid_file)
        except BaseException:
            self._undo_create(p, pid_file)
            raise
        self.init = p
        self._own_pidns = self._has_own_pidns(p.pid)
        self._watch_oom(p.pid)
        self.events.publish(create=pb.TaskCreate(container_id=self.id, bundle=self.bundle,
                                                 pid=p.pid))
        self.reaper.watch(p.pid, p.reaped_exit)
        return pb.CreateResponse(pid=p.pid)

    def _open_io(self, p: Process) -> None:
        try:
            p.io = ProcessIO(self.loop, self.reaper, cid=self.id, namespace=self.namespace,
                             terminal=p.terminal, stdin=p.stdin, stdout=p.stdout,
                             stderr=p.stderr, on_done=p.io_done)
        except StdioError as e:
            raise errors.InvalidArgument(f"{p.describe()}: {e}") from None
        except OSError as e:
            raise errors.Internal(f"{p.describe()}: opening stdio: {e}") from None

    def _run_process(self, p: Process, run, pid_file: str) -> int:
        """Run the runtime command that makes p (create or exec) with p's stdio; return its pid."""
        if p.io is None:
            self._open_io(p)
        console = None
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            if p.terminal:
                from shim.terminal import ConsoleSocket
                console = ConsoleSocket(self.socket_path + ".pty")
            verb = "exec" if p.exec_id else "create"
            try:
                run(p.io.runtime_stdio(null), console.path if console else None)
            except RuntimeFailure as e:
                raise errors.RuntimeFailed(f"OCI runtime {verb} failed: {e}") from None
            master = -1
            if console is not None:
                try:
                    master = console.receive_master()
                except OSError as e:
                    raise errors.Internal(f"{p.describe()}: {e}") from None
            pid = _read_pid(pid_file)
            p.io.started(master)
            return pid
        finally:
            os.close(null)
            if console is not None:
                console.close()

    def _undo_create(self, p: Process, pid_file: str) -> None:
        p.close_io()
        try:
            self.runtime.delete(self.id, force=True)
        except RuntimeFailure:
            pass    # usually "does not exist": the runtime cleaned up after itself
        self._unmount_rootfs()
        _remove(pid_file)

    def _mount_rootfs(self, mounts) -> None:
        if not mounts:
            return
        from shim import linux
        if not os.path.isdir(self.rootfs):
            os.mkdir(self.rootfs, 0o711)
            self._made_rootfs = True
        for m in mounts:
            target = os.path.normpath(os.path.join(self.rootfs, m.target.lstrip("/")))
            if target != self.rootfs and not target.startswith(self.rootfs + "/"):
                raise errors.InvalidArgument(f"rootfs mount target {m.target} leaves the rootfs")
            try:
                linux.mount_one(m.type, m.source, target, list(m.options))
            except OSError as e:
                raise errors.InvalidArgument(f"mounting the rootfs: {e}") from None
            self._mounted = True

    def _unmount_rootfs(self) -> None:
        if self._mounted:
            from shim import linux
            try:
                linux.unmount_all(self.rootfs)
            except OSError as e:
                self.log(f"unmounting {self.rootfs}: {e}")
            self._mounted = False
        if self._made_rootfs:
            try:
                os.rmdir(self.rootfs)
            except OSError as e:
                self.log(f"removing {self.rootfs}: {e}")
            self._made_rootfs = False

    @staticmethod
    def _has_own_pidns(pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        except OSError:
            return True

    def _watch_oom(self, pid: int) -> None:
        try:
            from shim.oom import OOMWatcher
            self._oom = OOMWatcher(self.loop, pid, self._on_oom, self.log)
        except Exception as e:   # no cgroups library, or no memory controller: no OOM events
            self.log(f"oom events disabled for {self.id}: {e}")

    def _on_oom(self) -> None:
        self.events.publish(oom=pb.TaskOOM(container_id=self.id))

    def start(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if p.status != pb.CREATED or p.published or (p.exec_id and p.pid):
            raise errors.FailedPrecondition(
                f"cannot start a {STATUS_NAMES[p.status]} process ({p.describe()})")
        if p.is_init:
            try:
                self.runtime.start(self.id)
            except RuntimeFailure as e:
                raise errors.RuntimeFailed(f"OCI runtime start failed: {e}") from None
            p.status = pb.RUNNING
            self.events.publish(start=pb.TaskStart(container_id=self.id, pid=p.pid))
            return pb.StartResponse(pid=p.pid)
        if self.init.reaped:
            raise errors.FailedPrecondition(f"container {self.id} init process is not running")
        pid_file = self._pid_file(p)
        process_file = os.path.join(self.bundle, f"exec-{p.exec_id}.process.json")
        try:
            _write_atomic(process_file, p.spec)
            p.pid = self._run_process(p, lambda stdio, console: self.runtime.exec(
                self.id, process_file, pid_file, stdio, console), pid_file)
        except errors.ShimError as e:
            p.close_io()
            p.fail_start(str(e))
            raise
        finally:
            _remove(process_file)
        p.status = pb.RUNNING
        self.events.publish(exec_started=pb.TaskExecStarted(container_id=self.id,
                                                            exec_id=p.exec_id, pid=p.pid))
        self.reaper.watch(p.pid, p.reaped_exit)
        return pb.StartResponse(pid=p.pid)

    # -- exits -----------------------------------------------------------------------------
    def process_reaped(self, p: Process) -> None:
        """Runs as soon as the exit is known, before the output has drained."""
        if p.deleted or not p.is_init:
            return
        record = (f'{{"pid": {p.pid}, "exit_status": {p.exit_status}, '
                  f'"exited_at": {p.exited_at}}}').encode()
        try:
            _write_atomic(os.path.join(self.bundle, "init.exit"), record)
        except OSError as e:
            self.log(f"writing init.exit: {e}")
        if not self._own_pidns:
            # No pid namespace of its own: the kernel does not kill the rest when the init
            # dies, so do it as containerd does (runc kill --all).
            try:
                self.runtime.kill(self.id, _signal.SIGKILL, all_=True)
            except RuntimeFailure as e:
                self.log(f"killing the rest of {self.id}: {e}")
        if p.status == pb.PAUSED:
            try:
                self.runtime.resume(self.id)
            except RuntimeFailure as e:
                self.log(f"resuming {self.id} after its init exited: {e}")

    def maybe_publish(self, p: Process) -> None:
        if p.published or not p.reaped or p.deleted or not p.output_settled():
            return
        if p.is_init:
            if any(e.pid and not e.published for e in self.execs.values()):
                return   # published once the last exec's exit is
            if self._oom is not None:
                self._oom.check()
                self._oom.stop()
                self._oom = None
        p.publish()
        self.events.publish(exit=pb.TaskExit(container_id=self.id, id=p.id, pid=p.pid,
                                             exit_status=p.exit_status, exited_at=p.exited_at))
        if not p.is_init and self.init is not None and self.init.reaped:
            self.maybe_publish(self.init)

    def _publish_now(self, p: Process) -> None:
        """Deleting: an exit still waiting for its output to drain is published as it is, and
        a process that never exited (or never started) answers its waiters with 255."""
        if p.reaped and not p.published:
            p.close_io()
            self.maybe_publish(p)
        if not p.published:
            p.fail_start("deleted before it exited")

    # -- delete ----------------------------------------------------------------------------
    def delete(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if p.status in (pb.RUNNING, pb.PAUSED) and not p.published:
            raise errors.FailedPrecondition(
                f"cannot delete a {STATUS_NAMES[p.status]} process ({p.describe()})")
        if p.exec_id:
            del self.execs[p.exec_id]
            self._release(p)
            return pb.DeleteResponse(pid=p.pid, exit_status=p.exit_status,
                                     exited_at=p.exited_at)
        try:
            self.runtime.delete(self.id, force=not p.reaped)
        except RuntimeFailure as e:
            if "does not exist" not in str(e) and "not exist" not in str(e):
                # The container is still there: the shim stays, for another try (or Shutdown).
                raise errors.RuntimeFailed(f"failed to delete task: {e}") from None
        # The runtime has let go of the container. From here on no failure may keep the shim
        # from answering and exiting: it would be left behind, serving a deleted container.
        try:
            if not p.reaped:
                # Deleted while created: the runtime killed the waiting init. Take its exit now
                # if it has been reaped, so the answer carries it.
                self._guarded("collecting exits", self.reaper.dispatch)
            if not p.reaped:
                self._guarded("recording the exit", lambda: p.reaped_exit(
                    128 + _signal.SIGKILL, time.time_ns()))
            for e in list(self.execs.values()):
                self._release(e)
            self.execs.clear()
            self._release(p)
            if self._oom is not None:
                self._guarded("stopping the oom watch", self._oom.stop)
                self._oom = None
            self._unmount_rootfs()
            self.events.publish(delete=pb.TaskDelete(container_id=self.id, id=self.id,
                                                     pid=p.pid, exit_status=p.exit_status,
                                                     exited_at=p.exited_at))
        finally:
            self._on_exit()
        return pb.DeleteResponse(pid=p.pid, exit_status=p.exit_status, exited_at=p.exited_at)

    def _release(self, p: Process) -> None:
        """A process is deleted: its waiters answered, its stdio closed, its pid file removed.
        Each step runs even when one before it failed, and p ends up deleted whatever happens,
        as a half-deleted process could never be deleted again."""
        self._guarded(f"publishing the exit of {p.describe()}", lambda: self._publish_now(p))
        self._guarded(f"closing the stdio of {p.describe()}", p.close_io)
        self._guarded(f"removing the pid file of {p.describe()}",
                      lambda: _remove(self._pid_file(p)))
        p.deleted = True

    def _guarded(self, what: str, step) -> None:
        try:
            step()
        except Exception:   # a bug: log it, and go on tearing down
            import traceback
            self.log(f"{what} failed:\n{traceback.format_exc()}")

    # -- exec ------------------------------------------------------------------------------
    def exec(self, req, conn, seq):
        init = self._container(req.id)
        eid = req.exec_id
        if not eid or len(eid) > 76 or eid[0] in "._-" or not set(eid) <= _EXEC_ID_CHARS:
            raise errors.InvalidArgument(f"exec id {eid!r}: must be 1-76 letters, digits, "
                                         "'.', '_' or '-', starting with a letter or digit")
        if eid in self.execs:
            raise errors.AlreadyExists(f"id {eid}: an exec with this id exists in {self.id}")
        if init.status == pb.PAUSED:
            raise errors.FailedPrecondition(f"cannot exec in a paused state ({self.id})")
        if init.reaped or init.status == pb.STOPPED:
            raise errors.FailedPrecondition(f"cannot exec in a stopped state ({self.id})")
        import json
        try:
            spec = json.loads(req.spec)
        except ValueError as e:
            raise errors.InvalidArgument(f"exec {eid}: process spec is not json: {e}") from None
        if not isinstance(spec, dict) or not spec.get("args"):
            raise errors.InvalidArgument(f"exec {eid}: process spec has no args")
        if req.terminal != bool(spec.get("terminal", False)):
            spec["terminal"] = req.terminal
        p = Process(self, eid, terminal=req.terminal, stdin=req.stdin, stdout=req.stdout,
                    stderr=req.stderr, spec=json.dumps(spec).encode())
        # Open stdio now, not at start: attach clients may come between exec and start.
        self._open_io(p)
        self.execs[eid] = p
        self.events.publish(exec_added=pb.TaskExecAdded(container_id=self.id, exec_id=eid))
        return pb.ExecResponse()

    # -- stdio -----------------------------------------------------------------------------
    def resize_pty(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if p.io is None or p.io.master < 0:
            return None     # containerd ignores a resize of a process without a terminal
        try:
            p.io.resize(req.width, req.height)
        except OSError as e:
            raise errors.Internal(f"resizing the terminal of {p.describe()}: {e}") from None
        return None

    def close_io(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if req.stdin and p.io is not None:
            p.io.close_stdin_after_sources()
        return None

    def attach(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if p.io is None:
            raise errors.FailedPrecondition(f"{p.describe()} has no stdio")
        if req.stdin and not p.io.stdin_open() and not p.io.done:
            raise errors.FailedPrecondition(f"{p.describe()}: stdin is not open")
        client = AttachClient(conn, p.io, stdin=req.stdin, stdout=req.stdout, stderr=req.stderr)
        conn.stream = client
        conn.limit = STREAM_BUFFER_LIMIT
        conn.reply(pb.Response(seq=seq))
        if req.stdin:
            p.io.add_stdin_source(client)
        p.io.add_client(client)
        return PARKED

    # -- queries and control ---------------------------------------------------------------
    def state(self, req, conn, seq):
        return self._process(req.id, req.exec_id).state()

    def kill(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        if p.exec_id:
            if not p.pid:
                raise errors.FailedPrecondition(f"process not created: {p.describe()}")
            if p.reaped:
                raise errors.NotFound(f"process already finished: {p.describe()}")
            try:
                os.kill(p.pid, req.signal)
            except ProcessLookupError:
                raise errors.NotFound(f"process already finished: {p.describe()}") from None
            except OSError as e:
                raise errors.InvalidArgument(f"kill {p.describe()}: {e}") from None
            return None
        if p.published and not req.all:
            raise errors.NotFound(f"process already finished: {p.describe()}")
        try:
            self.runtime.kill(self.id, req.signal, all_=req.all)
        except RuntimeFailure as e:
            text = str(e).lower()
            if "not running" in text or "no such process" in text or "already finished" in text:
                raise errors.NotFound(f"process already finished: {p.describe()}") from None
            if "does not exist" in text:
                raise errors.NotFound(f"no such container: {self.id}") from None
            raise errors.RuntimeFailed(f"unknown error after kill: {e}") from None
        return None

    def pids(self, req, conn, seq):
        init = self._container(req.id)
        if init.published:
            return pb.PidsResponse()
        try:
            pids = self.runtime.ps(self.id)
        except (RuntimeFailure, ValueError) as e:
            raise errors.RuntimeFailed(f"failed to list pids of {self.id}: {e}") from None
        by_pid = {e.pid: e.exec_id for e in self.execs.values() if e.pid}
        return pb.PidsResponse(processes=[pb.ProcessInfo(pid=pid, exec_id=by_pid.get(pid, ""))
                                          for pid in pids])

    def pause(self, req, conn, seq):
        p = self._container(req.id)
        if p.status != pb.RUNNING or p.reaped:
            state = "stopped" if p.reaped else STATUS_NAMES[p.status]
            raise errors.FailedPrecondition(f"cannot pause a {state} container ({self.id})")
        try:
            self.runtime.pause(self.id)
        except RuntimeFailure as e:
            raise errors.RuntimeFailed(f"OCI runtime pause failed: {e}") from None
        p.status = pb.PAUSED
        self.events.publish(paused=pb.TaskPaused(container_id=self.id))
        return None

    def resume(self, req, conn, seq):
        p = self._container(req.id)
        if p.status != pb.PAUSED:
            state = "stopped" if p.reaped else STATUS_NAMES[p.status]
            raise errors.FailedPrecondition(f"cannot resume a {state} container ({self.id})")
        try:
            self.runtime.resume(self.id)
        except RuntimeFailure as e:
            raise errors.RuntimeFailed(f"OCI runtime resume failed: {e}") from None
        p.status = pb.RUNNING
        self.events.publish(resumed=pb.TaskResumed(container_id=self.id))
        return None

    def update(self, req, conn, seq):
        p = self._container(req.id)
        if p.reaped:
            raise errors.FailedPrecondition(f"cannot update a stopped container ({self.id})")
        import json
        try:
            if not isinstance(json.loads(req.resources), dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise errors.InvalidArgument(f"update {self.id}: resources are not a json object: "
                                         f"{e}") from None
        path = os.path.join(self.bundle, "update-resources.json")
        try:
            _write_atomic(path, req.resources)
            self.runtime.update(self.id, path)
        except RuntimeFailure as e:
            raise errors.RuntimeFailed(f"OCI runtime update failed: {e}") from None
        finally:
            _remove(path)
        return None

    def wait(self, req, conn, seq):
        p = self._process(req.id, req.exec_id)
        p.wait(lambda: conn.reply(pb.Response(seq=seq, wait=pb.WaitResponse(
            exit_status=p.exit_status, exited_at=p.exited_at))))
        return PARKED

    def stats(self, req, conn, seq):
        p = self._container(req.id)
        if p.reaped:
            raise errors.FailedPrecondition(f"container {self.id} is not running")
        try:
            from lowrt import cgroups
        except ImportError as e:
            raise errors.Unimplemented(f"stats: the cgroups library is missing: {e}") from None
        try:
            values = cgroups.manager_for_pid(p.pid).stats()
        except OSError as e:
            raise errors.Internal(f"stats of {self.id}: {e}") from None
        # the one repeated message field, as messages
        values["blkio_devices"] = [pb.BlkioEntry(**e) for e in values.get("blkio_devices", ())]
        fields = pb.StatsResponse.__slots__
        resp = pb.StatsResponse(**{k: v for k, v in values.items() if k in fields})
        if not resp.timestamp:
            resp.timestamp = time.time_ns()
        return resp

    def connect(self, req, conn, seq):
        if req.id and req.id != self.id:
            raise errors.NotFound(f"container {req.id} not found: this shim serves {self.id}")
        pid = self.init.pid if self.init is not None and not self.init.deleted else 0
        return pb.ConnectResponse(shim_pid=os.getpid(), task_pid=pid, version=VERSION)

    def shutdown(self, req, conn, seq):
        live = self.init is not None and not self.init.deleted
        if not live or req.now:
            self._on_exit()
        return None

    def subscribe(self, req, conn, seq):
        conn.limit = STREAM_BUFFER_LIMIT
        conn.reply(pb.Response(seq=seq))
        self.events.subscribe(conn, req.after_seq)
        conn.on_close.append(lambda: self.events.unsubscribe(conn))
        return PARKED
