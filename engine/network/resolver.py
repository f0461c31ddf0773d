"""The embedded DNS server of a container on a user network, as dockerd's: it listens on
127.0.0.11:53 (UDP) inside the container's own network namespace, answers the names of the
containers on its networks (names, aliases, link aliases) itself, and forwards every other
query from the host's side to the upstream resolvers: the container's --dns servers, else the
host's /etc/resolv.conf ones (loopback ones too: berthd runs on the host, so the host's stub
resolver is reachable, as dockerd's forwarding from the host namespace makes it).

The socket is made inside the namespace (netns.run_in) and served by berthd's event loop; no
iptables rule is needed, as 127.0.0.11 is a loopback address of the container's lo."""
from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Callable

from . import dnsmsg, netns

log = logging.getLogger("berthd.network.dns")

ADDRESS = "127.0.0.11"
FORWARD_TIMEOUT = 3.0

Lookup = Callable[[str], list[str]]          # name -> addresses ([] unknown)
ReverseLookup = Callable[[str], str | None]  # address -> name


def host_resolvers(resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    try:
        text = Path(resolv_conf).read_text()
    except OSError:
        return []
    return [ln.split()[1] for ln in text.splitlines()
            if ln.split()[:1] == ["nameserver"] and len(ln.split()) > 1]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: "Server"):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.get_running_loop().create_task(self.server.handle(data, addr))
        self.server.pending.add(task)
        task.add_done_callback(self.server.pending.discard)


class Server:
    def __init__(self, lookup: Lookup, reverse: ReverseLookup, upstreams: list[str]):
        self.lookup, self.reverse, self.upstreams = lookup, reverse, upstreams
        self.protocol: _Protocol | None = None
        self.pending: set[asyncio.Task] = set()

    async def start(self, ns_path: str) -> None:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ADDRESS, 53))
            s.setblocking(False)
            return s
        sock = await asyncio.to_thread(netns.run_in, ns_path, make)
        loop = asyncio.get_running_loop()
        _, self.protocol = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                               sock=sock)

    def close(self) -> None:
        if self.protocol and self.protocol.transport:
            self.protocol.transport.close()
        for task in list(self.pending):
            task.cancel()

    async def handle(self, data: bytes, addr) -> None:
        reply = await self.answer(data)
        if reply and self.protocol and self.protocol.transport \
                and not self.protocol.transport.is_closing():
            self.protocol.transport.sendto(reply, addr)

    async def answer(self, data: bytes) -> bytes | None:
        q = dnsmsg.parse(data)
        if q is None:
            return None
        if q.qclass == dnsmsg.CLASS_IN and q.qtype in (dnsmsg.TYPE_A, dnsmsg.TYPE_AAAA):
            found = self.lookup(q.name)
            if found:
                # a container has no IPv6 address: its name exists, with no AAAA record
                return dnsmsg.answer_a(q, found) if q.qtype == dnsmsg.TYPE_A \
                    else dnsmsg.empty(q)
        if q.qclass == dnsmsg.CLASS_IN and q.qtype == dnsmsg.TYPE_PTR:
            addr = dnsmsg.ptr_address(q.name)
            name = self.reverse(addr) if addr else None
            if name:
                return dnsmsg.answer_ptr(q, name)
        return await self.forward(data, q)

    async def forward(self, data: bytes, q: dnsmsg.Question) -> bytes:
        loop = asyncio.get_running_loop()
        for upstream in self.upstreams:
            try:
                return await asyncio.wait_for(_ask(loop, upstream, data), FORWARD_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as e:
                log.debug("forwarding %s to %s: %s", q.name, upstream, e)
        return dnsmsg.empty(q, dnsmsg.SERVFAIL)


async def _ask(loop: asyncio.AbstractEventLoop, upstream: str, data: bytes) -> bytes:
    family = socket.AF_INET6 if ":" in upstream else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_connect(s, (upstream, 53))
        await loop.sock_sendall(s, data)
        while True:
            reply = await loop.sock_recv(s, 65535)
            if reply[:2] == data[:2]:       # the answer to this query (same ID)
                return reply
    finally:
        s.close()
