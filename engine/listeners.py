"""Where berthd serves the API (`-H`): unix sockets, TCP with mutual TLS, and the sockets systemd
hands over by socket activation (`fd://`), as dockerd's hosts.

A TCP port is served by an accept loop of our own rather than aiohttp's TCPSite, for two things
a site cannot do: a client that speaks plain HTTP to the TLS port gets an answer saying so (as
Go's servers answer; otherwise it would only see the connection drop), and a failed handshake is
logged with the peer's address and the reason (no certificate, another CA, expired).
"""
from __future__ import annotations

import asyncio
import grp
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from lowrt.units import ascii_digits

log = logging.getLogger("berthd")

HANDSHAKE_TIMEOUT = 10.0
# what a client that sent plain HTTP to the TLS port reads (the words Go's servers use)
_PLAIN_HTTP_ANSWER = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                      b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")


@dataclass(frozen=True)
class Host:
    """One -H: scheme unix (address: the path), tcp (host, port) or fd (which: '' for all)."""
    scheme: str
    address: str
    port: int = 0

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.address}]" if ":" in self.address else self.address
            return f"tcp://{host}:{self.port}"
        return f"{self.scheme}://{self.address}"


def parse_host(text: str, tls: bool) -> Host:
    """unix:///PATH, tcp://[HOST]:[PORT] (port 2376 with TLS, else 2375, as dockerd) or
    fd://[N or name]."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"invalid host {text!r}: expected unix:///PATH, tcp://HOST:PORT or fd://")
    if scheme == "unix":
        if not rest.startswith("/"):
            raise ValueError(f"invalid host {text!r}: a unix socket path must be absolute")
        return Host("unix", rest)
    if scheme == "fd":
        return Host("fd", rest)
    if scheme == "tcp":
        rest = rest.rstrip("/")
        if "/" in rest:
            raise ValueError(f"invalid host {text!r}: a tcp address has no path")
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
        if not port:
            port_no = 2376 if tls else 2375
        elif ascii_digits(port) and 0 < int(port) < 65536:
            port_no = int(port)
        else:
            raise ValueError(f"invalid host {text!r}: invalid port {port!r}")
        return Host("tcp", host or "0.0.0.0", port_no)
    raise ValueError(f"invalid host {text!r}: unsupported scheme {scheme!r} "
                     "(unix, tcp and fd are served)")


def server_tls_context(cacert: str | None, cert: str, key: str, verify: bool) -> ssl.SSLContext:
    """TLS 1.2 or later; with verify, a client must show a certificate signed by cacert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"could not load the tls certificate {cert} and key {key}: "
                         f"{_reason(e)}") from None
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cacert)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"could not read the tls ca certificate {cacert}: "
                             f"{_reason(e)}") from None
    return ctx


def _reason(e: BaseException) -> str:
    if getattr(e, "verify_message", None):
        return e.verify_message
    if isinstance(e, ssl.SSLError) and e.reason:
        return e.reason.lower().replace("_", " ")
    if isinstance(e, ssl.SSLError) and e.args:
        return str(e.args[-1])
    return getattr(e, "strerror", None) or str(e)


def unix_socket(path: Path, group: str | None, group_required: bool) -> socket.socket:
    """A unix socket bound at path, mode 0660 and owned by root and the group (dockerd's
    docker group); the caller makes it listen, after which clients may connect."""
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid if not ascii_digits(group) else int(group)
        except KeyError:
            if group_required:
                raise ValueError(f"can't create unix socket {path}: group {group!r} not found")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o660)
        os.chown(path, 0, gid)
    except BaseException:
        sock.close()
        raise
    return sock


def tcp_socket(host: Host) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.address, host.port))
    except OSError as e:
        sock.close()
        raise ValueError(f"can't listen on {host}: {e.strerror or e}") from None
    return sock


class StreamListener:
    """Accepts connections on a listening stream socket and hands each, after a TLS handshake
    when there is a context, to the HTTP server (aiohttp's protocol factory)."""

    def __init__(self, sock: socket.socket, protocol_factory, tls: ssl.SSLContext | None):
        self._sock = sock
        self._factory = protocol_factory
        self._tls = tls
        self._accepting: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        sock.setblocking(False)

    @property
    def name(self) -> str:
        addr = self._sock.getsockname()
        if isinstance(addr, tuple):
            return f"tcp://{addr[0]}:{addr[1]}"
        return f"unix://{addr}" if addr else f"fd://{self._sock.fileno()}"

    def start(self) -> None:
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    async def close(self) -> None:
        for task in [self._accepting, *self._pending]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._accepting, *self._pending] if t],
                             return_exceptions=True)
        self._sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(self._sock)
            except OSError as e:   # EMFILE and the like: wait, do not spin
                log.warning("accept on %s: %s", self.name, e.strerror or e)
                await asyncio.sleep(0.5)
                continue
            task = loop.create_task(self._serve(conn, _peer_name(peer)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _serve(self, conn: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._tls is None:
                await loop.connect_accepted_socket(self._factory, conn)
                return
            first = await _peek(conn)
            if first and first[0] != 0x16:        # not a TLS handshake record
                log.warning("refused a plain HTTP request to the tls port %s from %s",
                            self.name, peer)
                await _answer_and_close(conn, _PLAIN_HTTP_ANSWER)
                return
            await _tls_connection(conn, self._factory, self._tls)
        except (OSError, asyncio.TimeoutError, ConnectionError) as e:
            # the SSL transport closes the socket on a failed handshake
            log.warning("tls connection from %s to %s refused: %s", peer, self.name,
                        _reason(e) or type(e).__name__)
            conn.close()


async def _tls_connection(conn: socket.socket, factory, context: ssl.SSLContext) -> None:
    """The HTTP server's protocol over TLS on conn, once the handshake is done (an error if
    it fails); with attach's half-close where tls_protocol can give it."""
    from . import tls_protocol

    loop = asyncio.get_running_loop()
    if not tls_protocol.SUPPORTED:
        await loop.connect_accepted_socket(factory, conn, ssl=context,
                                           ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        return
    handshake = loop.create_future()
    protocol = tls_protocol.HalfCloseSSLProtocol(
        loop, factory(), context, handshake, server_side=True,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
    await loop.connect_accepted_socket(lambda: protocol, conn)
    await handshake


async def _answer_and_close(conn: socket.socket, answer: bytes) -> None:
    """Send the answer and close, after reading what the client sent: closing with its request
    unread would reset the connection, and the client would see the reset, not the answer."""
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(conn, answer)
        conn.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(2):
            while await loop.sock_recv(conn, 65536):
                pass
    except (OSError, TimeoutError):
        pass
    finally:
        conn.close()


async def _peek(conn: socket.socket) -> bytes:
    """The first bytes the client sent, left unread for the TLS handshake."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await asyncio.wait_for(readable, HANDSHAKE_TIMEOUT)
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv(1, socket.MSG_PEEK)


def _peer_name(peer) -> str:
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return peer or "a unix socket client"
