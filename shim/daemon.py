"""The shim daemon: one per container, detached from whoever started it.

`berth-shim … start` forks this; the daemon starts a session of its own, becomes the child
subreaper (so the container's init, orphaned when `runtime create` exits, becomes its child),
moves into the bundle, sends its stdio to <bundle>/shim.log, listens on the socket and tells
`start` it is ready. Only then does it import and set up the rest: the supervisor connects and
sends Create meanwhile (the request waits in the socket), instead of after it. A failure from
there on is logged, and closes the socket. It exits once the container is deleted (or on
Shutdown).
"""
from __future__ import annotations

import _socket  # see shim/server.py
import os
import sys
import time

EXIT_FLUSH_SECONDS = 2.0


class Options:
    __slots__ = ("namespace", "id", "bundle", "socket", "runtime", "runtime_root",
                 "runtime_timeout", "debug")

    def __init__(self, **kw) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def _log_line(msg: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp}Z berth-shim[{os.getpid()}]: {msg}\n")
    sys.stderr.flush()


def _write_file(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _redirect_stdio(bundle: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(bundle, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _listen(path: str) -> _socket.socket:
    """The shim's listening socket at path (owner-only), non-blocking. Connections made before
    a Server serves it wait in its backlog."""
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


def _remove_files(bundle: str) -> None:
    for name in ("shim.pid", "address"):
        try:
            os.unlink(os.path.join(bundle, name))
        except FileNotFoundError:
            pass


def serve(opts: Options, ready_fd: int) -> int:
    """Run in the forked child. Reports "ok" or an error on ready_fd, then serves until done."""
    try:
        os.setsid()
        # Outliving whoever started us: keep none of its fds (a supervisor's sockets, pipes).
        os.closerange(3, ready_fd)
        os.closerange(ready_fd + 1, 1 << 16)
        os.chdir(opts.bundle)
        _redirect_stdio(opts.bundle)
        from shim import linux
        linux.set_child_subreaper()
        listener = _listen(opts.socket)
        _write_file(os.path.join(opts.bundle, "shim.pid"), str(os.getpid()))
        _write_file(os.path.join(opts.bundle, "address"), opts.socket)
    except BaseException as e:  # noqa: BLE001 - whatever it is, `start` must hear of it
        os.write(ready_fd, f"error: {e}".encode())
        os.close(ready_fd)
        return 1
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    try:
        from shim.events import Events
        from shim.loop import Loop
        from shim.reaper import Reaper
        from shim.runtime import Runtime
        from shim.server import Server
        from shim.task import Task

        loop = Loop()
        loop.on_error = _log_line
        reaper = Reaper(loop)
        runtime = Runtime(opts.runtime, opts.runtime_root, os.path.join(opts.bundle, "log.json"),
                          reaper, debug=opts.debug, timeout=opts.runtime_timeout)
        task = Task(loop=loop, reaper=reaper, events=Events(), runtime=runtime,
                    namespace=opts.namespace, id=opts.id, bundle=opts.bundle,
                    socket_path=opts.socket, log=_log_line, on_exit=loop.stop)
        server = Server(loop, listener, opts.socket, task, _log_line, debug=opts.debug)
    except BaseException:  # noqa: BLE001 - `start` has gone: say it in the log, and go
        import traceback
        _log_line(f"setting up failed:\n{traceback.format_exc()}")
        listener.close()
        try:
            os.unlink(opts.socket)
        except FileNotFoundError:
            pass
        _remove_files(opts.bundle)
        return 1
    if opts.debug:
        _log_line(f"serving {opts.namespace}/{opts.id} on {opts.socket} with {opts.runtime}")
    try:
        loop.run()
    finally:
        server.close(time.monotonic() + EXIT_FLUSH_SECONDS)
        _remove_files(opts.bundle)
        if opts.debug:
            _log_line("exiting")
    return 0
