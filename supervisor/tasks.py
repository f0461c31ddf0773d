"""Tasks: a container's running processes, carried out by its shim.

The state of every process lives in the store; the shim is the source of truth about the
processes themselves. Each shim has one event connection (the "pump") that applies the shim's
events to the store in the shim's order, resuming after the last shim event applied.

Lifecycle events (create -> start -> exit -> delete; exec added -> started -> exit) are announced
exactly once per process, in that order: a process row records how far its announcements got
(`published`), and whichever learns of a step first, the pump or the RPC that caused it,
announces it in the same transaction that records it; the other finds it already done. Code that
reads a row, decides and writes runs with no await in between, so on this one event loop it is
atomic. Lifecycle RPCs on one task (create, start, exec, delete) are serialized by a per-task
lock, because they await the shim in the middle.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import weakref
from pathlib import Path

from google.protobuf import any_pb2

from protos.berth.shim.v1 import shim_pb2
from protos.containerd.events import task_pb2 as ev
from protos.containerd.types import mount_pb2
from supervisor import convert, errors, identifiers, shims
from supervisor.containers import Containers
from supervisor.errors import FailedPrecondition, InvalidArgument, NotFound
from supervisor.events import Exchange
from supervisor.shimconn import ShimClient, ShimGone
from supervisor.store import ProcessRecord, Store

log = logging.getLogger(__name__)

CREATED, STARTED, EXITED, DELETED = 1, 2, 3, 4
SHIM_DIED_STATUS = 255
PUMP_DRAIN_TIMEOUT = 2.0
STATUS_BY_SHIM = {shim_pb2.UNKNOWN: "unknown", shim_pb2.CREATED: "created",
                  shim_pb2.RUNNING: "running", shim_pb2.STOPPED: "stopped",
                  shim_pb2.PAUSED: "paused", shim_pb2.PAUSING: "pausing"}

Key = tuple[str, str]


class TaskState:
    """A process as Tasks.Get reports it."""

    __slots__ = ("container_id", "exec_id", "pid", "status", "stdin", "stdout", "stderr",
                 "terminal", "exit_status", "exited_at", "reason")

    def __init__(self, rec: ProcessRecord, **live):
        self.container_id = rec.container_id
        self.exec_id = rec.exec_id
        self.pid = rec.pid
        self.status = "created" if rec.status == "creating" else rec.status
        self.stdin, self.stdout, self.stderr, self.terminal = rec.stdin, rec.stdout, rec.stderr, rec.terminal
        self.exit_status, self.exited_at, self.reason = rec.exit_status, rec.exited_at, rec.reason
        for k, v in live.items():
            setattr(self, k, v)

    @property
    def id(self) -> str:
        return self.exec_id or self.container_id


class Tasks:
    def __init__(self, store: Store, exchange: Exchange, containers: Containers,
                 layout: shims.Layout, shim_binary: str):
        self.store = store
        self.exchange = exchange
        self.containers = containers
        self.layout = layout
        self.shim_binary = shim_binary
        # A task's lock lives as long as someone holds or awaits it (never two for one task).
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()
        self._clients: dict[Key, ShimClient] = {}
        self._pumps: dict[Key, asyncio.Task] = {}
        self._deleting: set[Key] = set()
        self._waiters: dict[tuple[str, str, str], list[asyncio.Future]] = {}

    # --- helpers ----------------------------------------------------------------------------

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _init(self, ns: str, cid: str) -> ProcessRecord:
        rec = self.store.get_process(ns, cid, "")
        if rec is None:
            self.containers.get(ns, cid)    # no container: say that, as containerd does
            raise NotFound(f"task {cid} not found")
        return rec

    def _process(self, ns: str, cid: str, exec_id: str) -> ProcessRecord:
        init = self._init(ns, cid)
        if not exec_id:
            return init
        rec = self.store.get_process(ns, cid, exec_id)
        if rec is None:
            raise NotFound(f"process {exec_id} of task {cid}: not found")
        return rec

    def _client(self, rec: ProcessRecord) -> ShimClient:
        key = (rec.namespace, rec.container_id)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = ShimClient(rec.socket)
        return client

    def _shim_args(self, rec: ProcessRecord) -> shims.ShimArgs:
        return shims.ShimArgs(self.shim_binary, rec.namespace, rec.container_id, rec.bundle,
                              rec.runtime, rec.runtime_root)

    def _shim_gone(self, init: ProcessRecord) -> bool:
        """The task's shim is known to be gone (cleaned up after it died)."""
        return init.status == "stopped" and init.shim_pid == 0

    async def _call(self, init: ProcessRecord, field: str, body) -> shim_pb2.Response:
        if self._shim_gone(init):
            raise FailedPrecondition(f"task {init.container_id}: its shim has exited "
                                     f"({init.reason or 'stopped'})")
        try:
            return await self._client(init).call(field, body)
        except ShimGone as e:
            raise errors.Unavailable(f"task {init.container_id}: shim unavailable: {e}") from None

    def _advance(self, rec: ProcessRecord, level: int, topic: str, event, **changes) -> bool:
        """Announce one lifecycle step of rec unless it was already announced, recording changes
        in the same transaction. Returns whether it announced."""
        if rec.published >= level:
            if changes:
                self.store.update_process(rec, **changes)
            return False
        self.exchange.publish(rec.namespace, topic, event,
                              apply=lambda: self.store.update_process(rec, published=level, **changes))
        return True

    def _record_exit(self, rec: ProcessRecord, pid: int, exit_status: int, exited_at: int,
                     reason: str = "", **extra) -> None:
        if rec.published >= EXITED or (rec.status == "stopped" and rec.exited_at):
            if extra:
                self.store.update_process(rec, **extra)
            self._resolve(rec)
            return
        exited_at = exited_at or time.time_ns()
        pid = pid or rec.pid
        if rec.published >= CREATED or rec.exec_id == "":
            event = ev.TaskExit(container_id=rec.container_id, id=rec.exec_id or rec.container_id,
                                pid=pid, exit_status=exit_status,
                                exited_at=convert.ns_to_timestamp(exited_at))
            self._advance(rec, EXITED, "/tasks/exit", event, status="stopped", pid=pid,
                          exit_status=exit_status, exited_at=exited_at, reason=reason, **extra)
        else:
            self.store.update_process(rec, status="stopped", pid=pid, exit_status=exit_status,
                                      exited_at=exited_at, reason=reason, **extra)
        self._resolve(rec)

    def _resolve(self, rec: ProcessRecord) -> None:
        for fut in self._waiters.pop(rec.key, []):
            if not fut.done():
                fut.set_result((rec.exit_status, rec.exited_at))

    # --- create -----------------------------------------------------------------------------

    async def create(self, ns: str, cid: str, *, rootfs: list[mount_pb2.Mount] = (), stdin: str = "",
                     stdout: str = "", stderr: str = "", terminal: bool = False) -> int:
        key = (ns, cid)
        async with self._lock(key):
            container = self.containers.get(ns, cid)
            if self.store.get_process(ns, cid, "") is not None:
                raise errors.AlreadyExists(f"task {cid}: already exists")
            runtime = self.containers.runtime_of(container)
            spec_any = any_pb2.Any()
            spec_any.ParseFromString(container.spec)
            spec = json.loads(spec_any.value)
            bundle = self.layout.bundle(ns, cid)
            socket = self.layout.socket(ns, cid)
            runtime_root = self.layout.runtime_root(runtime.name, ns)
            mounts = [{"type": m.type, "source": m.source, "target": m.target,
                       "options": list(m.options)} for m in rootfs]
            rec = ProcessRecord(namespace=ns, container_id=cid, exec_id="", status="creating",
                                stdin=stdin, stdout=stdout, stderr=stderr, terminal=terminal,
                                bundle=str(bundle), runtime=runtime.binary,
                                runtime_root=str(runtime_root), socket=str(socket), rootfs=mounts)
            if bundle.exists():  # left by a supervisor that died before recording it
                shims.remove_bundle(bundle)
            # Recorded before the shim starts: a supervisor that dies from here on finds it again.
            self.store.insert_process(rec)
            try:
                self._write_bundle(bundle, spec)
                socket.parent.mkdir(parents=True, exist_ok=True)
                runtime_root.mkdir(parents=True, exist_ok=True)
                await shims.start(self._shim_args(rec), str(socket))
                client = self._client(rec)
                self.store.update_process(rec, shim_pid=shims.read_pid_file(bundle / "shim.pid"))
                resp = await client.call("create", shim_pb2.CreateRequest(
                    id=cid, bundle=str(bundle), rootfs=[shim_pb2.Mount(**m) for m in mounts],
                    terminal=terminal, stdin=stdin, stdout=stdout, stderr=stderr))
            except BaseException as e:
                await self._abandon(rec)
                if isinstance(e, ShimGone):
                    raise errors.Unavailable(f"task {cid}: shim unavailable: {e}") from None
                if isinstance(e, OSError):
                    raise errors.Internal(f"create task {cid}: {e}") from None
                raise
            pid = resp.create.pid
            event = ev.TaskCreate(container_id=cid, bundle=str(bundle), rootfs=rootfs, pid=pid,
                                  io=ev.TaskIO(stdin=stdin, stdout=stdout, stderr=stderr,
                                               terminal=terminal))
            rec = self._init(ns, cid)
            self._advance(rec, CREATED, "/tasks/create", event, pid=pid,
                          status="created" if rec.status == "creating" else rec.status)
            self._start_pump(rec)
            return pid

    @staticmethod
    def _write_bundle(bundle: Path, spec: dict) -> None:
        bundle.mkdir(parents=True, mode=0o711)
        root = spec.setdefault("root", {})
        path = root.get("path") or "rootfs"
        root["path"] = path
        if not os.path.isabs(path):
            (bundle / path).mkdir(parents=True, mode=0o755, exist_ok=True)
        tmp = bundle / ".config.json.tmp"
        tmp.write_text(json.dumps(spec))
        tmp.rename(bundle / "config.json")

    async def _abandon(self, rec: ProcessRecord) -> None:
        """Undo a create that failed part way (or was cut short by a supervisor that died): no
        shim, container, mount, bundle or row is left."""
        key = (rec.namespace, rec.container_id)
        client = self._clients.pop(key, None) or ShimClient(rec.socket)
        if Path(rec.socket).exists():
            try:
                conn = (await client.call("connect", shim_pb2.ConnectRequest(id=rec.container_id)))
                rec.shim_pid = rec.shim_pid or conn.connect.shim_pid
                await client.call("shutdown", shim_pb2.ShutdownRequest(id=rec.container_id, now=True))
            except errors.SupervisorError:
                pass
        client.close()
        await self._wait_shim_exit(rec)
        if Path(rec.bundle, "config.json").exists():
            await shims.cleanup(self._shim_args(rec))   # the runtime's delete --force, unmount
        try:
            shims.remove_bundle(Path(rec.bundle))
        except OSError as e:
            log.error("abandon task %s/%s: %s", rec.namespace, rec.container_id, e)
        self.store.delete_task(rec.namespace, rec.container_id)

    async def _wait_shim_exit(self, rec: ProcessRecord, timeout: float = 5.0) -> None:
        """Wait for the shim process to be gone; kill it if it lingers."""
        pid = rec.shim_pid or shims.read_pid_file(Path(rec.bundle) / "shim.pid")
        marker = f"--bundle\0{rec.bundle}\0"
        if shims.process_alive(pid, marker):
            if not await shims.wait_exit(pid, timeout):
                log.warning("shim %d of task %s/%s did not exit; killing it", pid, rec.namespace,
                            rec.container_id)
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
                await shims.wait_exit(pid, timeout)
        try:
            os.unlink(rec.socket)
        except OSError:
            pass

    # --- the shim's event stream ----------------------------------------------------------

    def _start_pump(self, rec: ProcessRecord) -> None:
        key = (rec.namespace, rec.container_id)
        old = self._pumps.get(key)
        if old is not None and not old.done():
            return
        self._pumps[key] = asyncio.ensure_future(self._pump(key))

    async def _pump(self, key: Key) -> None:
        ns, cid = key
        failures = 0
        while True:
            rec = self.store.get_process(ns, cid, "")
            if rec is None or self._shim_gone(rec):
                return
            try:
                expected = rec.shim_seq + 1
                async for event in self._client(rec).subscribe(rec.shim_seq):
                    if expected and event.seq > expected:
                        # The shim's ring moved past what we last applied: those events are
                        # gone, so take the processes' states from the shim instead.
                        log.warning("task %s/%s: shim events %d..%d lost; reconciling", ns, cid,
                                    expected, event.seq - 1)
                        await self._reconcile(ns, cid)
                    expected = 0
                    self.apply_shim_event(ns, cid, event)
                    failures = 0
            except errors.SupervisorError as e:
                log.debug("events of task %s/%s: %s", ns, cid, e)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("events of task %s/%s", ns, cid)
            if key in self._deleting:
                return
            rec = self.store.get_process(ns, cid, "")
            if rec is None:
                return
            # The stream ended without a delete: the shim is dying, or went away for a moment.
            failures += 1
            marker = f"--bundle\0{rec.bundle}\0"
            if failures <= 5 and shims.process_alive(rec.shim_pid, marker):
                await asyncio.sleep(0.05 * failures)
                continue
            await self._shim_lost(rec, "shim exited unexpectedly")
            return

    async def _reconcile(self, ns: str, cid: str) -> None:
        """Bring every process's record in line with what the shim says of it now."""
        init = self.store.get_process(ns, cid, "")
        if init is None:
            return
        for rec in self.store.list_processes(ns, container_id=cid):
            if rec.status == "stopped":
                continue
            try:
                st = (await self._client(init).call(
                    "state", shim_pb2.StateRequest(id=cid, exec_id=rec.exec_id))).state
            except NotFound:
                if rec.exec_id and rec.status == "creating":
                    self.store.delete_process(*rec.key)     # its Exec never reached the shim
                elif rec.exec_id:
                    self._record_exit(rec, rec.pid, SHIM_DIED_STATUS, 0,
                                      "the shim no longer knows this process")
                continue
            except errors.SupervisorError:
                return
            rec = self.store.get_process(*rec.key)
            if rec is None:
                continue
            if st.status == shim_pb2.STOPPED and st.exited_at:
                if rec.published < STARTED and rec.published >= CREATED and st.pid:
                    self._mark_started(rec, st.pid)
                    rec = self.store.get_process(*rec.key)
                self._record_exit(rec, st.pid, st.exit_status, st.exited_at, st.reason)
            elif st.status in (shim_pb2.RUNNING, shim_pb2.PAUSED) and rec.published < STARTED:
                if rec.published < CREATED and rec.exec_id:
                    self._advance(rec, CREATED, "/tasks/exec-added",
                                  ev.TaskExecAdded(container_id=cid, exec_id=rec.exec_id),
                                  status="created")
                    rec = self.store.get_process(*rec.key)
                self._mark_started(rec, st.pid)
            elif rec.status == "creating" and rec.exec_id:
                self._advance(rec, CREATED, "/tasks/exec-added",
                              ev.TaskExecAdded(container_id=cid, exec_id=rec.exec_id),
                              status="created")

    def apply_shim_event(self, ns: str, cid: str, event: shim_pb2.Event) -> None:
        """Apply one shim event (in the shim's order) to the store, announcing what it means."""
        init = self.store.get_process(ns, cid, "")
        if init is None or event.seq <= init.shim_seq:
            return
        kind = event.WhichOneof("event")
        body = getattr(event, kind) if kind else None
        with self.store.tx():
            self.store.update_process(init, shim_seq=event.seq)
            if kind == "create":
                ce = ev.TaskCreate(container_id=cid, bundle=init.bundle, pid=body.pid,
                                   io=ev.TaskIO(stdin=init.stdin, stdout=init.stdout,
                                                stderr=init.stderr, terminal=init.terminal),
                                   rootfs=[mount_pb2.Mount(**m) for m in init.rootfs])
                self._advance(init, CREATED, "/tasks/create", ce, pid=body.pid,
                              status="created" if init.status == "creating" else init.status)
            elif kind == "start":
                self._mark_started(init, body.pid)
            elif kind == "exit":
                rec = init if body.id in ("", cid) else self.store.get_process(ns, cid, body.id)
                if rec is not None:
                    self._record_exit(rec, body.pid, body.exit_status, body.exited_at)
            elif kind == "exec_added":
                rec = self.store.get_process(ns, cid, body.exec_id)
                if rec is not None:
                    self._advance(rec, CREATED, "/tasks/exec-added",
                                  ev.TaskExecAdded(container_id=cid, exec_id=body.exec_id),
                                  status="created" if rec.status == "creating" else rec.status)
            elif kind == "exec_started":
                rec = self.store.get_process(ns, cid, body.exec_id)
                if rec is not None:
                    self._mark_started(rec, body.pid)
            elif kind == "oom":
                self.exchange.publish(ns, "/tasks/oom", ev.TaskOOM(container_id=cid))
            # paused/resumed are announced by the Pause/Resume calls; delete by Delete.

    def _mark_started(self, rec: ProcessRecord, pid: int) -> None:
        status = "running" if rec.status in ("creating", "created") else rec.status
        if rec.exec_id:
            event = ev.TaskExecStarted(container_id=rec.container_id, exec_id=rec.exec_id, pid=pid)
            topic = "/tasks/exec-started"
        else:
            event = ev.TaskStart(container_id=rec.container_id, pid=pid)
            topic = "/tasks/start"
        self._advance(rec, STARTED, topic, event, pid=pid, status=status)

    async def _shim_lost(self, init: ProcessRecord, reason: str) -> None:
        """The shim died: stop the task with the init's exit status from init.exit (255 when the
        shim died before recording one) and a reason, answer the waiters, then clean up after the
        shim (`berth-shim delete`: the runtime's delete --force, unmount)."""
        ns, cid = init.namespace, init.container_id
        log.warning("task %s/%s: %s", ns, cid, reason)
        client = self._clients.pop((ns, cid), None)
        if client is not None:
            client.close()
        recorded = shims.read_exit_file(Path(init.bundle))
        with self.store.tx():
            for rec in self.store.list_processes(ns, container_id=cid):
                if rec.exec_id and rec.status != "stopped":
                    self._record_exit(rec, rec.pid, SHIM_DIED_STATUS, 0, reason)
            init = self.store.get_process(ns, cid, "")
            if init is not None and not (init.status == "stopped" and init.exited_at):
                if recorded is None:
                    self._record_exit(init, init.pid, SHIM_DIED_STATUS, 0,
                                      f"{reason}: it died before the container's exit was recorded")
                else:
                    self._record_exit(init, recorded["pid"], recorded["exit_status"],
                                      recorded["exited_at"], reason)
        if init is None:
            return
        await shims.cleanup(self._shim_args(init))
        init = self.store.get_process(ns, cid, "")
        if init is not None:
            self.store.update_process(init, shim_pid=0, reason=init.reason or reason)
            await self._wait_shim_exit(init, 1.0)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, ns: str, cid: str, exec_id: str = "") -> int:
        async with self._lock((ns, cid)):
            init = self._init(ns, cid)
            rec = self._process(ns, cid, exec_id)
            try:
                resp = await self._call(init, "start", shim_pb2.StartRequest(id=cid, exec_id=exec_id))
            except errors.SupervisorError:
                await self._settle_failed_start(init, rec)
                raise
            pid = resp.start.pid
            rec = self.store.get_process(*rec.key)
            if rec is not None:
                self._mark_started(rec, pid)
            return pid

    async def _settle_failed_start(self, init: ProcessRecord, rec: ProcessRecord) -> None:
        """A process the runtime could not start is stopped for good (the shim announces no exit
        for it): record that, so its waiters get an answer."""
        try:
            st = (await self._client(init).call(
                "state", shim_pb2.StateRequest(id=rec.container_id, exec_id=rec.exec_id))).state
        except errors.SupervisorError:
            return
        rec = self.store.get_process(*rec.key)
        if rec is not None and st.status == shim_pb2.STOPPED:
            self._record_exit(rec, st.pid, st.exit_status or SHIM_DIED_STATUS,
                              st.exited_at or time.time_ns(), st.reason or "start failed")

    async def delete(self, ns: str, cid: str) -> tuple[int, int, int]:
        """Delete the task: the shim deletes the container and exits; the bundle goes. Returns
        (pid, exit_status, exited_at)."""
        key = (ns, cid)
        async with self._lock(key):
            init = self._init(ns, cid)
            exit_info = None
            # Marked before the shim is asked: it exits once it has answered, and its event
            # stream may end before this coroutine resumes; the pump must take that end for the
            # delete, not for a shim that died (which would run `berth-shim delete` after it).
            self._deleting.add(key)
            try:
                if not self._shim_gone(init):
                    try:  # the shim refuses a running or paused task (FailedPrecondition)
                        d = (await self._client(init).call(
                            "delete", shim_pb2.DeleteRequest(id=cid))).delete
                        exit_info = (d.pid, d.exit_status, d.exited_at)
                    except ShimGone as e:
                        await self._shim_lost(init, f"shim unavailable: {e}")
            except BaseException:
                self._deleting.discard(key)
                self._start_pump(init)  # had its stream ended meanwhile, the shim died: see to it
                raise
            try:
                await self._stop_shim(key)
                init = self._init(ns, cid)
                if exit_info is not None:
                    self._record_exit(init, *exit_info)
                    init = self._init(ns, cid)
                pid, status, exited_at = init.pid, init.exit_status, init.exited_at
                execs = self.store.list_processes(ns, container_id=cid)
                event = ev.TaskDelete(container_id=cid, id=cid, pid=pid, exit_status=status,
                                      exited_at=convert.ns_to_timestamp(exited_at))
                self.exchange.publish(ns, "/tasks/delete", event,
                                      apply=lambda: self.store.delete_task(ns, cid))
                for rec in execs:
                    self._resolve(rec)
                try:
                    shims.remove_bundle(Path(init.bundle))
                except OSError as e:
                    log.error("delete task %s/%s: %s", ns, cid, e)
            finally:
                self._deleting.discard(key)
            return pid, status, exited_at

    async def _stop_shim(self, key: Key) -> None:
        """Ask the shim to exit, let the pump drain the events it still had, then forget both."""
        init = self.store.get_process(*key)
        client = self._clients.get(key)
        if client is not None and init is not None and not self._shim_gone(init):
            try:
                await client.call("shutdown", shim_pb2.ShutdownRequest(id=key[1]))
            except errors.SupervisorError:
                pass
        pump = self._pumps.pop(key, None)
        if pump is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pump), PUMP_DRAIN_TIMEOUT)
            except (asyncio.TimeoutError, Exception):
                pump.cancel()
        client = self._clients.pop(key, None)
        if client is not None:
            client.close()
        if init is not None:   # it is on its way out (it exits after Delete): see it gone
            await self._wait_shim_exit(init)

    async def delete_process(self, ns: str, cid: str, exec_id: str) -> tuple[int, int, int]:
        if not exec_id:
            raise InvalidArgument(f"delete process of task {cid}: exec id must not be empty")
        async with self._lock((ns, cid)):
            init = self._init(ns, cid)
            rec = self._process(ns, cid, exec_id)
            if not self._shim_gone(init):
                try:
                    d = (await self._client(init).call(
                        "delete", shim_pb2.DeleteRequest(id=cid, exec_id=exec_id))).delete
                    rec = self.store.get_process(*rec.key)
                    if rec.published >= STARTED:
                        self._record_exit(rec, d.pid, d.exit_status, d.exited_at)
                    else:
                        self.store.update_process(rec, pid=d.pid, exit_status=d.exit_status,
                                                  exited_at=d.exited_at, status="stopped")
                except ShimGone as e:
                    raise errors.Unavailable(f"task {cid}: shim unavailable: {e}") from None
            rec = self.store.get_process(*rec.key)
            self.store.delete_process(ns, cid, exec_id)
            self._resolve(rec)
            return rec.pid, rec.exit_status, rec.exited_at

    async def exec(self, ns: str, cid: str, exec_id: str, spec: any_pb2.Any, *, terminal: bool = False,
                   stdin: str = "", stdout: str = "", stderr: str = "") -> None:
        if not exec_id:
            raise InvalidArgument("exec id cannot be empty")
        identifiers.validate(exec_id, f"exec id of task {cid}")
        process = _parse_process(spec, f"exec {exec_id} in task {cid}")
        async with self._lock((ns, cid)):
            init = self._init(ns, cid)
            if init.status == "stopped":
                raise FailedPrecondition(f"task {cid}: cannot exec in a stopped task")
            if self.store.get_process(ns, cid, exec_id) is not None:
                raise errors.AlreadyExists(f"exec {exec_id} in task {cid}: already exists")
            rec = ProcessRecord(namespace=ns, container_id=cid, exec_id=exec_id, status="creating",
                                stdin=stdin, stdout=stdout, stderr=stderr, terminal=terminal)
            self.store.insert_process(rec)
            try:
                await self._call(init, "exec", shim_pb2.ExecRequest(
                    id=cid, exec_id=exec_id, terminal=terminal, stdin=stdin, stdout=stdout,
                    stderr=stderr, spec=json.dumps(process).encode()))
            except BaseException:
                self.store.delete_process(ns, cid, exec_id)
                raise
            rec = self.store.get_process(ns, cid, exec_id)
            if rec is not None:
                self._advance(rec, CREATED, "/tasks/exec-added",
                              ev.TaskExecAdded(container_id=cid, exec_id=exec_id),
                              status="created" if rec.status == "creating" else rec.status)

    # --- queries --------------------------------------------------------------------------

    async def get(self, ns: str, cid: str, exec_id: str = "") -> TaskState:
        init = self._init(ns, cid)
        rec = self._process(ns, cid, exec_id)
        if rec.status == "stopped" or self._shim_gone(init) or (ns, cid) in self._deleting:
            return TaskState(rec)
        try:
            st = (await self._client(init).call(
                "state", shim_pb2.StateRequest(id=cid, exec_id=exec_id))).state
        except ShimGone:
            return TaskState(self.store.get_process(*rec.key) or rec)
        except NotFound:
            rec = self.store.get_process(*rec.key)
            if rec is None:
                raise
            return TaskState(rec)
        rec = self.store.get_process(*rec.key) or rec
        if st.status == shim_pb2.STOPPED and rec.status == "stopped":
            return TaskState(rec)
        return TaskState(rec, pid=st.pid or rec.pid, status=STATUS_BY_SHIM.get(st.status, "unknown"),
                         exit_status=st.exit_status, exited_at=st.exited_at,
                         reason=st.reason or rec.reason)

    async def list(self, ns: str) -> list[TaskState]:
        inits = self.store.list_processes(ns, exec_id="")
        results = await asyncio.gather(*(self.get(ns, r.container_id) for r in inits),
                                       return_exceptions=True)
        return [r for r in results if isinstance(r, TaskState)]

    async def wait(self, ns: str, cid: str, exec_id: str = "") -> tuple[int, int]:
        """(exit_status, exited_at) once the process has exited."""
        rec = self._process(ns, cid, exec_id)
        if rec.status == "stopped" and rec.exited_at:
            return rec.exit_status, rec.exited_at
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(rec.key, []).append(fut)
        try:
            return await fut
        finally:
            waiters = self._waiters.get(rec.key)
            if waiters and fut in waiters:
                waiters.remove(fut)

    async def kill(self, ns: str, cid: str, signal: int, *, exec_id: str = "", all: bool = False) -> None:
        init = self._init(ns, cid)
        rec = self._process(ns, cid, exec_id)
        if self._shim_gone(init) or (rec.status == "stopped" and rec.exited_at):
            raise NotFound(f"task {cid}: process {rec.exec_id or rec.pid} already finished")
        await self._call(init, "kill", shim_pb2.KillRequest(id=cid, exec_id=exec_id, signal=signal,
                                                            all=all))

    async def pause(self, ns: str, cid: str) -> None:
        init = self._init(ns, cid)
        await self._call(init, "pause", shim_pb2.PauseRequest(id=cid))
        init = self._init(ns, cid)
        self.exchange.publish(ns, "/tasks/paused", ev.TaskPaused(container_id=cid),
                              apply=lambda: init.status in ("running", "pausing")
                              and self.store.update_process(init, status="paused"))

    async def resume(self, ns: str, cid: str) -> None:
        init = self._init(ns, cid)
        await self._call(init, "resume", shim_pb2.ResumeRequest(id=cid))
        init = self._init(ns, cid)
        self.exchange.publish(ns, "/tasks/resumed", ev.TaskResumed(container_id=cid),
                              apply=lambda: init.status in ("paused", "pausing")
                              and self.store.update_process(init, status="running"))

    async def resize_pty(self, ns: str, cid: str, width: int, height: int, exec_id: str = "") -> None:
        init = self._init(ns, cid)
        self._process(ns, cid, exec_id)
        await self._call(init, "resize_pty", shim_pb2.ResizePtyRequest(
            id=cid, exec_id=exec_id, width=width, height=height))

    async def close_io(self, ns: str, cid: str, exec_id: str = "", stdin: bool = True) -> None:
        init = self._init(ns, cid)
        self._process(ns, cid, exec_id)
        if stdin:
            await self._call(init, "close_io", shim_pb2.CloseIORequest(id=cid, exec_id=exec_id,
                                                                      stdin=True))

    async def pids(self, ns: str, cid: str) -> list[shim_pb2.ProcessInfo]:
        init = self._init(ns, cid)
        return list((await self._call(init, "pids", shim_pb2.PidsRequest(id=cid))).pids.processes)

    async def update(self, ns: str, cid: str, resources: any_pb2.Any) -> None:
        init = self._init(ns, cid)
        if resources.type_url.rsplit("/", 1)[-1] != "LinuxResources":
            raise InvalidArgument(f'update task {cid}: resources have type "{resources.type_url}", '
                                  f"want {convert.RESOURCES_URL}")
        try:
            value = json.loads(resources.value)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"update task {cid}: resources are not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise InvalidArgument(f"update task {cid}: resources must be a JSON object")
        await self._call(init, "update", shim_pb2.UpdateRequest(id=cid, resources=resources.value))

    async def stats(self, ns: str, cid: str) -> shim_pb2.StatsResponse:
        init = self._init(ns, cid)
        return (await self._call(init, "stats", shim_pb2.StatsRequest(id=cid))).stats

    async def attach(self, ns: str, cid: str, exec_id: str, *, stdin: bool, stdout: bool,
                     stderr: bool):
        """A shim connection in attach mode, or None when the process's stdio is long gone."""
        init = self._init(ns, cid)
        self._process(ns, cid, exec_id)
        if self._shim_gone(init):
            return None
        try:
            return await self._client(init).attach(shim_pb2.AttachRequest(
                id=cid, exec_id=exec_id, stdin=stdin, stdout=stdout, stderr=stderr))
        except ShimGone as e:
            raise errors.Unavailable(f"task {cid}: shim unavailable: {e}") from None

    # --- restart --------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a (re)start: re-adopt every live shim, learn what happened while we were away,
        clean up after dead shims and half-made tasks, and stop shims nobody owns."""
        inits = self.store.list_processes(exec_id="")
        await asyncio.gather(*(self._recover_one(rec) for rec in inits))
        known = {(r.namespace, r.container_id) for r in self.store.list_processes(exec_id="")}
        for ns, cid, bundle in self.layout.bundles():
            if (ns, cid) not in known:
                await self._remove_orphan(ns, cid, bundle)

    async def _recover_one(self, init: ProcessRecord) -> None:
        ns, cid = init.namespace, init.container_id
        if init.status == "creating":
            log.info("task %s/%s: create did not finish; undoing it", ns, cid)
            await self._abandon(init)
            return
        if self._shim_gone(init):
            return
        client = self._client(init)
        try:
            conn = (await client.call("connect", shim_pb2.ConnectRequest(id=cid))).connect
        except errors.SupervisorError as e:
            await self._shim_lost(init, f"shim gone while the supervisor was down ({e})")
            return
        if conn.shim_pid and conn.shim_pid != init.shim_pid:
            self.store.update_process(init, shim_pid=conn.shim_pid)
        for rec in self.store.list_processes(ns, container_id=cid):
            if rec.exec_id and rec.status == "creating":   # an Exec cut short by our death
                try:
                    await client.call("state", shim_pb2.StateRequest(id=cid, exec_id=rec.exec_id))
                except NotFound:
                    self.store.delete_process(*rec.key)
                except errors.SupervisorError:
                    pass
        self._start_pump(init)
        log.info("task %s/%s: re-adopted shim %d", ns, cid, conn.shim_pid)

    async def _remove_orphan(self, ns: str, cid: str, bundle: Path) -> None:
        """A bundle no task row owns: stop its shim and container, remove it."""
        log.warning("removing orphaned bundle %s", bundle)
        rec = ProcessRecord(namespace=ns, container_id=cid, exec_id="", bundle=str(bundle),
                            socket=str(self.layout.socket(ns, cid)),
                            shim_pid=shims.read_pid_file(bundle / "shim.pid"))
        client = ShimClient(rec.socket)
        try:
            await client.call("kill", shim_pb2.KillRequest(id=cid, signal=9, all=True))
        except errors.SupervisorError:
            pass
        try:
            await client.call("shutdown", shim_pb2.ShutdownRequest(id=cid, now=True))
        except errors.SupervisorError:
            pass
        client.close()
        runtime = self._guess_runtime(ns, cid)
        if runtime:
            rec.runtime, rec.runtime_root = runtime
            await shims.cleanup(self._shim_args(rec))
        await self._wait_shim_exit(rec)
        try:
            shims.remove_bundle(bundle)
        except OSError as e:
            log.error("orphaned bundle %s: %s", bundle, e)

    def _guess_runtime(self, ns: str, cid: str) -> tuple[str, str] | None:
        """(binary, runtime root) of the runtime directory holding state for cid, if any."""
        base = self.layout.root / "runtime"
        if not base.is_dir():
            return None
        from supervisor.runtimes import find_program
        for rdir in base.iterdir():
            if (rdir / ns / cid).exists():
                binary = find_program(rdir.name)
                if binary:
                    return binary, str(rdir / ns)
        return None

    async def close(self) -> None:
        """Stop following the shims (they keep running: they outlive the supervisor)."""
        for pump in self._pumps.values():
            pump.cancel()
        for pump in list(self._pumps.values()):
            try:
                await pump
            except BaseException:
                pass
        self._pumps.clear()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.cancel()


def _parse_process(spec: any_pb2.Any, what: str) -> dict:
    if spec.type_url.rsplit("/", 1)[-1] != "Process":
        raise InvalidArgument(f'{what}: spec has type "{spec.type_url}", want {convert.PROCESS_URL}')
    try:
        process = json.loads(spec.value)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"{what}: process spec is not valid JSON: {e}") from None
    if not isinstance(process, dict):
        raise InvalidArgument(f"{what}: process spec must be a JSON object")
    args = process.get("args")
    if not (isinstance(args, list) and args and all(isinstance(a, str) for a in args)):
        raise InvalidArgument(f"{what}: process spec needs args, a non-empty list of strings")
    return process
