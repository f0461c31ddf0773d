"""berthd: the engine. Serves the Docker Engine API on unix sockets, on TCP with mutual TLS and on
sockets systemd passes, and runs containers through berth-supervisor, which it starts as its
child unless told the address of one (as dockerd and containerd).

    berthd [-H unix:///run/berth/berth.sock|tcp://HOST:2376|fd://]... [--config-file FILE]
           [--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY] [-G GROUP]
           [--data-root /var/lib/berth] [--exec-root /run/berth] [--supervisor unix:///PATH]
           [--default-runtime lowrt] [--cgroup-parent /berth] [--pidfile PATH] [--debug]

The options are in engine/daemon_options.py.

On SIGTERM or SIGINT it stops serving and stops its supervisor; containers keep running (as
dockerd with live-restore), and a restarted berthd finds them again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

from .config import DaemonConfig

log = logging.getLogger("berthd")


class Daemon:
    """berthd's parts, assembled: the stores, the supervisor link, the containers."""

    def __init__(self, cfg: DaemonConfig):
        from .containers import Containers
        from .events import EventLog
        from .execs import Execs
        from .images import builtin
        from .images.store import ImageStore
        from .store import Store
        from .supervisor_link import SupervisorLink
        from .supervisor_proc import ManagedSupervisor

        self.cfg = cfg
        _init_cpu_rt(cfg)
        cfg.data_root.mkdir(parents=True, exist_ok=True)
        cfg.exec_root.mkdir(parents=True, exist_ok=True)
        self.store = Store(cfg.data_root / "engine.db")
        self.daemon_id = self.store.get_meta("daemon-id")
        if not self.daemon_id:
            self.daemon_id = str(uuid.uuid4())
            self.store.set_meta("daemon-id", self.daemon_id)
        self.images = ImageStore(cfg.data_root, self.store)
        builtin.seed(self.images, cfg.data_root / "tmp")
        self.managed = None
        if cfg.supervisor is None:
            self.managed = ManagedSupervisor(exec_root=cfg.exec_root, data_root=cfg.data_root,
                                             debug=cfg.debug)
            address = self.managed.address
        else:
            address = cfg.supervisor
        self.link = SupervisorLink(address, self.managed)
        self.events = EventLog()
        self.containers = Containers(cfg, self.store, self.images, self.link, self.events)
        self.execs = Execs(self.containers, self.events)
        self._runner = None
        self._listeners: list = []
        self._tls = None
        self._sockets: list[tuple[str, socket.socket]] = []
        self._oom_watcher: asyncio.Task | None = None

    async def supervisor_version(self) -> dict | None:
        from supervisor import errors as sup_errors
        try:
            return await self.link.client.version()
        except sup_errors.SupervisorError:
            return None

    async def start(self) -> None:
        from aiohttp import web

        from . import listeners
        from .api.app import make_app

        cfg = self.cfg
        # bad certificates, a port in use, a missing group or fd: found before anything starts
        self._tls = None if not cfg.tls else listeners.server_tls_context(
            cfg.tlscacert, cfg.tlscert, cfg.tlskey, cfg.tlsverify)
        self._sockets = self._bind()
        if self.managed is not None:
            await self.managed.start()
        else:
            await self.link.wait_external()
        await self.containers.restore()
        self._oom_watcher = asyncio.get_running_loop().create_task(self.containers.watch_oom())
        # handler_cancellation: a client that hangs up ends its handler (a wait, a logs -f);
        # a short shutdown_timeout: at exit, open waits and follows are cut, not waited for
        self._runner = web.AppRunner(make_app(self), access_log=None, handle_signals=False,
                                     handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()

    def _bind(self) -> list[tuple[str, socket.socket]]:
        """(host, socket) for each -H (fd:// may give several), bound but not yet listening,
        so that no client connects before the API is served."""
        from . import listeners as ls
        from . import systemd

        cfg = self.cfg
        out: list[tuple[str, socket.socket]] = []
        passed = None
        try:
            for text in cfg.hosts:
                host = ls.parse_host(text, cfg.tls)
                if host.scheme == "unix":
                    out.append((text, ls.unix_socket(Path(host.address), cfg.group,
                                                     cfg.group_required)))
                elif host.scheme == "tcp":
                    out.append((text, ls.tcp_socket(host)))
                else:
                    if passed is None:
                        passed = systemd.systemd_sockets()
                    out += [(text, s) for s in systemd.pick_systemd_sockets(host.address, passed)]
            for text, sock in out:     # a TCP socket from systemd is held to the same rule
                if sock.family != socket.AF_UNIX and self._tls is None and not cfg.insecure_tcp:
                    raise ValueError(f"refusing to serve {text} (a TCP socket) without "
                                     "--tlsverify")
        except BaseException:
            for _, sock in out:
                sock.close()
            raise
        return out

    async def _listen(self) -> None:
        """Serve the API on the bound sockets; stop() closes them."""
        from aiohttp import web

        from .listeners import StreamListener

        for text, sock in self._sockets:
            sock.listen(128)
            if sock.family == socket.AF_UNIX and text.startswith("unix://"):
                await web.SockSite(self._runner, sock).start()
                log.info("API listening on %s", text[len("unix://"):])
                continue
            tls = self._tls if sock.family != socket.AF_UNIX else None
            listener = StreamListener(sock, self._runner.server, tls)
            listener.start()
            self._listeners.append(listener)
            log.info("API listening on %s%s", listener.name, " (TLS)" if tls else "")
            if sock.family != socket.AF_UNIX and not self.cfg.tlsverify:
                log.warning("%s is served without client certificates: anyone who reaches it "
                            "is root on this host", listener.name)

    async def stop(self) -> None:
        for listener in self._listeners:
            await listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for _, sock in self._sockets:
            sock.close()
        if self._oom_watcher is not None:
            self._oom_watcher.cancel()
            # a cancel that lands while grpc is still setting the subscription up can be lost
            # in its read (at a start that fails at once): closing the link below ends it
            await asyncio.wait([self._oom_watcher], timeout=1.0)
        await self.execs.shutdown()
        await self.containers.shutdown()
        await self.link.close()
        if self._oom_watcher is not None:
            await asyncio.wait([self._oom_watcher], timeout=5.0)
        if self.managed is not None:
            await self.managed.stop()
        for path in self.cfg.socket_paths():
            if path.is_socket():
                path.unlink()
        self.store.close()


def _claim_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and Path(f"/proc/{pid}").exists():
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"berthd" in cmd:
            raise SystemExit(f"berthd: pid file {path} names running process {pid}: ensure "
                             f"berthd is not running or delete {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def _init_cpu_rt(cfg: DaemonConfig) -> None:
    """--cpu-rt-period / --cpu-rt-runtime: the cgroup parent's real-time budget, given before
    any container starts under it; a budget the kernel refuses stops berthd with its words."""
    from . import cpu_rt
    from .errors import EngineError
    try:
        cpu_rt.init_parent(cfg.cgroup_parent, cfg.cpu_rt_period, cfg.cpu_rt_runtime)
    except EngineError as e:
        raise RuntimeError(e.message) from None


async def _serve(cfg: DaemonConfig) -> None:
    from . import systemd

    daemon = Daemon(cfg)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await daemon.start()
        log.info("berthd ready (data root %s, exec root %s)", cfg.data_root, cfg.exec_root)
        systemd.notify("READY=1")
        await stopping.wait()
        log.info("shutting down; containers keep running")
        systemd.notify("STOPPING=1")
    finally:
        await daemon.stop()


def main(argv: list[str] | None = None) -> None:
    from .daemon_options import parse

    cfg = parse(argv)
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(cfg.log_level, cfg.log_level.upper())
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not cfg.debug:
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
    _claim_pidfile(cfg.pidfile)
    try:
        asyncio.run(_serve(cfg))
    except (RuntimeError, ValueError, OSError) as e:
        log.error("%s", e)
        sys.exit(1)
    finally:
        try:
            if cfg.pidfile.read_text().strip() == str(os.getpid()):
                cfg.pidfile.unlink()
        except OSError:
            pass


if __name__ == "__main__":
    main()
