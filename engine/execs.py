"""Exec instances: `docker exec` as dockerd runs it. Create only records what to run (in memory,
as dockerd: they do not survive berthd); start makes the process through the supervisor (Exec,
Attach, Start on the container's task), a watcher records its exit code, deletes the process from
the supervisor and logs exec_die. Finished records stay for `GET /exec/{id}/json` a while."""
from __future__ import annotations

import asyncio
import logging
import os
import signal as signals
import time
from dataclasses import dataclass, field

from supervisor import errors as sup_errors

from . import health, spec as oci_spec
from .container import Container
from .containers import (EXIT_EACCES, EXIT_NOT_FOUND, Containers, exit_code_for_start_error)
from .detach_keys import InvalidDetachKeys, parse as parse_detach_keys
from .errors import Conflict, EngineError, Internal, InvalidParameter, NotFound
from .events import EventLog

log = logging.getLogger("berthd.execs")

KEEP_FINISHED = 300.0       # seconds a finished exec stays inspectable (dockerd: 5-10 min)
READY_TIMEOUT = 10.0        # a resize waits this long for the exec to start, as dockerd
STREAMS_WAIT = 2.0          # after an exit, its output may trail this long (dockerd's Wait)
KILL_WAIT = 10.0            # a probe killed at its timeout or cancelled: wait for its exit


@dataclass
class Exec:
    id: str
    container_id: str
    entrypoint: str
    args: list[str]
    tty: bool
    open_stdin: bool
    open_stdout: bool
    open_stderr: bool
    user: str
    privileged: bool
    working_dir: str
    env: list[str]
    console_size: list | None
    detach_keys: str
    probe: bool = False                         # a healthcheck's, not a user's
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    finished_at: float = 0.0                   # monotonic
    started: asyncio.Event = field(default_factory=asyncio.Event)    # start was tried
    done: asyncio.Event = field(default_factory=asyncio.Event)       # exit code recorded
    watcher: asyncio.Task | None = None

    @property
    def command(self) -> str:
        return " ".join([self.entrypoint, *self.args])

    def inspect(self) -> dict:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.entrypoint,
                              "arguments": self.args, "privileged": self.privileged,
                              "user": self.user},
            "OpenStdin": self.open_stdin, "OpenStderr": self.open_stderr,
            "OpenStdout": self.open_stdout, "CanRemove": False,
            "ContainerID": self.container_id, "DetachKeys": self.detach_keys, "Pid": self.pid,
        }


def _active(c: Container, ref: str) -> None:
    """dockerd's getActiveContainer: exec needs a running container, not paused or restarting."""
    if not c.running:
        raise Conflict(f"container {c.id} is not running")
    if c.paused:
        raise Conflict(f"Container {ref} is paused, unpause the container before exec")
    if c.restarting:
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")


