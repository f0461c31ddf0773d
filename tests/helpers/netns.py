"""Network for tests and benchmarks of berthd served over it: two network namespaces joined by a
veth pair (addresses in 198.18.0.0/30, the benchmarking range of RFC 2544, exist only inside
the pair), and free ports on the loopback."""
from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass

SERVER_IP, CLIENT_IP = "198.18.0.1", "198.18.0.2"


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (another program may take it before it is used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class NetnsPair:
    server: str
    client: str

    def enter(self, name: str) -> list[str]:
        """The command prefix that runs a program in that namespace (its network only: `ip
        netns exec` would also mount a new /sys over the cgroup hierarchies)."""
        return ["nsenter", f"--net=/run/netns/{name}"]

    @property
    def in_server(self) -> list[str]:
        return self.enter(self.server)

    @property
    def in_client(self) -> list[str]:
        return self.enter(self.client)


def make_pair(tag: str) -> NetnsPair:
    pair = NetnsPair(f"bt-{tag}-srv-{os.getpid()}", f"bt-{tag}-cli-{os.getpid()}")
    veth = f"bt{os.getpid() % 100000}"
    try:
        for ns in (pair.server, pair.client):
            _ip("netns", "add", ns)
        _ip("link", "add", f"{veth}s", "netns", pair.server, "type", "veth",
            "peer", "name", f"{veth}c", "netns", pair.client)
        for ns, dev, addr in ((pair.server, f"{veth}s", SERVER_IP),
                              (pair.client, f"{veth}c", CLIENT_IP)):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except BaseException:
        remove_pair(pair)
        raise
    return pair


def remove_pair(pair: NetnsPair) -> None:
    """Deleting the namespaces deletes the veth pair with them."""
    for ns in (pair.server, pair.client):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
