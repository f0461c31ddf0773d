"""A process's stdio: pipes (or a pty) between the container and the shim, and where output goes.

The stdio strings are containerd's plus berth's own (see shim.proto's comment on CreateRequest):
  ""                          nothing (stdin /dev/null; output only to attach clients)
  /path or fifo:///path       a FIFO made by the client (ctr); read for stdin, written for output
  file:///path                output appended to a file
  binary:///path?k=v          containerd's logging binary: it gets the stdout and stderr pipes
                              as fds 3 and 4 and closes fd 5 (or writes a byte) when ready
  berth-jsonfile:///PATH?max-size=10m&max-file=3   docker's json-file log, written here
  berth-attach:?once=1        (stdin) a pipe fed by attach clients only
Output always also goes to every attached client. The container never writes to a sink
directly: the shim copies, so that attach clients see everything and a slow one can be dropped.
FIFO and logging-binary sinks are the primary consumers and push back (the shim stops reading
the container's pipe while they are full, as containerd's blocking copy does); attach clients
never do.
"""
from __future__ import annotations

import _signal  # see shim/reaper.py
import errno
import os
import select
from _collections_abc import Callable  # see shim/loop.py

from shim.jsonlog import JsonLog, parse_size
from shim.loop import Loop

READ_SIZE = 65536
HIGH_WATER = 1 << 20        # a pushing-back sink holding this much stops the container's output
LOGGER_READY_TIMEOUT = 10.0
LOGGER_TERM_GRACE = 5.0
STREAMS = ("stdout", "stderr")


class StdioError(ValueError):
    """A stdio string that cannot be used; the message names it."""


def _unquote(s: str) -> str:
    """Percent-decoding, for paths and query values in stdio uris."""
    if "%" not in s:
        return s
    raw = s.encode()
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode(errors="surrogateescape")


