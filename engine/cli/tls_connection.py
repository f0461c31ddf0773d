"""TLS to the daemon through memory BIOs rather than ssl.SSLSocket, because attach needs a
half-close: the client ends the container's stdin and goes on reading its output. SSLSocket can
only tear the whole session down (unwrap, which also waits for the peer's close_notify), where
TLS's close_notify sent alone is the half-close that dockerd (and berthd) take as the end of
stdin, as Go's tls.Conn.CloseWrite sends it.
"""
from __future__ import annotations

import io
import socket
import ssl
import threading

from .transport import TransportError


class _Reader(io.RawIOBase):
    def __init__(self, conn):
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self._conn.recv(len(buf))
        buf[:len(data)] = data
        return len(data)


class TLSConnection:
    """A TLS session over a connected socket, through memory BIOs (see the module docstring).
    Locks keep the stdin thread's writes and the output reads off the SSL object at once."""

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext, server_name: str):
        self._raw = raw
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._in, self._out, server_hostname=server_name)
        self._lock = threading.Lock()
        self._sending = threading.Lock()   # BIO to socket in order, whichever thread sends
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise TransportError(f"error during connect: the daemon at "
                                         f"{server_name} closed the connection during the TLS "
                                         "handshake (is it serving TLS, and does it accept "
                                         "this client certificate?)") from None
            except ssl.SSLError as e:
                self._flush()
                raise TransportError(f"error during connect: TLS handshake with {server_name} "
                                     f"failed: {getattr(e, 'verify_message', None) or e.reason or e}"
                                     ) from None

    def _flush(self) -> None:
        with self._sending:
            with self._lock:
                data = self._out.read()
            if data:
                self._raw.sendall(data)

    def _fill(self) -> bool:
        data = self._raw.recv(65536)
        with self._lock:
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()
        return bool(data)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                n = self._tls.write(view)
            view = view[n:]
            self._flush()

    def recv(self, size: int) -> bytes:
        while True:
            try:
                with self._lock:
                    data = self._tls.read(size)
                self._flush()         # a read can answer a key update
                return data
            except ssl.SSLWantReadError:
                if not self._fill():
                    return b""        # the peer closed without close_notify
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            except ssl.SSLError as e:     # an alert: the daemon refused our certificate
                reason = (e.reason or str(e)).lower().replace("_", " ")
                raise ConnectionRefusedError(f"the daemon refused the TLS session: {reason}"
                                             ) from None

    def shutdown(self, how: int) -> None:
        """SHUT_WR sends close_notify alone: the daemon sees the end of what we send and goes
        on sending."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            try:
                with self._lock:
                    self._tls.unwrap()
            except ssl.SSLError:
                pass                  # close_notify is queued; the peer's is not awaited
            self._flush()
        if how != socket.SHUT_WR:
            self._raw.shutdown(how)

    def makefile(self, mode: str = "rb"):
        return io.BufferedReader(_Reader(self))

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()
