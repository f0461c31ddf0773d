"""The client side of the shim protocol: framing, and a small blocking client for the supervisor.

Framing is a 4-byte big-endian length and that many bytes of protobuf (shim.proto). Messages are
the lean codec's (protos/berth/shim/v1/shim_lean.py): the same wire format as shim_pb2, with the
same attribute names. Errors come back as the shim.errors class of their ErrorCode
(NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable, Unimplemented,
Internal, RuntimeFailed), all ShimError; a shim that cannot be reached or hangs up is Unavailable.

One ShimClient may be shared by threads: plain requests take turns on one connection; wait(),
subscribe() and attach() each open a connection of their own, so they never hold others up.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterable, Iterator

from protos.berth.shim.v1 import shim_lean as pb
from shim.errors import BY_CODE, Internal, ShimError, Unavailable

__all__ = ["ShimClient", "Attachment", "Subscription", "write_msg", "read_msg", "ShimError", "pb"]

_LEN = struct.Struct(">I")
MAX_MESSAGE = 16 << 20
REQUEST_TIMEOUT = 120.0   # the shim runs the runtime synchronously; its own limit is 60 s


def write_msg(sock: socket.socket, msg) -> None:
    """Send one framed message (anything with SerializeToString, or bytes)."""
    payload = msg if isinstance(msg, (bytes, bytearray)) else msg.SerializeToString()
    sock.sendall(_LEN.pack(len(payload)) + payload)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf:
                raise Unavailable("shim closed the connection in the middle of a message")
            return None
        buf += chunk
    return bytes(buf)


def read_msg(sock: socket.socket, cls):
    """Receive one framed message of type cls; None when the peer closed the connection."""
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n > MAX_MESSAGE:
        raise Unavailable(f"shim sent a {n}-byte message, more than {MAX_MESSAGE}")
    body = _read_exact(sock, n) if n else b""
    if body is None:
        raise Unavailable("shim closed the connection in the middle of a message")
    return cls.FromString(body)


def _mount(m) -> "pb.Mount":
    if isinstance(m, pb.Mount):
        return m
    return pb.Mount(type=m.get("type", ""), source=m.get("source", ""),
                    target=m.get("target", ""), options=list(m.get("options", ())))


def _raise_for(resp) -> None:
    if resp.error:
        raise BY_CODE.get(resp.error, Internal)(resp.message or pb.ErrorCode.Name(resp.error))


class ShimClient:
    """Blocking client for one shim. address: the socket path, or unix://path."""

    def __init__(self, address: str, timeout: float | None = REQUEST_TIMEOUT) -> None:
        self.path = address.removeprefix("unix://")
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._seq = 0

    # -- plumbing --------------------------------------------------------------------------
    def _open(self, timeout: float | None) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise Unavailable(f"shim {self.path}: {e.strerror or e}".lower()) from None
        return s

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _exchange(self, sock: socket.socket, kind: str, body):
        seq = self._next_seq()
        try:
            write_msg(sock, pb.Request(seq=seq, **{kind: body}))
            resp = read_msg(sock, pb.Response)
        except socket.timeout:
            raise Unavailable(f"shim {self.path}: no answer to {kind} "
                              f"within {sock.gettimeout()}s") from None
        except OSError as e:
            raise Unavailable(f"shim {self.path}: {kind}: {e}") from None
        if resp is None:
            raise Unavailable(f"shim {self.path} closed the connection during {kind}")
        _raise_for(resp)
        return resp

    def _call(self, kind: str, body):
        with self._lock:
            if self._sock is None:
                self._sock = self._open(self.timeout)
            try:
                resp = self._exchange(self._sock, kind, body)
            except Unavailable:
                self._drop()
                raise
            return getattr(resp, kind, None) if kind in pb.Response.__slots__ else None

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "ShimClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------
    def create(self, id: str, bundle: str = "", *, rootfs: Iterable = (), terminal: bool = False,
               stdin: str = "", stdout: str = "", stderr: str = "") -> int:
        """Create the container (not started); returns the init's pid."""
        resp = self._call("create", pb.CreateRequest(
            id=id, bundle=bundle, rootfs=[_mount(m) for m in rootfs], terminal=terminal,
            stdin=stdin, stdout=stdout, stderr=stderr))
        return resp.pid

    def start(self, id: str, exec_id: str = "") -> int:
        return self._call("start", pb.StartRequest(id=id, exec_id=exec_id)).pid

    def delete(self, id: str, exec_id: str = "") -> tuple[int, int, int]:
        """Returns (pid, exit_status, exited_at ns). Deleting the init ends the shim."""
        r = self._call("delete", pb.DeleteRequest(id=id, exec_id=exec_id))
        return r.pid, r.exit_status, r.exited_at

    def exec(self, id: str, exec_id: str, spec: dict | bytes, *, terminal: bool = False,
             stdin: str = "", stdout: str = "", stderr: str = "") -> None:
        """Add an exec process (spec: an OCI Process); start() runs it."""
        raw = spec if isinstance(spec, (bytes, bytearray)) else json.dumps(spec).encode()
        self._call("exec", pb.ExecRequest(id=id, exec_id=exec_id, terminal=terminal,
                                          stdin=stdin, stdout=stdout, stderr=stderr,
                                          spec=bytes(raw)))

    def resize_pty(self, id: str, width: int, height: int, exec_id: str = "") -> None:
        self._call("resize_pty", pb.ResizePtyRequest(id=id, exec_id=exec_id, width=width,
                                                     height=height))

    def close_io(self, id: str, exec_id: str = "", stdin: bool = True) -> None:
        self._call("close_io", pb.CloseIORequest(id=id, exec_id=exec_id, stdin=stdin))

    def state(self, id: str, exec_id: str = "") -> "pb.StateResponse":
        return self._call("state", pb.StateRequest(id=id, exec_id=exec_id))

    def kill(self, id: str, signal: int, *, exec_id: str = "", all: bool = False) -> None:
        self._call("kill", pb.KillRequest(id=id, exec_id=exec_id, signal=signal, all=all))

    def pids(self, id: str) -> list[tuple[int, str]]:
        """(pid, exec id or "") for every process in the container."""
        return [(p.pid, p.exec_id) for p in self._call("pids", pb.PidsRequest(id=id)).processes]

    def pause(self, id: str) -> None:
        self._call("pause", pb.PauseRequest(id=id))

    def resume(self, id: str) -> None:
        self._call("resume", pb.ResumeRequest(id=id))

    def update(self, id: str, resources: dict | bytes) -> None:
        """resources: OCI LinuxResources."""
        raw = resources if isinstance(resources, (bytes, bytearray)) else \
            json.dumps(resources).encode()
        self._call("update", pb.UpdateRequest(id=id, resources=bytes(raw)))

    def stats(self, id: str) -> "pb.StatsResponse":
        return self._call("stats", pb.StatsRequest(id=id))

    def connect(self, id: str = "") -> "pb.ConnectResponse":
        return self._call("connect", pb.ConnectRequest(id=id))

    def shutdown(self, id: str = "", now: bool = False) -> None:
        """Ask the shim to exit: it does when its container is deleted (or gone), or with now."""
        self._call("shutdown", pb.ShutdownRequest(id=id, now=now))

    def wait(self, id: str, exec_id: str = "", timeout: float | None = None) -> tuple[int, int]:
        """Block until the process's exit is published: (exit_status, exited_at ns)."""
        with self._open(timeout) as s:
            r = self._exchange(s, "wait", pb.WaitRequest(id=id, exec_id=exec_id)).wait
        return r.exit_status, r.exited_at

    def subscribe(self, after_seq: int = 0) -> "Subscription":
        """Events with seq > after_seq that the shim still holds, then live ones."""
        s = self._open(None)
        try:
            self._exchange(s, "subscribe", pb.SubscribeRequest(after_seq=after_seq))
        except BaseException:
            s.close()
            raise
        return Subscription(s)

    def attach(self, id: str, exec_id: str = "", *, stdin: bool = False, stdout: bool = True,
               stderr: bool = True) -> "Attachment":
        s = self._open(None)
        try:
            self._exchange(s, "attach", pb.AttachRequest(id=id, exec_id=exec_id, stdin=stdin,
                                                         stdout=stdout, stderr=stderr))
        except BaseException:
            s.close()
            raise
        return Attachment(s)