def parse_uri(value: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(scheme, path, query pairs in order); a bare path is a FIFO, as containerd treats it."""
    if not value:
        return "", "", []
    if value.startswith("/"):
        return "fifo", value, []
    scheme, sep, rest = value.partition(":")
    if not sep or not scheme:
        raise StdioError(f"stdio {value!r}: neither an absolute path nor a uri")
    rest, _, query = rest.partition("?")
    if rest.startswith("//"):
        rest = rest[2:]
        slash = rest.find("/")
        if slash > 0:
            raise StdioError(f"stdio {value!r}: a host part is not supported")
        rest = rest[slash:] if slash >= 0 else ""
    pairs = []
    for item in query.split("&") if query else []:
        k, _, v = item.partition("=")
        pairs.append((_unquote(k.replace("+", " ")), _unquote(v.replace("+", " "))))
    return scheme, _unquote(rest), pairs


def open_fifo_for_writing(path: str) -> int:
    """Open a FIFO to write without waiting for its reader: O_RDWR never blocks or fails with
    ENXIO, and holding both ends means writes never get EPIPE before the client opens it; what we
    write waits in the pipe for the client, as it would with containerd's blocking open."""
    import stat
    try:
        st = os.stat(path)
    except OSError as e:
        raise StdioError(f"stdio fifo {path}: {e.strerror.lower()}") from None
    if not stat.S_ISFIFO(st.st_mode):
        raise StdioError(f"stdio fifo {path}: not a fifo")
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


class Sink:
    """Where output of one or more streams goes; ends when every stream feeding it has."""

    def __init__(self) -> None:
        self.feeding: set[str] = set()

    def write(self, stream: str, data: bytes) -> None:
        raise NotImplementedError

    def end(self, stream: str) -> None:
        self.feeding.discard(stream)
        if not self.feeding:
            self.close()

    def close(self) -> None:
        raise NotImplementedError


class FileSink(Sink):
    def __init__(self, path: str) -> None:
        super().__init__()
        try:
            os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StdioError(f"stdio file {path}: {e.strerror.lower()}") from None

    def write(self, stream: str, data: bytes) -> None:
        view = memoryview(data)
        while view and self.fd >= 0:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class JsonFileSink(Sink):
    def __init__(self, path: str, query: list[tuple[str, str]]) -> None:
        super().__init__()
        opts = dict(query)
        unknown = set(opts) - {"max-size", "max-file"}
        if unknown:
            raise StdioError(f"stdio berth-jsonfile {path}: unknown option {sorted(unknown)[0]}")
        try:
            max_size = parse_size(opts["max-size"]) if opts.get("max-size", "-1") != "-1" else -1
            max_file = int(opts.get("max-file", "1"))
            self.log = JsonLog(path, max_size, max_file)
        except ValueError as e:
            raise StdioError(f"stdio berth-jsonfile {path}: {e}") from None
        except OSError as e:
            raise StdioError(f"stdio berth-jsonfile {path}: {e.strerror.lower()}") from None

    def write(self, stream: str, data: bytes) -> None:
        self.log.write(stream, data)

    def end(self, stream: str) -> None:
        self.log.end_stream(stream)
        super().end(stream)

    def close(self) -> None:
        self.log.close()


class PipeSink(Sink):
    """A non-blocking pipe or FIFO that pushes back when its reader is slow."""

    def __init__(self, loop: Loop, fd: int) -> None:
        super().__init__()
        self.loop = loop
        self.fd = fd
        self.pending = bytearray()
        self.io: ProcessIO | None = None
        self.ending = False

    def write(self, stream: str, data: bytes) -> None:
        if self.fd < 0:
            return
        if not self.pending:
            try:
                n = os.write(self.fd, data)
            except BlockingIOError:
                n = 0
            except OSError:   # EPIPE: the reader went away for good
                self.close()
                return
            if n == len(data):
                return
            data = data[n:]
            self.loop.add_writer(self.fd, self._flush)
        self.pending += data
        if len(self.pending) >= HIGH_WATER and self.io is not None:
            self.io.block(self)

    def _flush(self) -> None:
        try:
            n = os.write(self.fd, self.pending)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        del self.pending[:n]
        if len(self.pending) < HIGH_WATER // 2 and self.io is not None:
            self.io.unblock(self)
        if not self.pending:
            self.loop.remove_writer(self.fd)
            if self.ending:
                self.close()

    def end(self, stream: str) -> None:
        """Close once what is queued has been written, so the reader sees all of it, then EOF."""
        self.feeding.discard(stream)
        if not self.feeding:
            if self.pending:
                self.ending = True
            else:
                self.close()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.forget(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.pending.clear()
        if self.io is not None:
            self.io.unblock(self)


class BinaryLogger(Sink):
    """containerd's logging binary protocol: the program reads our stdout/stderr pipes as fds
    3 and 4, and signals readiness on fd 5."""

    def __init__(self, loop: Loop, reaper, path: str, args: list[tuple[str, str]],
                 cid: str, namespace: str) -> None:
        super().__init__()
        from shim.runtime import spawn
        self.loop = loop
        self.reaper = reaper
        self.pid = 0
        fds: list[int] = []
        try:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            fds += [out_r, out_w]
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds += [err_r, err_w]
            ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
            fds += [ready_r, ready_w]
            argv = [path] + [x for kv in args for x in kv if x]
            env = {"CONTAINER_ID": cid, "CONTAINER_NAMESPACE": namespace,
                   "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            fds.append(null)
            try:
                self.pid = spawn(argv, {0: null, 1: null, 2: 2, 3: out_r, 4: err_r, 5: ready_w},
                                 env)
            except OSError as e:
                raise StdioError(f"stdio binary {path}: {e.strerror.lower()}") from None
            self.exited = False
            reaper.watch(self.pid, self._exited)
            for fd in (out_r, err_r, ready_w, null):
                os.close(fd)
                fds.remove(fd)
            poller = select.poll()
            poller.register(ready_r, select.POLLIN)
            if not poller.poll(LOGGER_READY_TIMEOUT * 1000):
                self._terminate(_signal.SIGKILL)
                raise StdioError(f"stdio binary {path}: the logging binary did not become ready")
            os.close(ready_r)
            fds.remove(ready_r)
            os.set_blocking(out_w, False)
            os.set_blocking(err_w, False)
            fds.clear()
        finally:
            for fd in fds:
                os.close(fd)
        self.pipes = {"stdout": PipeSink(loop, out_w), "stderr": PipeSink(loop, err_w)}
        for stream, pipe in self.pipes.items():
            pipe.feeding.add(stream)

    def bind(self, io: "ProcessIO") -> None:
        for p in self.pipes.values():
            p.io = io

    def _exited(self, status: int, at: int) -> None:
        self.exited = True

    def _terminate(self, sig: int) -> None:
        if self.pid and not self.exited:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def write(self, stream: str, data: bytes) -> None:
        self.pipes[stream].write(stream, data)

    def end(self, stream: str) -> None:
        self.pipes[stream].end(stream)

    def close(self) -> None:
        for p in self.pipes.values():
            p.close()

    def stop(self) -> None:
        """The process is deleted: let the logger flush and go (SIGTERM, then SIGKILL)."""
        self.close()
        self._terminate(_signal.SIGTERM)
        if not self.exited:
            self.loop.call_later(LOGGER_TERM_GRACE, lambda: self._terminate(_signal.SIGKILL))


class ProcessIO:
    """The stdio of one process (a container's init or an exec)."""

    def __init__(self, loop: Loop, reaper, *, cid: str, namespace: str, terminal: bool,
                 stdin: str, stdout: str, stderr: str,
                 on_done: Callable[[], None]) -> None:
        self.loop = loop
        self.terminal = terminal
        self.on_done = on_done
        self.sinks: dict[str, list[Sink]] = {"stdout": [], "stderr": []}
        self._all_sinks: dict[str, Sink] = {}
        self.clients: list = []            # attach clients (shim.attach.AttachClient)
        self._blocked: set[Sink] = set()
        self._out_fds: dict[int, str] = {}  # our read ends (or the pty master) -> stream
        self._container_fds: list[int] = []  # the ends the runtime hands to the container
        self.stdio: tuple[int, ...] = ()     # the container's 0, 1, 2 (not for a TTY)
        self.done = False
        self._started = False
        self.activity = 0                   # bytes of output read so far
        self.master = -1
        self.stdin_fd = -1                  # where stdin data goes: a pipe's write end or master
        self.stdin_once = False
        self.has_stdin = bool(stdin)
        self._stdin_pending = bytearray()
        self._stdin_closing = False         # asked to close: what is queued still goes in
        self._stdin_closed = not stdin      # done: _close_stdin_now ran (it runs once)
        self._stdin_line_open = False       # the last byte sent to a TTY did not end a line
        self._stdin_fifo = -1
        self._stdin_sources: list = []      # objects with pause()/resume() feeding stdin
        try:
            self._open_sinks(loop, reaper, cid, namespace, stdout, stderr, terminal)
            self._open_stdin(stdin)
            self._make_pipes(stdin)
        except BaseException:
            self.close()
            raise

    # -- set up ----------------------------------------------------------------------------
    def _sink_for(self, loop, reaper, uri: str, cid: str, namespace: str) -> Sink | None:
        if uri in self._all_sinks:
            return self._all_sinks[uri]
        scheme, path, query = parse_uri(uri)
        if scheme == "":
            return None
        if scheme == "fifo":
            sink: Sink = PipeSink(loop, open_fifo_for_writing(path))
        elif scheme == "file":
            sink = FileSink(path)
        elif scheme == "berth-jsonfile":
            sink = JsonFileSink(path, query)
        elif scheme == "binary":
            sink = BinaryLogger(loop, reaper, path, query, cid, namespace)
        else:
            raise StdioError(f"stdio {uri!r}: unknown scheme {scheme}")
        if isinstance(sink, PipeSink):
            sink.io = self
        elif isinstance(sink, BinaryLogger):
            sink.bind(self)
        self._all_sinks[uri] = sink
        return sink

    def _open_sinks(self, loop, reaper, cid, namespace, stdout, stderr, terminal) -> None:
        streams = (("stdout", stdout),) if terminal else (("stdout", stdout), ("stderr", stderr))
        for stream, uri in streams:
            sink = self._sink_for(loop, reaper, uri, cid, namespace)
            if sink is not None:
                sink.feeding.add(stream)
                self.sinks[stream].append(sink)

    def _open_stdin(self, stdin: str) -> None:
        scheme, path, query = parse_uri(stdin)
        if scheme == "fifo":
            try:
                self._stdin_fifo = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                raise StdioError(f"stdin fifo {path}: {e.strerror.lower()}") from None
        elif scheme == "berth-attach":
            opts = dict(query)
            self.stdin_once = opts.get("once", "0") in ("1", "true")
        elif scheme != "":
            raise StdioError(f"stdin {stdin!r}: unsupported scheme {scheme}")

    def _make_pipes(self, stdin: str) -> None:
        if self.terminal:
            return       # the runtime makes a pty and sends us its master
        fds = []
        if stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._container_fds.append(r)
            self.stdin_fd = w
            os.set_blocking(w, False)
            fds.append(r)
        else:
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self._container_fds.append(null)
            fds.append(null)
        for stream in STREAMS:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._container_fds.append(w)
            os.set_blocking(r, False)
            self._out_fds[r] = stream
            fds.append(w)
        self.stdio = tuple(fds)

    def runtime_stdio(self, null: int) -> tuple[int, int, int]:
        """The fds the runtime command gets as 0, 1, 2; it passes them on to the process."""
        if self.terminal:
            return (null, null, 2)
        return self.stdio[0], self.stdio[1], self.stdio[2]

    def started(self, master: int = -1) -> None:
        """The runtime has made the process: drop our copies of its ends and start copying."""
        fds, self._container_fds = self._container_fds, []
        for fd in fds:
            os.close(fd)
        self._started = True
        if master >= 0:
            self.master = master
            self._out_fds[master] = "stdout"
            if not self._stdin_closed:
                self.stdin_fd = master
                if self._stdin_pending:     # typed by an attach client before the start
                    self.loop.add_writer(master, self._flush_stdin)
                if self._stdin_closing:     # and closed before it, too
                    self._queue_tty_eof()
                    self._close_stdin_if_flushed()
        for fd, stream in self._out_fds.items():
            self.loop.add_reader(fd, lambda fd=fd, stream=stream: self._on_output(fd, stream))
        if self._stdin_fifo >= 0:
            source = _FifoSource(self.loop, self._stdin_fifo, self._on_stdin_fifo)
            source.resume()
            self._stdin_sources.append(source)
        if not self._out_fds:
            self._finish()

    # -- output ----------------------------------------------------------------------------
    def _on_output(self, fd: int, stream: str) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            # EIO from a pty master once every slave fd is closed: the normal end of output.
            data = b""
            if e.errno != errno.EIO:
                print(f"shim: reading {stream}: {e}", flush=True)
        if not data:
            self._end_output(fd, stream)
            return
        self.activity += len(data)
        for sink in self.sinks[stream]:
            sink.write(stream, data)
        for client in list(self.clients):
            client.output(stream, data)

    def _end_output(self, fd: int, stream: str) -> None:
        self.loop.forget(fd)
        del self._out_fds[fd]
        if fd == self.master:
            self._close_stdin_now()     # the terminal is gone: so is its input
            self.master = -1
        os.close(fd)
        for sink in self.sinks[stream]:
            sink.end(stream)
        for client in list(self.clients):
            client.stream_ended(stream)
        if not self._out_fds:
            self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for client in list(self.clients):
            client.output_closed()
        self.on_done()

    def block(self, sink: Sink) -> None:
        if not self._blocked:
            for fd in self._out_fds:
                self.loop.remove_reader(fd)
        self._blocked.add(sink)

    def unblock(self, sink: Sink) -> None:
        if sink not in self._blocked:
            return
        self._blocked.discard(sink)
        if not self._blocked:
            for fd, stream in self._out_fds.items():
                self.loop.add_reader(fd, lambda fd=fd, stream=stream: self._on_output(fd, stream))

    # -- attach ----------------------------------------------------------------------------
    def add_client(self, client) -> None:
        if self.done:
            client.output_closed()
            return
        self.clients.append(client)

    def remove_client(self, client) -> None:
        if client in self.clients:
            self.clients.remove(client)
        if client in self._stdin_sources:
            self._stdin_sources.remove(client)

    def add_stdin_source(self, source) -> None:
        self._stdin_sources.append(source)

    # -- stdin -----------------------------------------------------------------------------
    # Stdin ends in any order of: an attach client's eof frame, CloseIO, the disconnect of a
    # once=1 client, the stdin FIFO's EOF, a write failing because the process is gone, the
    # terminal's end and the process's delete. Each only asks for the close; _close_stdin_now
    # does it, once, after marking it done, so nothing that fails or comes later can close (or
    # unregister) the fd a second time, when its number may already be someone else's.
    def stdin_open(self) -> bool:
        """Whether stdin takes data (a TTY's master only exists once the process does)."""
        return not self._stdin_closing and not self._stdin_closed and \
            (self.stdin_fd >= 0 or not self._started)

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_open() and data:
            self._queue_stdin(data)

    def _queue_stdin(self, data: bytes) -> None:
        if self.terminal:
            self._stdin_line_open = data[-1:] not in (b"\n", b"\r")
        if not self._stdin_pending and self.stdin_fd >= 0:
            try:
                n = os.write(self.stdin_fd, data)
            except BlockingIOError:
                n = 0
            except OSError:     # EPIPE/EIO: the process closed its stdin or is gone
                self._close_stdin_now()
                return
            if n == len(data):
                return
            data = data[n:]
            self.loop.add_writer(self.stdin_fd, self._flush_stdin)
        self._stdin_pending += data
        if len(self._stdin_pending) >= HIGH_WATER:
            for source in self._stdin_sources:
                source.pause()

    def _flush_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        try:
            n = os.write(self.stdin_fd, self._stdin_pending)
        except BlockingIOError:
            return
        except OSError:
            self._close_stdin_now()
            return
        del self._stdin_pending[:n]
        if len(self._stdin_pending) < HIGH_WATER // 2:
            for source in self._stdin_sources:
                source.resume()
        if not self._stdin_pending:
            self.loop.remove_writer(self.stdin_fd)
            self._close_stdin_if_flushed()

    def close_stdin(self) -> None:
        """Close the process's stdin once what is queued for it has been written.

        A TTY's master stays open, as it carries the output too: as containerd does, the
        terminal's EOF character (VEOF, ^D) goes in after the data instead, so that a program
        reading the terminal in canonical mode sees the end of its input."""
        if self._stdin_closing or self._stdin_closed:
            return
        self._stdin_closing = True
        self._stop_stdin_fifo()
        if self.terminal and self.stdin_fd >= 0:
            self._queue_tty_eof()
        self._close_stdin_if_flushed()

    def close_stdin_after_sources(self) -> None:
        """CloseIO, which comes on a connection of its own: stdin data that a client sent before
        it may still wait in an attach socket or the stdin FIFO, as epoll gives no order between
        fds. Take that in first, so that the close never overtakes it."""
        for source in list(self._stdin_sources):
            if self._stdin_closing or self._stdin_closed:
                return
            source.drain()
        self.close_stdin()

    def _queue_tty_eof(self) -> None:
        import termios
        try:
            attrs = termios.tcgetattr(self.stdin_fd)
        except termios.error:   # the terminal is gone already
            return
        eof = attrs[6][termios.VEOF]
        if eof in (b"\0", 0):    # _POSIX_VDISABLE: the terminal has no EOF character
            return
        # In canonical mode VEOF after a partial line only hands that line to the reader;
        # a second one is the end of input.
        canonical = attrs[3] & termios.ICANON
        self._queue_stdin(eof * (2 if canonical and self._stdin_line_open else 1))
        self._stdin_line_open = False

    def _close_stdin_if_flushed(self) -> None:
        if not self._stdin_closing or self._stdin_pending:
            return
        if self.terminal and not self._started:
            return      # the master comes with the process: the queue and VEOF go in then
        self._close_stdin_now()

    def _close_stdin_now(self) -> None:
        if self._stdin_closed:
            return
        self._stdin_closed = self._stdin_closing = True
        self._stdin_pending.clear()
        fd, self.stdin_fd = self.stdin_fd, -1
        self._stop_stdin_fifo()
        if fd < 0:
            return
        if fd == self.master:
            self.loop.remove_writer(fd)     # the output still comes from it
        else:
            self.loop.forget(fd)
            os.close(fd)

    def _on_stdin_fifo(self) -> bool:
        """Read the stdin FIFO once; False when nothing (more) is there for now."""
        if self._stdin_fifo < 0:
            return False
        try:
            data = os.read(self._stdin_fifo, READ_SIZE)
        except BlockingIOError:
            return False
        if data:
            self.write_stdin(data)
            return True
        self.close_stdin()  # the client closed its end: containerd closes the process's stdin
        return False

    def _stop_stdin_fifo(self) -> None:
        fd, self._stdin_fifo = self._stdin_fifo, -1
        if fd >= 0:
            self._stdin_sources = [s for s in self._stdin_sources
                                   if not isinstance(s, _FifoSource)]
            self.loop.forget(fd)
            os.close(fd)

    # -- tear down -------------------------------------------------------------------------
    def resize(self, width: int, height: int) -> None:
        from shim.terminal import resize
        if self.master < 0:
            raise OSError(errno.ENOTTY, "the process has no terminal")
        resize(self.master, width, height)

    def close(self) -> None:
        """Release everything: the process is deleted (or never started)."""
        fds, self._container_fds = self._container_fds, []
        for fd in fds:
            os.close(fd)
        self._close_stdin_now()
        out_fds, self._out_fds = self._out_fds, {}
        self.master = -1
        for fd in out_fds:
            self.loop.forget(fd)
            os.close(fd)
        for sink in self._all_sinks.values():
            if isinstance(sink, BinaryLogger):
                sink.stop()
            else:
                sink.close()
        self._all_sinks.clear()
        self._finish_quietly()

    def _finish_quietly(self) -> None:
        if not self.done:
            self.done = True
            for client in list(self.clients):
                client.output_closed()
        self.clients.clear()


class _FifoSource:
    """A stdin FIFO, read only while the process's stdin has room."""

    def __init__(self, loop: Loop, fd: int, on_readable: Callable[[], bool]) -> None:
        self.loop = loop
        self.fd = fd
        self.on_readable = on_readable

    def drain(self) -> None:
        while self.on_readable():
            pass

    def pause(self) -> None:
        self.loop.remove_reader(self.fd)

    def resume(self) -> None:
        self.loop.add_reader(self.fd, self.on_readable)
