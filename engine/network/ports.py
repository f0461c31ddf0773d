"""Published ports: what HostConfig.PortBindings (and -P, the image's EXPOSE) ask, the host
ports berthd takes for them, and the shape dockerd gives them in NetworkSettings.Ports.

berthd publishes with DNAT rules (firewall.py) and the bridge's route_localnet, as dockerd does
with --userland-proxy=false, rather than a docker-proxy process per port: no process to start,
watch or leak per port, and the host's own 127.0.0.1 reaches the container through the OUTPUT
chain's DNAT. Each host port is still taken by a socket berthd binds (never listens on) for as
long as it is published: a port another program uses is refused at start, with dockerd's words,
and no two containers get the same one. The kernel picks a random port for `-p 80`."""
from __future__ import annotations

import socket
from dataclasses import dataclass

from ..errors import Conflict, InvalidParameter


@dataclass
class Mapping:
    proto: str
    host_ip: str            # "0.0.0.0" for every address
    host_port: int          # 0 until bound
    container_port: int
    host_range: tuple[int, int] | None = None    # a range to pick the host port from

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def as_record(self) -> dict:
        return {"Proto": self.proto, "HostIp": self.host_ip, "HostPort": self.host_port,
                "ContainerPort": self.container_port}


def _port(text: str, what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise InvalidParameter(f"invalid {what} port: {text}") from None
    if not 0 <= n <= 65535:
        raise InvalidParameter(f"invalid {what} port: {text}")
    return n


def parse_key(key: str) -> tuple[int, str]:
    """'80/tcp' (or '80') as (80, 'tcp'); sctp and ranges refused."""
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidParameter(f"berth cannot publish {key} yet: only tcp and udp ports")
    if "-" in port:
        raise InvalidParameter(f"invalid container port {key}: a range must be expanded")
    n = _port(port, "container")
    if n == 0:
        raise InvalidParameter(f"invalid container port {key}")
    return n, proto


def wanted(bindings: dict | None, publish_all: bool, exposed: dict | None) -> list[Mapping]:
    """The mappings a container asks: its PortBindings, and with -P every exposed port that
    has none (on a random host port)."""
    out = []
    bindings = dict(bindings or {})
    if publish_all:
        for key in exposed or {}:
            if not bindings.get(key):
                bindings[key] = [{"HostIp": "", "HostPort": ""}]
    for key, entries in sorted(bindings.items()):
        cport, proto = parse_key(key)
        for entry in entries or []:
            host_ip = (entry or {}).get("HostIp") or "0.0.0.0"
            try:
                addr = socket.inet_pton(socket.AF_INET, host_ip)
                del addr
            except OSError:
                raise InvalidParameter(f"berth cannot publish on {host_ip} yet: only IPv4 host "
                                       f"addresses") from None
            text = (entry or {}).get("HostPort") or ""
            if "-" in text:
                lo, _, hi = text.partition("-")
                start, end = _port(lo, "host"), _port(hi, "host")
                if start > end or start == 0:
                    raise InvalidParameter(f"invalid host port range: {text}")
                out.append(Mapping(proto, host_ip, 0, cport, (start, end)))
            else:
                out.append(Mapping(proto, host_ip, _port(text or "0", "host"), cport))
    return out


def _bind(m: Mapping, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if m.proto == "tcp"
                      else socket.SOCK_DGRAM)
    try:
        s.bind((m.host_ip, port))
    except OSError:
        s.close()
        raise
    return s


def reserve(m: Mapping, endpoint: str, container_ip: str) -> socket.socket:
    """Take the host port (the first free one of a range; a random one for 0), filling in
    m.host_port; the socket holds it until closed."""
    candidates = range(m.host_range[0], m.host_range[1] + 1) if m.host_range else [m.host_port]
    last: OSError | None = None
    for port in candidates:
        try:
            s = _bind(m, port)
        except OSError as e:
            last = e
            continue
        m.host_port = s.getsockname()[1]
        return s
    shown = f"{m.host_range[0]}-{m.host_range[1]}" if m.host_range else str(m.host_port)
    why = last.strerror.lower() if last and last.strerror else "unavailable"
    raise Conflict(f"driver failed programming external connectivity on endpoint {endpoint}: "
                   f"failed to bind host port for {m.host_ip}:{shown}:{container_ip}:"
                   f"{m.container_port}/{m.proto}: {why}")


def view(records: list[dict], exposed: dict | None) -> dict:
    """NetworkSettings.Ports as dockerd shapes it: each exposed or published port, with its
    bindings, or null when it is exposed only."""
    out: dict = {key: None for key in exposed or {}}
    for r in records:
        key = f"{r['ContainerPort']}/{r['Proto']}"
        out.setdefault(key, None)
        out[key] = (out[key] or []) + [{"HostIp": r["HostIp"], "HostPort": str(r["HostPort"])}]
    return out


def summary(records: list[dict], exposed: dict | None) -> list[dict]:
    """The Ports of GET /containers/json (what `docker ps` shows)."""
    out = [{"IP": r["HostIp"], "PrivatePort": r["ContainerPort"], "PublicPort": r["HostPort"],
            "Type": r["Proto"]} for r in records]
    published = {(r["ContainerPort"], r["Proto"]) for r in records}
    for key in exposed or {}:
        port, _, proto = key.partition("/")
        if port.isdigit() and (int(port), proto or "tcp") not in published:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out
