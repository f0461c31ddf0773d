"""berthd: the engine. Serves the Docker Engine API on unix sockets and runs containers through
berth-supervisor, which it starts as its child unless told the address of one (as dockerd and
containerd).

    berthd [-H unix:///run/berth/berth.sock]... [--data-root /var/lib/berth]
           [--exec-root /run/berth] [--supervisor unix:///PATH] [--default-runtime lowrt]
           [--cgroup-parent /berth] [--pidfile PATH] [--debug]

On SIGTERM or SIGINT it stops serving and stops its supervisor; containers keep running (as
dockerd with live-restore), and a restarted berthd finds them again.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import uuid
from pathlib import Path

from .config import DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT, DEFAULT_HOST, DaemonConfig

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
        self._oom_watcher: asyncio.Task | None = None

    async def supervisor_version(self) -> dict | None:
        from supervisor import errors as sup_errors
        try:
            return await self.link.client.version()
        except sup_errors.SupervisorError:
            return None

    async def start(self) -> None:
        from aiohttp import web

        from .api.app import make_app

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
        for path in self.cfg.socket_paths():
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                path.unlink()
            site = web.UnixSite(self._runner, str(path))
            await site.start()
            os.chmod(path, 0o660)
            log.info("API listening on %s", path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._oom_watcher is not None:
            self._oom_watcher.cancel()
            await asyncio.gather(self._oom_watcher, return_exceptions=True)
        await self.execs.shutdown()
        await self.containers.shutdown()
        await self.link.close()
        if self.managed is not None:
            await self.managed.stop()
        for path in self.cfg.socket_paths():
            if path.is_socket():
                path.unlink()
        self.store.close()


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="berthd", description="berth's container engine: the "
                                "Docker Engine API over berth-supervisor")
    p.add_argument("-H", "--host", action="append", dest="hosts", metavar="unix:///PATH",
                   help=f"socket to serve the API on (repeatable; default {DEFAULT_HOST})")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="persistent state")
    p.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state and sockets")
    p.add_argument("--supervisor", metavar="ADDRESS",
                   help="use this running berth-supervisor instead of starting one")
    p.add_argument("--default-runtime", default="lowrt",
                   help="OCI runtime for containers: lowrt, runc, crun or a path")
    p.add_argument("--cgroup-parent", default="/berth", help="parent cgroup of containers")
    p.add_argument("--pidfile", help="where to write berthd's pid (default <exec-root>/berthd.pid)")
    p.add_argument("--init", action="store_true",
                   help="run an init inside containers that forwards signals and reaps processes")
    p.add_argument("--init-path", help="the init --init runs (default: docker-init, then "
                   "tini-static, on PATH; a static binary)")
    p.add_argument("-D", "--debug", action="store_true", help="debug logging")
    a = p.parse_args(argv)
    for host in a.hosts or []:
        if not host.startswith("unix:///"):
            p.error(f"invalid -H {host!r}: only unix:///PATH is supported")
    exec_root = Path(a.exec_root).resolve()
    cfg = DaemonConfig(
        hosts=a.hosts or [DEFAULT_HOST], data_root=Path(a.data_root).resolve(),
        exec_root=exec_root, supervisor=a.supervisor, default_runtime=a.default_runtime,
        cgroup_parent=a.cgroup_parent, debug=a.debug, init=a.init, init_path=a.init_path,
        pidfile=Path(a.pidfile) if a.pidfile else exec_root / "berthd.pid")
    if (a.init or a.init_path) and cfg.init_binary() is None:
        p.error(f"no init binary: {a.init_path or 'docker-init or tini-static'} is not an "
                "executable on PATH (Debian's tini package has tini-static)")
    return cfg


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


async def _serve(cfg: DaemonConfig) -> None:
    daemon = Daemon(cfg)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await daemon.start()
        log.info("berthd ready (data root %s, exec root %s)", cfg.data_root, cfg.exec_root)
        await stopping.wait()
        log.info("shutting down; containers keep running")
    finally:
        await daemon.stop()


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if cfg.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not cfg.debug:
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
    _claim_pidfile(cfg.pidfile)
    try:
        asyncio.run(_serve(cfg))
    except RuntimeError as e:
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