class Execs:
    def __init__(self, containers: Containers, events: EventLog):
        self.containers = containers
        self.link = containers.link
        self.events = events
        self.by_id: dict[str, Exec] = {}
        # healthcheck probes run through this same exec path, as in dockerd
        containers.health.runner = self.run_probe
        self._abandoned: set[asyncio.Task] = set()    # held: the loop keeps only weak refs

    def create(self, c: Container, ref: str, body: dict) -> Exec:
        """An exec of body (an ExecOptions whose types body_types has checked) in c."""
        cmd = body.get("Cmd") or []
        if not cmd:
            raise InvalidParameter("No exec command specified")
        _active(c, ref)
        user = body.get("User") or ""
        if user:
            # checked now, for an early error, as dockerd does (and again at start)
            oci_spec.resolve_user(user, self.containers.rootfs_dirs(c),
                                  c.host_config.get("GroupAdd") or [])
        tty = bool(body.get("Tty"))
        try:
            parse_detach_keys(body.get("DetachKeys"))   # refused at create, as dockerd
        except InvalidDetachKeys as e:
            raise InvalidParameter(str(e)) from None
        env = oci_spec.replace_or_append_env(
            oci_spec.process_env({**c.config, "Tty": tty}), body.get("Env") or [])
        self._forget_old()
        eid = os.urandom(32).hex()
        ex = Exec(id=eid, container_id=c.id, entrypoint=cmd[0], args=list(cmd[1:]), tty=tty,
                  open_stdin=bool(body.get("AttachStdin")),
                  open_stdout=bool(body.get("AttachStdout")),
                  open_stderr=bool(body.get("AttachStderr")),
                  user=user or c.config.get("User") or "",
                  privileged=bool(body.get("Privileged")),
                  working_dir=body.get("WorkingDir") or c.config.get("WorkingDir") or "",
                  env=env, console_size=body.get("ConsoleSize"),
                  detach_keys=body.get("DetachKeys") or "")
        self.by_id[eid] = ex
        c.execs.add(eid)
        self.events.container(c, f"exec_create: {ex.command}", execID=eid)
        return ex

    def _forget_old(self) -> None:
        now = time.monotonic()
        for eid, ex in list(self.by_id.items()):
            c = self.containers.by_id.get(ex.container_id)
            if c is None or (ex.exit_code is None and eid not in c.execs) or (
                    ex.exit_code is not None and now - ex.finished_at > KEEP_FINISHED):
                del self.by_id[eid]

    def get(self, eid: str) -> Exec:
        """An exec whose container is gone, or one never finished when its container
        stopped, is no more (as in dockerd); a finished one stays for its exit code."""
        ex = self.by_id.get(eid)
        c = self.containers.by_id.get(ex.container_id) if ex else None
        if c is None or (ex.exit_code is None and eid not in c.execs):
            raise NotFound(f"No such exec instance: {eid}")
        return ex

    def container_of(self, ex: Exec) -> Container:
        c = self.containers.by_id.get(ex.container_id)
        if c is None:
            raise NotFound(f"No such container: {ex.id}")
        return c

    def check_startable(self, ex: Exec) -> Container:
        """dockerd's ExecExists: what is refused with a status before the stream is set up."""
        c = self.container_of(ex)
        _active(c, c.id)
        return c

    async def start(self, ex: Exec, *, console_size: list | None, attach: bool):
        """Start the process; with attach, return the supervisor attachment to its stdio
        (made before the start, so no output is missed). A process that cannot start records
        126/127 (or 128) as its exit code, as dockerd, and raises."""
        c = self.check_startable(ex)
        if ex.exit_code is not None:
            raise Conflict(f"exec command {ex.id} has already run")
        if ex.running:
            raise Conflict(f"exec command {ex.id} is already running")
        ex.running = True
        self.events.container(c, f"exec_start: {ex.command}", execID=ex.id)
        client = await self.link.ready_client()
        stdin = attach and ex.open_stdin
        att = None
        try:
            process = await self._process_spec(c, ex, console_size)
            await client.exec(c.id, ex.id, process, terminal=ex.tty,
                              stdin="berth-attach:?once=1" if stdin else "")
            if attach:
                att = await client.attach(c.id, ex.id, stdin=stdin, stdout=ex.open_stdout,
                                          stderr=ex.open_stderr)
            ex.pid = await client.start(c.id, ex.id)
        except (sup_errors.SupervisorError, EngineError) as e:
            message = e.message
            code = exit_code_for_start_error(message) if isinstance(
                e, sup_errors.SupervisorError) else EXIT_EACCES
            if att is not None:
                att.close()
            await self._delete_process(c.id, ex.id)
            self._finish(c, ex, code)
            log.info("exec %s in %s could not start: %s", ex.id[:12], c.id[:12], message)
            if code in (EXIT_EACCES, EXIT_NOT_FOUND):
                raise InvalidParameter(message) from None
            raise Internal(message) from None
        finally:
            ex.started.set()
        ex.watcher = asyncio.get_running_loop().create_task(self._watch(c, ex))
        return att

    async def _process_spec(self, c: Container, ex: Exec, console_size: list | None) -> dict:
        """The container's own process (capabilities, rlimits, ...) with the exec's command,
        environment, directory, user and terminal, as dockerd merges them."""
        client = await self.link.ready_client()
        try:
            spec = (await client.get_container(c.id)).get("spec") or {}
        except sup_errors.NotFound:
            raise Conflict(f"container {c.id} is not running") from None
        process = dict(spec.get("process") or {})
        process.update(args=[ex.entrypoint, *ex.args], env=ex.env, terminal=ex.tty,
                       cwd=ex.working_dir or "/")
        process.pop("consoleSize", None)
        size = console_size or ex.console_size
        if ex.tty and size and any(size):
            process["consoleSize"] = {"height": size[0], "width": size[1]}
        if ex.user:
            process["user"] = oci_spec.resolve_user(ex.user, self.containers.rootfs_dirs(c),
                                                    c.host_config.get("GroupAdd") or [])
        return process

    async def _watch(self, c: Container, ex: Exec) -> None:
        delay = 0.1
        while True:
            try:
                client = await self.link.ready_client()
                status, _ = await client.wait(c.id, ex.id)
                break
            except sup_errors.NotFound:
                status = 255 if c.running else 137   # gone with its container
                break
            except sup_errors.SupervisorError as e:
                log.debug("waiting on exec %s: %s; retrying", ex.id[:12], e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self._finish(c, ex, status)
        await self._delete_process(c.id, ex.id)

    def _finish(self, c: Container, ex: Exec, code: int) -> None:
        ex.exit_code = code
        ex.running = False
        ex.finished_at = time.monotonic()
        c.execs.discard(ex.id)
        ex.done.set()
        self.events.container(c, "exec_die", execID=ex.id, exitCode=str(code))

    async def _delete_process(self, cid: str, eid: str) -> None:
        try:
            client = await self.link.ready_client()
            await client.delete_process(cid, eid)
        except sup_errors.NotFound:
            pass
        except sup_errors.SupervisorError as e:
            log.warning("cannot delete exec %s of %s: %s", eid[:12], cid[:12], e)

    async def resize(self, ex: Exec, height: int, width: int) -> None:
        c = self.check_startable(ex)
        try:
            await asyncio.wait_for(ex.started.wait(), READY_TIMEOUT)
        except asyncio.TimeoutError:
            raise Internal("timeout waiting for exec session ready") from None
        if not ex.pid:
            raise InvalidParameter("exec process is not started")
        client = await self.link.ready_client()
        try:
            await client.resize_pty(c.id, width, height, exec_id=ex.id)
        except sup_errors.NotFound:
            raise NotFound(f"exec {ex.id}: its process has exited") from None
        except sup_errors.SupervisorError as e:
            raise Internal(f"cannot resize exec {ex.id}: {e.message}") from None

    async def run_probe(self, c: Container, command: list[str],
                        timeout_ns: int) -> tuple[int, str]:
        """One healthcheck probe, as dockerd's cmdProbe: an exec of command (the container's
        user, directory and environment; no stdin, no TTY) with its stdout and stderr kept,
        the first health.MAX_OUTPUT bytes of them. Past timeout_ns (counted from the exec's
        start, not its setup) it is killed and the result is -1 and dockerd's message.
        Raises (an EngineError) when it cannot be made or started: a failure for the caller.
        Cancelled (the container stops or pauses, berthd stops), it kills the process."""
        ex = self.create(c, c.id, {"Cmd": command, "AttachStdout": True,
                                   "AttachStderr": True})
        ex.probe = True
        starting = asyncio.get_running_loop().create_task(
            self.start(ex, console_size=None, attach=True))
        try:
            done, _ = await asyncio.wait({starting}, timeout=health.START_WAIT)
        except asyncio.CancelledError:
            self._abandon(c, ex, starting)
            raise
        if not done:
            self._abandon(c, ex, starting)
            raise Internal(f"timed out starting health check for container {c.id}")
        try:
            att = starting.result()
        except BaseException:
            self._forget_probe(ex)
            raise
        buf = bytearray()
        truncated = False

        async def collect() -> None:
            nonlocal truncated
            try:
                async for _stream, data in att:
                    room = health.MAX_OUTPUT - len(buf)
                    buf.extend(data[:max(room, 0)])
                    truncated = truncated or len(data) > room
            except sup_errors.SupervisorError:
                pass        # the stream ended with the process (or the supervisor)

        reader = asyncio.get_running_loop().create_task(collect())
        try:
            try:
                await asyncio.wait_for(asyncio.shield(ex.done.wait()), timeout_ns / 1e9)
            except asyncio.TimeoutError:
                log.debug("health check for container %s taking too long", c.id[:12])
                await self._kill_probe(c, ex)
                out = health.cut_output(bytes(buf), truncated)
                message = f"Health check exceeded timeout ({health.go_duration(timeout_ns)})"
                return -1, f"{message}: {out}" if out else message
            try:
                await asyncio.wait_for(asyncio.shield(reader), STREAMS_WAIT)
            except asyncio.TimeoutError:
                pass
            return ex.exit_code, health.cut_output(bytes(buf), truncated)
        except asyncio.CancelledError:
            await asyncio.shield(self._kill_probe(c, ex))
            raise
        finally:
            reader.cancel()
            att.close()
            self._forget_probe(ex)

    def _abandon(self, c: Container, ex: Exec, starting: asyncio.Task) -> None:
        task = asyncio.get_running_loop().create_task(self._abandon_probe(c, ex, starting))
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _abandon_probe(self, c: Container, ex: Exec, starting: asyncio.Task) -> None:
        """A probe given up while its exec was starting: once the start is through, its
        process is killed and its attachment closed, so nothing is left running."""
        try:
            att = await starting
        except BaseException:       # it did not start: nothing runs
            self._forget_probe(ex)
            return
        att.close()
        await self._kill_probe(c, ex)
        self._forget_probe(ex)

    async def _kill_probe(self, c: Container, ex: Exec) -> None:
        """SIGKILL a probe's process and wait (a while) for its watcher to record the exit,
        so that dying probes do not pile up."""
        if ex.done.is_set():
            return
        try:
            client = await self.link.ready_client()
            await client.kill(c.id, signals.SIGKILL, exec_id=ex.id)
        except sup_errors.SupervisorError as e:
            log.debug("killing probe %s of %s: %s", ex.id[:12], c.id[:12], e)
        try:
            await asyncio.wait_for(asyncio.shield(ex.done.wait()), KILL_WAIT)
        except asyncio.TimeoutError:
            log.warning("probe %s of %s did not exit after SIGKILL", ex.id[:12], c.id[:12])

    def _forget_probe(self, ex: Exec) -> None:
        """A probe's record goes once it has finished: a probe every few ms would otherwise
        keep thousands of them for KEEP_FINISHED. One still running is forgotten by its
        watcher's end (see _finish)."""
        if ex.exit_code is not None:
            self.by_id.pop(ex.id, None)

    async def shutdown(self) -> None:
        await self.containers.health.shutdown()
        watchers = [ex.watcher for ex in self.by_id.values() if ex.watcher]
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
