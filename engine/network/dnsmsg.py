"""The few DNS messages berthd's embedded server reads and writes (RFC 1035), pure logic: a
query's question, and the answers it gives itself (A records of containers, PTR, an empty
NOERROR, NXDOMAIN, SERVFAIL). Everything else is forwarded untouched."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

TYPE_A, TYPE_PTR, TYPE_AAAA = 1, 12, 28
CLASS_IN = 1
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
TTL = 600       # dockerd's embedded server gives its records 600 s


@dataclass
class Question:
    ident: int
    flags: int
    name: str           # lowercased, without the trailing dot
    qtype: int
    qclass: int
    raw: bytes          # the question section as it came, echoed in the answer


def parse(data: bytes) -> Question | None:
    """The first question of a query; None for what is not a well-formed standard query."""
    if len(data) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qdcount < 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(data):
            return None         # no compression in a question we answer
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return Question(ident, flags, ".".join(labels).lower(), qtype, qclass, data[12:pos + 4])


def _header(q: Question, rcode: int, ancount: int) -> bytes:
    # QR, the query's opcode and RD, RA (we recurse by forwarding), the rcode
    flags = 0x8000 | (q.flags & 0x0100) | 0x0080 | rcode
    return struct.pack("!HHHHHH", q.ident, flags, 1, ancount, 0, 0)


def answer_a(q: Question, addresses: list[str]) -> bytes:
    records = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4)
                       + socket.inet_aton(a) for a in addresses)
    return _header(q, NOERROR, len(addresses)) + q.raw + records


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def answer_ptr(q: Question, name: str) -> bytes:
    target = _encode_name(name)
    record = struct.pack("!HHHIH", 0xC00C, TYPE_PTR, CLASS_IN, TTL, len(target)) + target
    return _header(q, NOERROR, 1) + q.raw + record


def empty(q: Question, rcode: int = NOERROR) -> bytes:
    return _header(q, rcode, 0) + q.raw


def ptr_address(name: str) -> str | None:
    """'4.3.2.1.in-addr.arpa' -> '1.2.3.4'."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[:-len(suffix)].split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return ".".join(reversed(parts))