class Subscription:
    """Iterate for pb.Event messages (event.WhichOneof("event") names the kind); iteration ends
    when the shim goes away. close() from another thread ends it too."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def __iter__(self) -> Iterator["pb.Event"]:
        while True:
            try:
                event = read_msg(self.sock, pb.Event)
            except (OSError, Unavailable):
                return
            if event is None:
                return
            yield event

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Attachment:
    """An attach stream. read() -> (1 for stdout | 2 for stderr, data), or None once the
    process's output has ended (iterating gives the same pairs); write() sends stdin,
    close_stdin() closes the process's stdin, close() detaches."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ended = False
        self._wlock = threading.Lock()

    def read(self) -> tuple[int, bytes] | None:
        while not self.ended:
            try:
                frame = read_msg(self.sock, pb.AttachFrame)
            except OSError:
                frame = None
            if frame is None or frame.closed:
                self.ended = True
                return None
            if frame.data:
                return frame.stream, frame.data
        return None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while (item := self.read()) is not None:
            yield item

    def write(self, data: bytes) -> None:
        with self._wlock:
            write_msg(self.sock, pb.AttachFrame(stream=pb.AttachFrame.STDIN, data=data))

    def close_stdin(self) -> None:
        with self._wlock:
            write_msg(self.sock, pb.AttachFrame(stream=pb.AttachFrame.STDIN, eof=True))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "Attachment":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
