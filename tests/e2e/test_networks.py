"""Networks with the unchanged docker CLI against berthd: user networks whose containers reach
each other by name and alias, published ports reached from the host's loopback, a container
reaching the host and, through NAT, an "outside" network namespace the test makes, --network
none and container:<name>, --internal, the embedded DNS forwarding to a stub resolver the test
runs on the loopback, the refusals (a taken port, an overlapping subnet, a network in use, a bad
--ip) and a berthd restart. Traffic goes only to the loopback and to namespaces made here.

After each test, nothing of its containers is left: no sandbox in berthd's state, no
/run/netns entry, no veth on the host, no rule naming their addresses."""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

# a shell loop that tries a command until it works (a server in another container may not
# listen yet), 50 times 0.1 s
RETRY = "for i in $(seq 50); do {} && break; sleep 0.1; done"
CLIS = [c for c in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(c)]
TAG = os.getpid() % 10000
# the "outside": a namespace joined to the host by a veth pair, addresses of RFC 2544's range
OUT_HOST, OUT_NS = "198.18.7.1", "198.18.7.2"


def _docker(daemon, cli: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, env=daemon.env(), timeout=timeout)


def _state(daemon) -> dict:
    path = daemon.data_root / "network" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _iptables() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True).stdout


def _networks(daemon) -> set[str]:
    return {n["Id"] for n in daemon.api("GET", "/networks").json()}


def _leftovers(daemon, ids: set[str], addresses: set[str]) -> list[str]:
    out = []
    boxes = _state(daemon).get("Sandboxes", {})
    out += [f"sandbox {cid[:12]}" for cid in ids if cid in boxes]
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    out += [f"netns berth-{cid[:12]}" for cid in ids if f"berth-{cid[:12]}" in netns]
    rules = _iptables()
    out += [f"rule naming {a}" for a in addresses if f"{a}/32" in rules or f"{a}:" in rules]
    return out


@pytest.fixture
def net(daemon):
    """The session's berthd; after the test its containers and networks are removed and
    nothing of them may be left."""
    before_nets = _networks(daemon)
    seen: dict[str, set[str]] = {"ids": set(), "addresses": set()}

    def track() -> None:
        for c in daemon.api("GET", "/containers/json?all=1").json():
            seen["ids"].add(c["Id"])
            for ep in (c.get("NetworkSettings") or {}).get("Networks", {}).values():
                if ep.get("IPAddress"):
                    seen["addresses"].add(ep["IPAddress"])
    daemon.track = track
    yield daemon
    track()
    daemon.remove_containers(daemon.container_ids())
    for nid in _networks(daemon) - before_nets:
        r = daemon.api("DELETE", f"/networks/{nid}")
        assert r.status == 204, r
    assert _leftovers(daemon, seen["ids"], seen["addresses"]) == []


def _run(daemon, *args: str, cli: str | None = None) -> subprocess.CompletedProcess:
    p = _docker(daemon, cli or CLIS[-1], *args)
    daemon.track()
    return p


def _ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout.decode()


