"""A small Docker Engine API client over a unix socket for the berth CLI (http.client; no aiohttp,
so a CLI start stays cheap). Paths go unprefixed: the daemon answers them at its own newest API
version, which saves the CLI the version-negotiation round trip."""
from __future__ import annotations

import http.client
import json
import os
import socket
from urllib.parse import urlencode

DEFAULT_HOST = "unix:///run/berth/berth.sock"


class DaemonError(Exception):
    """The daemon answered with an error status; message is its {"message": ...}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    pass


def default_host() -> str:
    return os.environ.get("BERTH_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    def __init__(self, host: str):
        if not host.startswith("unix://"):
            raise ConnectError(f"unsupported host {host}: only unix:///PATH is supported")
        self.host = host
        self.path = host[len("unix://"):]
        self._conn: _UnixConnection | None = None

    def _connection(self) -> _UnixConnection:
        if self._conn is None:
            self._conn = _UnixConnection(self.path)
        return self._conn

    def _cannot_connect(self, e: OSError) -> ConnectError:
        return ConnectError(f"Cannot connect to the berth daemon at {self.host}. Is berthd "
                            f"running? ({e.strerror or e})")

    @staticmethod
    def url(path: str, query: dict | None = None) -> str:
        if query:
            query = {k: v for k, v in query.items() if v is not None}
            if query:
                return path + "?" + urlencode(query)
        return path

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                *, new_connection: bool = False) -> http.client.HTTPResponse:
        """Send a request and return the response, raising DaemonError on an error status."""
        conn = _UnixConnection(self.path) if new_connection else self._connection()
        headers = {"Host": "localhost"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self.url(path, query), body=data, headers=headers)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            if not new_connection:
                self._conn = None
            raise self._cannot_connect(e) from None
        if resp.status >= 400:
            raw = resp.read()
            try:
                message = json.loads(raw)["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace").strip() or f"HTTP {resp.status}"
            raise DaemonError(resp.status, message)
        return resp

    def call(self, method: str, path: str, query: dict | None = None, body=None):
        """A request whose answer is JSON (or empty): the decoded answer."""
        raw = self.request(method, path, query, body).read()
        return json.loads(raw) if raw.strip() else None

    def hijack(self, path: str, query: dict | None = None) -> tuple[socket.socket, bytes]:
        """POST with Upgrade: tcp; returns the raw socket and any bytes after the 101 headers."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise self._cannot_connect(e) from None
        s.sendall((f"POST {self.url(path, query)} HTTP/1.1\r\nHost: localhost\r\n"
                   "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 0\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                s.close()
                raise ConnectError("the daemon closed the attach connection")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            try:
                message = json.loads(rest)["message"]
            except (ValueError, KeyError, TypeError):
                message = rest.decode(errors="replace").strip() or status_line
            s.close()
            raise DaemonError(status, message)
        return s, rest

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def read_frames(sock: socket.socket, first: bytes, tty: bool):
    """(stream, data) from an attach or log stream: raw when the container has a TTY, else
    the multiplexed framing (8-byte header: type, 0, 0, 0, big-endian length)."""
    buf = first
    if tty:
        if buf:
            yield 1, buf
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            yield 1, chunk
    while True:
        while len(buf) >= 8:
            stream, size = buf[0], int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            yield stream, buf[8:8 + size]
            buf = buf[8 + size:]
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk


def read_response_frames(resp: http.client.HTTPResponse, tty: bool):
    """The same framing read from an HTTP response body (logs)."""
    if tty:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                return
            yield 1, chunk
    while True:
        header = resp.read(8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:8], "big")
        yield header[0], resp.read(size)
