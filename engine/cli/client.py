"""A small Docker Engine API client for the berth CLI, over the connections transport.py makes
(unix socket, TCP with or without TLS, ssh).

HTTP/1.1 is spoken by hand on a socket: http.client pulls in the email package (~60 ms of
imports), and every berth command pays for what it imports. Paths go unprefixed: the daemon
answers them at its own newest API version, which saves the version-negotiation round trip.
"""
from __future__ import annotations

import json
import os

DEFAULT_HOST = "unix:///run/berth/berth.sock"
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


class DaemonError(Exception):
    """The daemon answered with an error status; message is its {"message": ...}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    pass


def connection_error(e: BaseException, conn=None) -> ConnectError:
    """A ConnectError that says what the transport (ssh's own errors) knows of the failure."""
    failure = getattr(conn, "failure", None)
    detail = failure() if failure else ""
    text = detail or str(e) or type(e).__name__
    return ConnectError(text if text.startswith("error during connect") else
                        f"error during connect: {text}")


def default_host() -> str:
    return os.environ.get("BERTH_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def quote(value) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in str(value).encode())


def url(path: str, query: dict | None = None) -> str:
    items = [(k, v) for k, v in (query or {}).items() if v is not None]
    if not items:
        return path
    return path + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in items)


def _error_message(status: int, body: bytes, fallback: str) -> str:
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or fallback or f"HTTP {status}"


class Response:
    """An HTTP response read from a socket: status, headers (lower-case names), and a body
    read by Content-Length, chunks, or to the end of the connection."""

    def __init__(self, rfile, sock):
        self._rfile = rfile
        self.sock = sock
        line = rfile.readline()
        if not line:
            raise ConnectError("the daemon closed the connection without an answer")
        parts = line.decode("latin-1").split(" ", 2)
        if not parts[0].startswith("HTTP/") or len(parts) < 2 or not parts[1].isdigit():
            raise ConnectError("the daemon's end answered something that is not HTTP: "
                               f"{line[:200].decode(errors='replace').strip()!r}")
        self.status = int(parts[1])
        self.reason = parts[2].strip() if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            line = rfile.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        length = self.headers.get("content-length")
        self._left = int(length) if length is not None else None
        if self.status in (101, 204, 304):
            self._left = 0 if self.status != 101 else None
        self._done = self._left == 0 and not self.chunked

    def chunks(self):
        """The body, piece by piece as it arrives."""
        if self._done:
            return
        if self.chunked:
            while True:
                size = int(self._rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._rfile.readline()
                    break
                data = self._rfile.read(size)
                self._rfile.readline()
                yield data
        elif self._left is not None:
            while self._left > 0:
                data = self._rfile.read1(min(self._left, 65536))
                if not data:
                    break
                self._left -= len(data)
                yield data
        else:
            while True:
                data = self._rfile.read1(65536)
                if not data:
                    break
                yield data
        self._done = True

    def read(self) -> bytes:
        return b"".join(self.chunks())


class Client:
    def __init__(self, host: str, tls=None):
        self.host = host
        self.tls = tls                # transport.TLSOptions, for tcp://
        self._sock = None
        self._rfile = None
        self._last: Response | None = None

    def connect(self):
        """A new connection to the daemon (a socket, or what offers a socket's methods)."""
        from .transport import TransportError, connect
        try:
            return connect(self.host, self.tls)
        except TransportError as e:
            raise ConnectError(str(e)) from None

    def _send(self, s, method: str, target: str, body: bytes | None,
              extra: str = "") -> None:
        head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: berth-cli\r\n{extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"
        s.sendall(head.encode() + b"\r\n" + (body or b""))

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                *, new_connection: bool = False) -> Response:
        """Send a request; the response (its body unread), or DaemonError on an error status.
        Requests share one kept-alive connection unless new_connection is asked for."""
        data = json.dumps(body).encode() if body is not None else None
        target = url(path, query)
        if new_connection:
            s = self.connect()
            try:
                self._send(s, method, target, data)
                resp = Response(s.makefile("rb"), s)
            except (OSError, ConnectError) as e:
                s.close()
                raise connection_error(e, s) from None
        else:
            if self._last is not None and not self._last._done:
                self._last.read()         # finish the previous answer on this connection
            for attempt in (0, 1):
                if self._sock is None:
                    self._sock = self.connect()
                    self._rfile = self._sock.makefile("rb")
                try:
                    self._send(self._sock, method, target, data)
                    resp = Response(self._rfile, self._sock)
                    break
                except (OSError, ConnectError) as e:
                    # the daemon closed a kept-alive connection: once more
                    error = connection_error(e, self._sock)
                    self.close()
                    if attempt:
                        raise error from None
            self._last = resp
        if resp.status >= 400:
            raise DaemonError(resp.status, _error_message(resp.status, resp.read(), resp.reason))
        return resp

    def call(self, method: str, path: str, query: dict | None = None, body=None):
        """A request whose answer is JSON (or empty): the decoded answer."""
        raw = self.request(method, path, query, body).read()
        return json.loads(raw) if raw.strip() else None

    def hijack(self, path: str, query: dict | None = None, body=None):
        """POST with Upgrade: tcp; returns the raw socket and any bytes after the 101 headers."""
        s = self.connect()
        if body is None:
            self._send(s, "POST", url(path, query), None,
                       "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n")
        else:
            self._send(s, "POST", url(path, query), json.dumps(body).encode(),
                       "Connection: Upgrade\r\nUpgrade: tcp\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                error = connection_error(ConnectError("the daemon closed the attach "
                                                      "connection"), s)
                s.close()
                raise error
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            s.close()
            raise DaemonError(status, _error_message(status, rest, status_line))
        return s, rest

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._rfile = self._last = None


def read_frames(sock, first: bytes, tty: bool):
    """(stream, data) from an attach stream: raw when the container has a TTY, else the
    multiplexed framing (8-byte header: type, 0, 0, 0, big-endian length)."""
    def pieces():
        if first:
            yield first
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            yield chunk
    return demux(pieces(), tty)


def demux(pieces, tty: bool):
    """(stream, data) from a byte stream given in pieces (an attach socket, a logs body)."""
    if tty:
        for piece in pieces:
            yield 1, piece
        return
    buf = b""
    for piece in pieces:
        buf += piece
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            yield buf[0], buf[8:8 + size]
            buf = buf[8 + size:]