def _wait_for(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("cli", CLIS)
def test_network_create_ls_inspect_rm_from_the_docker_cli(net, cli):
    name = f"bt-cli-{TAG}"
    nid = _ok(_docker(net, cli, "network", "create", "--subnet", "10.251.30.0/24",
                      "--gateway", "10.251.30.254", "--ip-range", "10.251.30.128/25",
                      "--label", "team=a", name)).strip()
    assert len(nid) == 64
    ls = _ok(_docker(net, cli, "network", "ls", "--filter", "label=team=a", "--format",
                     "{{.Name}} {{.Driver}} {{.Scope}}"))
    assert ls == f"{name} bridge local\n"
    info = json.loads(_ok(_docker(net, cli, "network", "inspect", name)))[0]
    assert info["IPAM"]["Config"] == [{"Subnet": "10.251.30.0/24", "Gateway": "10.251.30.254",
                                       "IPRange": "10.251.30.128/25"}]
    assert info["Labels"] == {"team": "a"} and info["Internal"] is False
    # the range gives the first address; the inspect lists the container
    _ok(_run(net, "run", "-d", "--name", f"c-{TAG}", "--network", name, "busybox",
             "sleep", "60", cli=cli))
    info = json.loads(_ok(_docker(net, cli, "network", "inspect", name)))[0]
    (ep,) = info["Containers"].values()
    assert ep["Name"] == f"c-{TAG}" and ep["IPv4Address"] == "10.251.30.129/24"
    p = _docker(net, cli, "network", "rm", name)
    assert p.returncode != 0 and b"has active endpoints" in p.stderr, p
    _ok(_docker(net, cli, "rm", "-f", f"c-{TAG}"))
    assert _ok(_docker(net, cli, "network", "rm", name)) == f"{name}\n"
    p = _docker(net, cli, "network", "inspect", name)
    assert p.returncode == 1 and (b"No such network" in p.stderr or b"not found" in p.stderr), p
    assert name not in _ok(_docker(net, cli, "network", "ls"))


@pytest.mark.parametrize("cli", CLIS)
def test_two_containers_on_a_user_network_reach_each_other_by_name_and_alias(net, cli):
    name = f"bt-app-{TAG}"
    _ok(_run(net, "network", "create", name, cli=cli))
    _ok(_run(net, "run", "-d", "--name", f"web-{TAG}", "--network", name, "--network-alias",
             "www", "busybox", "sh", "-c",
             "echo hello > /tmp/index.html; httpd -p 80 -h /tmp; nc -l -p 7000 > /tmp/got; "
             "sleep 60", cli=cli))
    out = _ok(_run(net, "run", "--rm", "--network", name, "busybox", "sh", "-c",
                   f"cat /etc/resolv.conf; ping -c1 -W5 web-{TAG} >/dev/null && echo ping-ok; "
                   # the servers may not listen yet: a few tries
                   f"{RETRY.format('wget -qO- http://www/index.html')}; "
                   f"{RETRY.format('echo via-nc | nc www 7000')}", cli=cli))
    assert "nameserver 127.0.0.11" in out and "options ndots:0" in out
    assert "ping-ok" in out and "hello" in out
    _wait_for(lambda: _ok(_run(net, "exec", f"web-{TAG}", "cat", "/tmp/got")) == "via-nc\n")
    info = json.loads(_ok(_run(net, "inspect", f"web-{TAG}")))[0]
    ep = info["NetworkSettings"]["Networks"][name]
    assert ep["Aliases"] == ["www"] and ep["IPAddress"].count(".") == 3
    assert info["NetworkSettings"]["SandboxKey"] == f"/run/netns/berth-{info['Id'][:12]}"


@pytest.mark.parametrize("cli", CLIS)
def test_a_published_port_is_reached_from_the_hosts_loopback(net, cli):
    cid = _ok(_run(net, "run", "-d", "-p", "127.0.0.1:0:80", "-p", "127.0.0.1::81/udp",
                   "busybox", "sh", "-c",
                   "echo served > /tmp/i.html; httpd -f -p 80 -h /tmp", cli=cli)).strip()
    port = _ok(_run(net, "port", cid, "80/tcp", cli=cli))
    assert port.startswith("127.0.0.1:"), port
    host_port = int(port.strip().rsplit(":", 1)[1])

    def fetch() -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", host_port), timeout=5) as s:
                s.sendall(b"GET /i.html HTTP/1.0\r\n\r\n")
                return s.makefile("rb").read()
        except OSError:         # httpd not listening yet
            return b""
    _wait_for(lambda: b"served" in fetch())
    ports = json.loads(_ok(_run(net, "inspect", "-f", "{{json .NetworkSettings.Ports}}", cid)))
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]
    assert ports["81/udp"][0]["HostIp"] == "127.0.0.1"
    ps = _ok(_run(net, "ps", "--filter", f"id={cid}", "--format", "{{.Ports}}", cli=cli))
    assert f"127.0.0.1:{host_port}->80/tcp" in ps
    # the host port is taken while it is published, and free after
    with pytest.raises(OSError):
        socket.socket().bind(("127.0.0.1", host_port))
    _ok(_run(net, "rm", "-f", cid))
    with socket.socket() as s:
        s.bind(("127.0.0.1", host_port))


def test_a_container_reaches_a_neighbours_port_published_on_the_host(net):
    """Hairpin: A asks the host (its gateway) for a port that leads to B on the same bridge."""
    _ok(_run(net, "run", "--rm", "busybox", "true"))        # the default bridge is up
    gateway = net.api("GET", "/networks/bridge").json()["IPAM"]["Config"][0]["Gateway"]
    cid = _ok(_run(net, "run", "-d", "-p", f"{gateway}::80", "busybox", "sh", "-c",
                   "echo neighbour > /tmp/i.html; httpd -f -p 80 -h /tmp")).strip()
    port = _ok(_run(net, "port", cid, "80")).strip().rsplit(":", 1)[1]
    out = _ok(_run(net, "run", "--rm", "busybox", "sh", "-c",
                   RETRY.format(f"wget -qO- http://{gateway}:{port}/i.html")))
    assert "neighbour" in out


