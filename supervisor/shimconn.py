"""The shim protocol (protos/berth/shim/v1/shim.proto) from asyncio.

`shim/client.py` is the blocking client (stdlib only, for the shim's own tools); the supervisor
serves many shims from one event loop, so it speaks the same framing here with asyncio streams:
a 4-byte big-endian length, then that many bytes of protobuf. A connection carries one request at
a time; `subscribe` and `attach` turn it into a stream.
"""
from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

from protos.berth.shim.v1 import shim_pb2
from supervisor import errors

MAX_FRAME = 64 << 20
CONNECT_TIMEOUT = 5.0
_LEN = struct.Struct(">I")

_ERRORS = {
    shim_pb2.NOT_FOUND: errors.NotFound,
    shim_pb2.ALREADY_EXISTS: errors.AlreadyExists,
    shim_pb2.FAILED_PRECONDITION: errors.FailedPrecondition,
    shim_pb2.INVALID_ARGUMENT: errors.InvalidArgument,
    shim_pb2.UNAVAILABLE: errors.Unavailable,
    shim_pb2.NOT_IMPLEMENTED: errors.NotImplementedByServer,
    shim_pb2.INTERNAL: errors.Internal,
}


class ShimGone(errors.Unavailable):
    """The shim's socket refused us or the connection broke mid-call."""


async def read_frame(reader: asyncio.StreamReader, message_type):
    """The next message, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ShimGone("shim connection closed inside a frame header") from None
    (length,) = _LEN.unpack(header)
    if length > MAX_FRAME:
        raise ShimGone(f"shim sent a frame of {length} bytes, more than {MAX_FRAME}")
    try:
        data = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ShimGone("shim connection closed inside a frame") from None
    msg = message_type()
    msg.ParseFromString(data)
    return msg


def frame(message) -> bytes:
    data = message.SerializeToString()
    return _LEN.pack(len(data)) + data


class ShimConnection:
    """One connection to a shim's socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, socket: str):
        self.reader, self.writer, self.socket = reader, writer, socket
        self._seq = 0

    @classmethod
    async def open(cls, socket: str, timeout: float = CONNECT_TIMEOUT) -> "ShimConnection":
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(socket, limit=MAX_FRAME), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise ShimGone(f"cannot connect to shim at {socket}: {e or 'timed out'}") from None
        return cls(reader, writer, socket)

    async def request(self, field: str, body) -> shim_pb2.Response:
        """Send one request and return its response, raising the shim's error as ours."""
        self._seq += 1
        req = shim_pb2.Request(seq=self._seq)
        getattr(req, field).CopyFrom(body)
        try:
            self.writer.write(frame(req))
            await self.writer.drain()
            resp = await read_frame(self.reader, shim_pb2.Response)
        except (OSError, ConnectionError) as e:
            raise ShimGone(f"shim at {self.socket}: {e}") from None
        if resp is None:
            raise ShimGone(f"shim at {self.socket} closed the connection during {field}")
        if resp.error != shim_pb2.OK:
            # Codes without a class (UNKNOWN_ERROR: the OCI runtime failed) travel as UNKNOWN,
            # as containerd reports runtime failures.
            raise _ERRORS.get(resp.error, errors.SupervisorError)(resp.message or f"shim {field} failed")
        return resp

    async def send(self, message) -> None:
        try:
            self.writer.write(frame(message))
            await self.writer.drain()
        except (OSError, ConnectionError) as e:
            raise ShimGone(f"shim at {self.socket}: {e}") from None

    def close(self) -> None:
        self.writer.close()


class ShimClient:
    """Calls to one shim over a small pool of reusable connections."""

    POOL = 4

    def __init__(self, socket: str):
        self.socket = socket
        self._idle: list[ShimConnection] = []

    async def call(self, field: str, body) -> shim_pb2.Response:
        conn = self._idle.pop() if self._idle else await ShimConnection.open(self.socket)
        try:
            resp = await conn.request(field, body)
        except errors.SupervisorError as e:
            # An error response leaves the connection usable; a broken connection does not.
            conn.close() if isinstance(e, ShimGone) else self._release(conn)
            raise
        except BaseException:  # cancelled mid-request: the response may still come, drop it
            conn.close()
            raise
        self._release(conn)
        return resp

    def _release(self, conn: ShimConnection) -> None:
        if len(self._idle) < self.POOL and not conn.writer.is_closing():
            self._idle.append(conn)
        else:
            conn.close()

    async def subscribe(self, after_seq: int) -> AsyncIterator[shim_pb2.Event]:
        """The shim's events after after_seq, until the shim closes the stream."""
        conn = await ShimConnection.open(self.socket)
        try:
            await conn.request("subscribe", shim_pb2.SubscribeRequest(after_seq=after_seq))
            while True:
                event = await read_frame(conn.reader, shim_pb2.Event)
                if event is None:
                    return
                yield event
        finally:
            conn.close()

    async def attach(self, request: shim_pb2.AttachRequest) -> ShimConnection:
        """A connection in attach mode: read AttachFrames from it, send AttachFrames to it."""
        conn = await ShimConnection.open(self.socket)
        try:
            await conn.request("attach", request)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
