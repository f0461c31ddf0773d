"""The shim's socket: length-prefixed protobuf Requests in, Responses out, on the event loop.

Each connection carries one request at a time. Wait parks its connection (the answer comes when
the process's exit is published) without holding up other connections; Subscribe and Attach turn
a connection into a stream. Every connection's output is buffered and written as the socket
accepts it; stream connections that fall too far behind are dropped, so that a stalled client
never blocks the container, the log or the other clients.
"""
from __future__ import annotations

# `socket` imports enum and selectors (5-7 ms, and memory, in every shim); its C half has all
# the server uses (accepting through _accept(), as socket.accept() itself does).
import _socket
import os
import struct
import time

from protos.berth.shim.v1 import shim_lean as pb
from shim.errors import ShimError
from shim.loop import Loop

MAX_MESSAGE = 16 << 20
STREAM_BUFFER_LIMIT = 4 << 20   # queued output after which a subscriber or attach client is cut
_LEN = struct.Struct(">I")


class Connection:
    def __init__(self, server: "Server", sock: _socket.socket) -> None:
        self.server = server
        self.loop = server.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closed = False
        self.busy = False          # a request is being answered (a parked Wait)
        self.stream = None          # set when in attach mode: receives AttachFrames
        self.close_when_flushed = False
        self.limit = 0             # >0 for stream connections
        self.on_close: list = []
        sock.setblocking(False)
        self.loop.add_reader(self.fd, self._on_readable)

    # -- input -----------------------------------------------------------------------------
    def _on_readable(self) -> bool:
        """Take in what the peer sent; False when there was nothing (more) to read."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self.close()
            return False
        self.inbuf += data
        self._process()
        return True

    def read_available(self) -> None:
        """Take in everything the peer has sent so far, now rather than at the loop's turn."""
        while not self.closed and self._on_readable():
            pass

    def _process(self) -> None:
        while not self.closed and not self.busy and len(self.inbuf) >= 4:
            (n,) = _LEN.unpack_from(self.inbuf)
            if n > MAX_MESSAGE:
                self.server.log(f"connection sent a {n}-byte message; closing it")
                self.close()
                return
            if len(self.inbuf) < 4 + n:
                return
            payload = bytes(self.inbuf[4:4 + n])
            del self.inbuf[:4 + n]
            if self.stream is not None:
                try:
                    frame = pb.AttachFrame.FromString(payload)
                except pb.DecodeError:
                    self.close()
                    return
                self.stream.on_frame(frame)
                continue
            if self.limit:      # a subscriber: it has nothing more to say
                continue
            try:
                req = pb.Request.FromString(payload)
            except pb.DecodeError as e:
                self.send(pb.Response(error=pb.INVALID_ARGUMENT,
                                      message=f"malformed request: {e}").SerializeToString())
                continue
            self.server.handle(self, req)

    def pause_reading(self) -> None:
        if not self.closed:
            self.loop.remove_reader(self.fd)

    def resume_reading(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.fd, self._on_readable)

    # -- output ----------------------------------------------------------------------------
    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        frame = _LEN.pack(len(payload)) + payload
        if not self.outbuf:
            try:
                n = self.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.close()
                return
            if n == len(frame):
                return
            frame = frame[n:]
            self.loop.add_writer(self.fd, self._on_writable)
        self.outbuf += frame
        if self.limit and len(self.outbuf) > self.limit:
            self.server.log("dropping a stream client that stopped reading")
            self.close()

    def reply(self, resp) -> None:
        """Answer the request in progress and go on with the next one."""
        self.send(resp.SerializeToString())
        self.busy = False
        if self.inbuf and not self.closed:
            self._process()

    def _on_writable(self) -> None:
        try:
            n = self.sock.send(self.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.outbuf[:n]
        if not self.outbuf:
            self.loop.remove_writer(self.fd)
            if self.close_when_flushed:
                self.close()

    def finish(self) -> None:
        """Close once everything queued has been sent (the end of an attach stream)."""
        if not self.outbuf:
            self.close()
        else:
            self.close_when_flushed = True

    def flush_blocking(self, deadline: float) -> None:
        """Used only on the way out: push what is queued, until deadline."""
        if self.closed or not self.outbuf:
            return
        self.sock.setblocking(True)
        try:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            self.sock.sendall(self.outbuf)
        except OSError:
            pass
        self.outbuf.clear()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.forget(self.fd)
        self.sock.close()
        self.server.connections.discard(self)
        for cb in self.on_close:
            cb()
        self.on_close.clear()


class Server:
    def __init__(self, loop: Loop, listener: _socket.socket, path: str, task, log,
                 debug: bool = False) -> None:
        self.loop = loop
        self.path = path
        self.task = task
        self.log = log
        self.debug = debug
        self.connections: set[Connection] = set()
        self.listener = listener
        loop.add_reader(self.listener.fileno(), self._accept)

    def _accept(self) -> None:
        while True:
            try:
                fd, _ = self.listener._accept()   # close-on-exec, as socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log(f"accept: {e}")
                return
            self.connections.add(Connection(self, _socket.socket(fileno=fd)))

    def handle(self, conn: Connection, req) -> None:
        kind = req.WhichOneof("body")
        if kind is None:
            conn.send(pb.Response(seq=req.seq, error=pb.INVALID_ARGUMENT,
                                  message="empty request").SerializeToString())
            return
        body = getattr(req, kind)
        conn.busy = True
        try:
            result = getattr(self.task, kind)(body, conn, req.seq)
        except ShimError as e:
            if self.debug:
                self.log(f"{kind}: {pb.ErrorCode.Name(e.code).lower()}: {e}")
            conn.reply(pb.Response(seq=req.seq, error=e.code, message=str(e)))
            return
        except Exception as e:  # a bug: answer, log it and keep serving the container
            import traceback
            self.log(f"{kind} failed:\n{traceback.format_exc()}")
            conn.reply(pb.Response(seq=req.seq, error=pb.INTERNAL, message=f"{kind}: {e}"))
            return
        if self.debug:
            exec_id = getattr(body, "exec_id", "")
            self.log(f"{kind}{' ' + exec_id if exec_id else ''}: ok")
        if result is PARKED:
            return
        resp = pb.Response(seq=req.seq)
        if result is not None:
            setattr(resp, kind, result)
        conn.reply(resp)

    def close(self, deadline: float) -> None:
        """Stop listening and push out what every connection still has queued."""
        self.loop.forget(self.listener.fileno())
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        for conn in list(self.connections):
            conn.flush_blocking(deadline)
            conn.close()


PARKED = object()   # a handler's answer will come later, through conn.reply()