def test_publish_all_gives_each_exposed_port_a_host_port(net):
    cid = _ok(_run(net, "run", "-d", "--expose", "80", "--expose", "90", "-P", "busybox",
                   "sleep", "60")).strip()
    lines = sorted(_ok(_run(net, "port", cid)).splitlines())
    assert [ln.split(" -> ")[0] for ln in lines if ln.startswith(("80/", "90/"))][:2] == \
        ["80/tcp", "90/tcp"], lines


@pytest.fixture
def outside():
    """A namespace standing in for the outside world, joined to the host by a veth pair."""
    name, veth = f"bt-out-{os.getpid()}", f"btout{TAG}"
    run = lambda *a: subprocess.run(["ip", *a], check=True, capture_output=True)  # noqa: E731
    run("netns", "add", name)
    try:
        run("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("addr", "add", f"{OUT_HOST}/30", "dev", veth)
        run("link", "set", veth, "up")
        run("-n", name, "addr", "add", f"{OUT_NS}/30", "dev", "eth0")
        run("-n", name, "link", "set", "eth0", "up")
        run("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _peer_seen_by_a_server_in(ns: str, port: int, client) -> str:
    """Runs a one-connection TCP server in the namespace, client() connects to it; the
    address the server saw the connection come from."""
    server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", "python3", "-c",
         "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
         "socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(); "
         "print('ready', flush=True); c, a = s.accept(); print(a[0], flush=True); c.close()",
         str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        client()
        return server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def test_a_container_reaches_the_host_and_the_outside_through_nat(net, outside):
    # the host, at the default bridge's gateway (up since a container's start)
    _ok(_run(net, "run", "--rm", "busybox", "true"))
    gateway = net.api("GET", "/networks/bridge").json()["IPAM"]["Config"][0]["Gateway"]
    with socket.socket() as listener:
        listener.bind((gateway, 0))
        listener.listen()
        port = listener.getsockname()[1]
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                got.append(conn.recv(16))
        server = threading.Thread(target=serve)
        server.start()
        _ok(_run(net, "run", "--rm", "busybox", "sh", "-c", f"echo hi | nc {gateway} {port}"))
        server.join(10)
        assert got == [b"hi\n"]
    # the outside sees the host's address there (masqueraded), not the container's
    seen = _peer_seen_by_a_server_in(outside, 7100, lambda: _ok(_run(
        net, "run", "--rm", "busybox", "sh", "-c", f"echo hi | nc {OUT_NS} 7100")))
    assert seen == OUT_HOST


def test_an_internal_network_cannot_get_out(net, outside):
    name = f"bt-int-{TAG}"
    _ok(_run(net, "network", "create", "--internal", name))
    _ok(_run(net, "run", "-d", "--name", f"peer-{TAG}", "--network", name, "busybox",
             "sleep", "60"))
    out = _run(net, "run", "--rm", "--network", name, "busybox", "sh", "-c",
               f"ping -c1 -W5 peer-{TAG} >/dev/null && echo peer-ok; ip route; "
               f"nc -w 2 {OUT_NS} 7101 </dev/null && echo out-ok || echo out-failed")
    text = _ok(out)
    assert "peer-ok" in text and "default" not in text and "out-failed" in text, text


def test_network_none_has_only_lo_and_container_mode_shares_the_stack(net):
    assert _ok(_run(net, "run", "--rm", "--network", "none", "busybox", "ls",
                    "/sys/class/net")).split() == ["lo"]
    cid = _ok(_run(net, "run", "-d", "--name", f"host-{TAG}", "busybox", "sh", "-c",
                   "echo shared > /tmp/i.html; httpd -f -p 8080 -h /tmp")).strip()
    own = _ok(_run(net, "exec", cid, "ip", "-4", "-o", "addr", "show", "eth0"))
    shared = _ok(_run(net, "run", "--rm", "--network", f"container:host-{TAG}", "busybox", "sh",
                      "-c", "ip -4 -o addr show eth0; "
                      + RETRY.format("wget -qO- http://127.0.0.1:8080/i.html")))
    assert shared.splitlines()[0].split()[3] == own.split()[3]
    assert "shared" in shared
    _ok(_run(net, "stop", "-t", "1", cid))
    p = _run(net, "run", "--rm", "--network", f"container:host-{TAG}", "busybox", "true")
    assert p.returncode != 0 and b"cannot join network of a non running " \
        b"container" in p.stderr, p


class _StubResolver:
    """A DNS server on the host's loopback that answers every A query with OUT_NS."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.77", 53))
        self.sock.settimeout(0.2)
        self.asked: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            end = data.index(b"\0", 12) + 5
            self.asked.append(data[12:end])
            answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(OUT_NS)
            self.sock.sendto(data[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
                             + data[12:end] + answer, addr)

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_the_embedded_dns_forwards_other_names_to_the_containers_dns(net):
    name = f"bt-dns-{TAG}"
    _ok(_run(net, "network", "create", name))
    stub = _StubResolver()
    try:
        out = _ok(_run(net, "run", "--rm", "--network", name, "--name", f"self-{TAG}",
                       "--dns", "127.0.0.77", "busybox", "sh", "-c",
                       f"nslookup outside.example.test; nslookup self-{TAG}"))
    finally:
        stub.close()
    assert f"Address: {OUT_NS}" in out, out
    assert any(b"outside" in q for q in stub.asked)
    assert not any(f"self-{TAG}".encode() in q for q in stub.asked)   # answered itself


def test_hosts_and_dns_settings_as_dockerd_writes_them(net):
    out = _ok(_run(net, "run", "--rm", "-h", "box", "--add-host", "gw:host-gateway",
                   "--add-host", "db:192.0.2.9", "--dns", "192.0.2.53", "--dns-search", "corp",
                   "--dns-option", "ndots:3", "busybox", "sh", "-c",
                   "cat /etc/hosts /etc/resolv.conf /etc/hostname; hostname -i"))
    gateway = net.api("GET", "/networks/bridge").json()["IPAM"]["Config"][0]["Gateway"]
    lines = out.splitlines()
    own = lines[-1].strip()
    assert f"{gateway}\tgw" in lines and "192.0.2.9\tdb" in lines and f"{own}\tbox" in lines
    assert "nameserver 192.0.2.53" in lines and "search corp" in lines
    assert "options ndots:3" in lines and "box" in lines


def test_refusals_leave_nothing_behind(net):
    # a host port another program holds
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        p = _run(net, "run", "--name", f"taken-{TAG}", "-p", f"127.0.0.1:{taken}:80",
                 "busybox", "true")
        assert p.returncode != 0 and f"127.0.0.1:{taken}".encode() in p.stderr \
            and b"address already in use" in p.stderr, p
    info = json.loads(_ok(_run(net, "inspect", f"taken-{TAG}")))[0]
    assert not info["State"]["Running"] and info["NetworkSettings"]["SandboxKey"] == ""
    assert info["Id"] not in _state(net).get("Sandboxes", {})
    # an overlapping subnet
    _ok(_run(net, "network", "create", "--subnet", "10.251.40.0/24", f"bt-a-{TAG}"))
    p = _run(net, "network", "create", "--subnet", "10.251.40.128/25", f"bt-b-{TAG}")
    assert p.returncode != 0 and b"Pool overlaps with other one" in p.stderr, p
    assert f"bt-b-{TAG}" not in _ok(_run(net, "network", "ls"))
    # bad addresses: outside the subnet, not an address, on the default bridge
    for ip, words in (("10.251.41.5", b"no configured subnet contains IP address"),
                      ("10.251.40.300", b"invalid"),
                      ):
        p = _run(net, "run", "--rm", "--network", f"bt-a-{TAG}", "--ip", ip, "busybox", "true")
        assert p.returncode != 0 and words in p.stderr, (ip, p)
    # through the API: docker CLI 20.10 drops --ip without a user network, where 28 sends it
    r = net.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "NetworkingConfig": {"EndpointsConfig": {
            "bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.99"}}}}})
    assert r.status == 400 and "user specified IP address is supported on user defined " \
        "networks only" in r.json()["message"], r
    # a static address is given, and taken twice is refused
    _ok(_run(net, "run", "-d", "--name", f"st-{TAG}", "--network", f"bt-a-{TAG}", "--ip",
             "10.251.40.50", "busybox", "sleep", "60"))
    assert _ok(_run(net, "exec", f"st-{TAG}", "ip", "-4", "-o", "addr", "show",
                    "eth0")).split()[3] == "10.251.40.50/24"
    p = _run(net, "run", "--rm", "--network", f"bt-a-{TAG}", "--ip", "10.251.40.50", "busybox",
             "true")
    assert p.returncode != 0 and b"Address already in use" in p.stderr, p
    # a network in use
    p = _run(net, "network", "rm", f"bt-a-{TAG}")
    assert p.returncode != 0 and b"has active endpoints" in p.stderr, p


def test_connect_and_disconnect_a_running_container(net):
    a, b = f"bt-ca-{TAG}", f"bt-cb-{TAG}"
    _ok(_run(net, "network", "create", a))
    _ok(_run(net, "network", "create", b))
    _ok(_run(net, "run", "-d", "--name", f"srv-{TAG}", "--network", b, "busybox", "sleep", "60"))
    cid = _ok(_run(net, "run", "-d", "--name", f"cl-{TAG}", "--network", a, "busybox",
                   "sleep", "60")).strip()
    p = _run(net, "exec", cid, "ping", "-c1", "-W2", f"srv-{TAG}")
    assert p.returncode != 0
    _ok(_run(net, "network", "connect", "--alias", "svc-alias", b, cid))
    _ok(_run(net, "exec", cid, "ping", "-c1", "-W5", f"srv-{TAG}"))
    assert set(json.loads(_ok(_run(net, "inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                   cid)))) == {a, b}
    _ok(_run(net, "network", "disconnect", b, cid))
    assert _ok(_run(net, "exec", cid, "ls", "/sys/class/net")).split() == ["eth0", "lo"]
    p = _run(net, "network", "disconnect", b, cid)
    assert p.returncode != 0 and b"is not connected to network" in p.stderr, p
    # dockerd's network events, for the starts, the connect and the disconnect
    now = int(time.time()) + 1
    events = _ok(_run(net, "events", "--since", str(now - 120), "--until", str(now),
                      "--filter", "type=network", "--format",
                      "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}"))
    lines = [[w for w in ln.split() if w not in ("<no", "value>")]
             for ln in events.splitlines()]
    for want in (["create", a], ["create", b], ["connect", b, cid], ["disconnect", b, cid]):
        assert want in lines, (want, events)


def test_a_berthd_restart_keeps_a_running_containers_network(net):
    name = f"bt-rs-{TAG}"
    _ok(_run(net, "network", "create", name))
    _ok(_run(net, "run", "-d", "--name", f"rs-{TAG}", "--network", name, "-p",
             "127.0.0.1::80", "busybox", "sh", "-c",
             "echo still > /tmp/i.html; httpd -f -p 80 -h /tmp")).strip()
    port = int(_ok(_run(net, "port", f"rs-{TAG}", "80")).strip().rsplit(":", 1)[1])
    net.stop()
    net.start()

    def fetch() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /i.html HTTP/1.0\r\n\r\n")
                return b"still" in s.makefile("rb").read()
        except OSError:
            return False
    _wait_for(fetch)
    out = _ok(_run(net, "run", "--rm", "--network", name, "busybox", "ping", "-c1", "-W5",
                   f"rs-{TAG}"))
    assert "1 packets received" in out
    with pytest.raises(OSError):
        socket.socket().bind(("127.0.0.1", port))       # taken again by the new berthd


def test_berth_leaves_no_link_chain_or_netns_after_its_daemon_stops(tmp_path):
    """A berthd of its own, with --bip: its default bridge has that address; after a bridged
    container and berthd's stop, its bridge, berth's chains (unless another berthd still has
    rules) and its netns entries are gone."""
    from tests.helpers.engine_daemon import BerthDaemon
    d = BerthDaemon(extra_args=("--bip", "10.251.50.1/24"))
    others = any(ln.startswith("-A BERTH") for ln in _iptables().splitlines())
    try:
        d.start()
        cid = _ok(_docker(d, CLIS[-1], "run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep",
                          "60")).strip()
        route = _ok(_docker(d, CLIS[-1], "exec", cid, "sh", "-c",
                            "ip -4 -o addr show eth0; ip route"))
        assert "inet 10.251.50.2/24" in route and "default via 10.251.50.1" in route
        bridge = _state(d)["Networks"]
        bridge = next(n["Bridge"] for n in bridge.values() if n["Name"] == "bridge")
        assert Path(f"/sys/class/net/{bridge}").exists()
        _ok(_docker(d, CLIS[-1], "rm", "-f", cid))
    finally:
        d.cleanup()
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert bridge not in _iptables()
    if not others:
        assert "BERTH" not in _iptables()
    assert f"berth-{cid[:12]}" not in (os.listdir("/run/netns") if os.path.isdir("/run/netns")
                                       else [])


def test_sweep_removes_what_a_killed_berthd_left(tmp_path):
    """berthd SIGKILLed with a bridged container: its bridge, veth, netns and rules stay (as
    dockerd's would); engine.network.manager.sweep removes all of them from the state file."""
    from engine.network.manager import sweep
    from tests.helpers.engine_daemon import BerthDaemon
    d = BerthDaemon()
    kept = tmp_path / "network" / "state.json"
    kept.parent.mkdir()
    removed: list[str] = []
    try:
        d.start()
        cid = _ok(_docker(d, CLIS[-1], "run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep",
                          "60")).strip()
        d.kill()
        kept.write_text((d.data_root / "network" / "state.json").read_text())
        state = json.loads(kept.read_text())
        bridge = next(n["Bridge"] for n in state["Networks"].values() if n["Name"] == "bridge")
        (ep,) = state["Sandboxes"][cid]["Networks"].values()
        assert Path(f"/sys/class/net/{bridge}").exists()
        assert ep["IPAddress"] + ":80" in _iptables()
    finally:
        if kept.exists():
            removed = sweep(tmp_path)
        d.cleanup()     # the processes, mounts and cgroups (its own sweep finds nothing left)
    assert f"link {bridge}" in removed and f"netns berth-{cid[:12]}" in removed
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert bridge not in _iptables() and ep["IPAddress"] not in _iptables()
    assert not Path(f"/run/netns/berth-{cid[:12]}").exists()


COMPOSE_FILE = """\
version: "3.7"
services:
  web:
    image: busybox
    command: sh -c "echo from-web > /tmp/i.html; httpd -f -p 80 -h /tmp"
    ports: ["127.0.0.1::80"]
    networks: [back]
  client:
    image: busybox
    command: sh -c "until wget -qO- http://web/i.html; do sleep 0.2; done; sleep 60"
    networks: [back]
networks:
  back: {}
"""


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="no docker-compose")
def test_a_compose_project_with_a_network_and_a_published_port(net, tmp_path):
    """Debian's docker-compose 1.29: the network it makes (Attachable), its containers by
    service name (it disconnects and connects them before their start), the port."""
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    project = f"btc{TAG}"

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-p", project, *args], capture_output=True,
                              env=net.env(), cwd=tmp_path, timeout=120)
    try:
        _ok(compose("up", "-d"))
        net.track()
        _wait_for(lambda: b"from-web" in compose("logs", "client").stdout, timeout=20)
        port = _ok(compose("port", "web", "80")).strip()
        assert port.startswith("127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(port.rsplit(":", 1)[1])),
                                      timeout=5) as s:
            s.sendall(b"GET /i.html HTTP/1.0\r\n\r\n")
            assert b"from-web" in s.makefile("rb").read()
    finally:
        down = compose("down", "-v")
    _ok(down)
    assert f"{project}_back" not in _ok(_run(net, "network", "ls"))


def test_legacy_links_on_the_default_bridge(net):
    """--link name:alias as dockerd gives it: the alias and the name in /etc/hosts, the
    variables that describe the linked container; refused while it does not run."""
    cid = _ok(_run(net, "run", "-d", "--name", f"db-{TAG}", "--expose", "5432", "-e",
                   "PGDATA=/data", "busybox", "sleep", "60")).strip()
    ip = _ok(_run(net, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid)).strip()
    out = _ok(_run(net, "run", "--rm", "--name", f"app-{TAG}", "--link", f"db-{TAG}:db",
                   "busybox", "sh", "-c", "cat /etc/hosts; env; ping -c1 -W5 db >/dev/null "
                   "&& echo ping-ok"))
    lines = out.splitlines()
    assert f"{ip}\tdb db-{TAG}" in lines and "ping-ok" in lines
    for var in (f"DB_NAME=/app-{TAG}/db", f"DB_PORT=tcp://{ip}:5432",
                f"DB_PORT_5432_TCP_ADDR={ip}", "DB_PORT_5432_TCP_PORT=5432",
                "DB_ENV_PGDATA=/data"):
        assert var in lines, (var, out)
    _ok(_run(net, "stop", "-t", "1", cid))
    p = _run(net, "run", "--rm", "--link", f"db-{TAG}:db", "busybox", "true")
    assert p.returncode != 0 and b"Cannot link to a non running container" in p.stderr, p
