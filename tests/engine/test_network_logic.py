"""The network layer's pure logic: subnets and addresses (ipam), published ports (ports), the
embedded DNS server's messages (dnsmsg) and answers (resolver, with a fake upstream), endpoint
settings and network-mode conflicts (endpoints), the /etc files (etc_files), and the rules a
bridge and a port get (firewall)."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

import pytest

from engine import etc_files
from engine.errors import Conflict, InvalidParameter
from engine.network import dnsmsg, endpoints, firewall, ipam, links, ports, resolver
from engine.errors import Forbidden

Net = ipaddress.IPv4Network


# ipam
def test_the_first_pool_no_route_overlaps_is_picked():
    assert ipam.pick_subnet([]) == Net("172.17.0.0/16")
    assert ipam.pick_subnet([Net("172.17.0.0/16"), Net("172.18.5.0/24")]) == Net("172.19.0.0/16")
    assert ipam.pick_subnet([Net("172.16.0.0/12")]) == Net("192.168.0.0/20")
    with pytest.raises(Conflict, match="non-overlapping"):
        ipam.pick_subnet([Net("0.0.0.0/0")])


def test_addresses_are_handed_out_lowest_first_in_the_range_and_never_twice():
    subnet = Net("10.1.0.0/24")
    assert ipam.allocate(subnet, None, "10.1.0.1", []) == "10.1.0.2"
    assert ipam.allocate(subnet, None, "10.1.0.1", ["10.1.0.2"]) == "10.1.0.3"
    assert ipam.allocate(subnet, Net("10.1.0.128/25"), "10.1.0.1", []) == "10.1.0.129"
    assert ipam.allocate(subnet, None, "10.1.0.2", []) == "10.1.0.1"    # a user's gateway
    assert ipam.allocate(subnet, None, "10.1.0.1", [], "10.1.0.9") == "10.1.0.9"
    # after the last one handed out, wrapping round (an address is not reused at once)
    assert ipam.allocate(subnet, None, "10.1.0.1", [], last="10.1.0.5") == "10.1.0.6"
    assert ipam.allocate(subnet, None, "10.1.0.1", ["10.1.0.2"], last="10.1.0.254") == \
        "10.1.0.3"
    with pytest.raises(Conflict, match="Address already in use: 10.1.0.9"):
        ipam.allocate(subnet, None, "10.1.0.1", ["10.1.0.9"], "10.1.0.9")
    with pytest.raises(InvalidParameter, match="no configured subnet contains IP address"):
        ipam.allocate(subnet, None, "10.1.0.1", [], "10.2.0.9")
    with pytest.raises(InvalidParameter, match="not an IP address"):
        ipam.allocate(subnet, None, "10.1.0.1", [], "10.1.0.300")
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ipam.allocate(Net("10.1.0.0/30"), None, "10.1.0.1", ["10.1.0.2"])


def test_overlapping_subnets_are_refused_with_dockerds_words():
    ipam.check_overlap(Net("10.2.0.0/24"), {"a": Net("10.1.0.0/24")})
    with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
        ipam.check_overlap(Net("10.1.0.0/25"), {"a": Net("10.1.0.0/24")})
    with pytest.raises(InvalidParameter):
        ipam.parse_subnet("10.1.0.0/33")
    with pytest.raises(InvalidParameter, match="IPv4 only"):
        ipam.parse_subnet("fd00::/64")


# ports
def test_port_bindings_and_publish_all_as_dockerd_reads_them():
    got = ports.wanted({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0"}],
                        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
                        "81/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]},
                       True, {"80/tcp": {}, "443/tcp": {}})
    assert [(m.proto, m.host_ip, m.host_port, m.container_port, m.host_range) for m in got] == [
        ("tcp", "0.0.0.0", 0, 443, None), ("udp", "0.0.0.0", 5353, 53, None),
        ("tcp", "127.0.0.1", 0, 80, None), ("tcp", "0.0.0.0", 0, 81, (8000, 8010))]
    for bad in ({"80/sctp": [{}]}, {"x/tcp": [{}]}, {"80/tcp": [{"HostPort": "70000"}]},
                {"80/tcp": [{"HostIp": "::1"}]}, {"80/tcp": [{"HostPort": "9-1"}]}):
        with pytest.raises(InvalidParameter):
            ports.wanted(bad, False, None)


def test_a_taken_port_is_refused_and_a_random_one_is_given():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    taken = holder.getsockname()[1]
    try:
        with pytest.raises(Conflict, match=f"127.0.0.1:{taken}:172.17.0.2:80/tcp: address "
                                           f"already in use"):
            ports.reserve(ports.Mapping("tcp", "127.0.0.1", taken, 80), "web", "172.17.0.2")
        m = ports.Mapping("tcp", "127.0.0.1", 0, 80)
        with ports.reserve(m, "web", "172.17.0.2"):
            assert m.host_port not in (0, taken)
        # a range: the first free port of it (taken + 1, unless another program has it)
        m = ports.Mapping("tcp", "127.0.0.1", 0, 80, (taken, taken + 1))
        try:
            with ports.reserve(m, "web", "172.17.0.2"):
                assert m.host_port == taken + 1
        except Conflict:
            with pytest.raises(OSError):
                socket.socket().bind(("127.0.0.1", taken + 1))
    finally:
        holder.close()


def test_ports_are_shown_as_dockerd_shapes_them():
    records = [{"Proto": "tcp", "HostIp": "0.0.0.0", "HostPort": 8080, "ContainerPort": 80}]
    assert ports.view(records, {"80/tcp": {}, "443/tcp": {}}) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}
    assert ports.summary(records, {"443/tcp": {}}) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"}]


# dns
def _query(name: str, qtype: int = dnsmsg.TYPE_A, ident: int = 7) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def _answers(reply: bytes) -> tuple[int, int, list[bytes]]:
    ident, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    pos = 12
    while reply[pos]:
        pos += reply[pos] + 1
    pos += 5
    out = []
    for _ in range(ancount):
        _, _, _, _, rdlen = struct.unpack("!HHHIH", reply[pos:pos + 12])
        out.append(reply[pos + 12:pos + 12 + rdlen])
        pos += 12 + rdlen
    return ident, flags & 0xF, out


def test_a_query_is_parsed_and_answered():
    q = dnsmsg.parse(_query("Web.Example"))
    assert (q.ident, q.name, q.qtype) == (7, "web.example", dnsmsg.TYPE_A)
    ident, rcode, rdata = _answers(dnsmsg.answer_a(q, ["10.0.0.2", "10.0.0.3"]))
    assert (ident, rcode, rdata) == (7, 0, [socket.inet_aton("10.0.0.2"),
                                            socket.inet_aton("10.0.0.3")])
    assert _answers(dnsmsg.empty(q, dnsmsg.NXDOMAIN))[1:] == (3, [])
    assert dnsmsg.parse(b"\0" * 5) is None
    assert dnsmsg.parse(dnsmsg.answer_a(q, [])) is None        # a response is no query
    assert dnsmsg.ptr_address("2.0.0.10.in-addr.arpa") == "10.0.0.2"


def test_the_server_answers_its_names_and_forwards_the_rest():
    async def main():
        # a fake upstream on the loopback, standing in for a resolver
        loop = asyncio.get_running_loop()
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.bind(("127.0.0.1", 0))
        up.setblocking(False)

        async def upstream():
            data, addr = await loop.sock_recvfrom(up, 512)
            q = dnsmsg.parse(data)
            await loop.sock_sendto(up, dnsmsg.answer_a(q, ["198.18.0.1"]), addr)
        server = resolver.Server(lambda n: ["10.0.0.2"] if n == "web" else [],
                                 lambda a: "web.n1" if a == "10.0.0.2" else None, [])
        assert _answers(await server.answer(_query("web")))[2] == [socket.inet_aton("10.0.0.2")]
        assert _answers(await server.answer(_query("web", dnsmsg.TYPE_AAAA)))[1:] == (0, [])
        assert _answers(await server.answer(_query("2.0.0.10.in-addr.arpa",
                                                   dnsmsg.TYPE_PTR)))[2] == [b"\3web\2n1\0"]
        # no upstream: SERVFAIL
        assert _answers(await server.answer(_query("other.example")))[1] == dnsmsg.SERVFAIL
        server.upstreams = ["127.0.0.1"]
        resolver_port = up.getsockname()[1]
        orig = resolver._ask

        async def ask(loop, upstream, data):      # the fake's port, not 53
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            try:
                await loop.sock_connect(s, (upstream, resolver_port))
                await loop.sock_sendall(s, data)
                return await loop.sock_recv(s, 512)
            finally:
                s.close()
        resolver._ask = ask
        try:
            task = loop.create_task(upstream())
            reply = await server.answer(_query("other.example"))
            await task
        finally:
            resolver._ask = orig
            up.close()
        assert _answers(reply)[2] == [socket.inet_aton("198.18.0.1")]
    asyncio.run(main())


# endpoints
def test_endpoint_settings_as_dockerd_checks_them():
    cfg = {"EndpointsConfig": {"n1": {"Aliases": ["www"], "IPAMConfig": {"IPv4Address":
                                                                           "10.0.0.9"}}}}
    assert endpoints.from_create("n1", cfg) == {
        "n1": {"Aliases": ["www"], "IPAMConfig": {"IPv4Address": "10.0.0.9"}}}
    for name, ep, message in (
            ("bridge", {"IPAMConfig": {"IPv4Address": "172.17.0.9"}},
             "user specified IP address is supported on user defined networks only"),
            ("bridge", {"Aliases": ["x"]}, "network-scoped alias is supported only"),
            ("n1", {"IPAMConfig": {"IPv4Address": "300.0.0.1"}}, "invalid IPv4 address"),
            ("n1", {"MacAddress": "02:42:00:00:00:01"}, "berth cannot apply --mac-address"),
            ("n1", {"IPAMConfig": {"IPv6Address": "fd00::2"}}, "berth cannot apply --ip6")):
        with pytest.raises(InvalidParameter, match=message):
            endpoints.from_create(name, {"EndpointsConfig": {name: ep}})
    with pytest.raises(Forbidden, match="connected to host network"):
        endpoints.check_connect("host", {"Name": "n1"}, {})


def test_network_mode_conflicts_with_dockerds_words():
    warnings: list[str] = []
    hc = {"NetworkMode": "host", "PortBindings": {"80/tcp": [{}]}}
    endpoints.check_mode(hc, {}, warnings)
    assert hc["PortBindings"] == {} and warnings == [
        "Published ports are discarded when using host network mode"]
    for hc, config, message in (
            ({"NetworkMode": "container:x", "Dns": ["1.1.1.1"]}, {}, "dns and the network mode"),
            ({"NetworkMode": "container:x"}, {"ExposedPorts": {"80/tcp": {}}}, "port exposing"),
            ({"NetworkMode": "container:x"}, {"Hostname": "h"}, "hostname and the network"),
            ({"NetworkMode": "container:"}, {}, "invalid container format"),
            ({"NetworkMode": "host", "Links": ["a:b"]}, {}, "host type networking can't")):
        with pytest.raises(InvalidParameter, match=message):
            endpoints.check_mode(hc, config, [])


def test_legacy_link_variables_and_hosts_line_as_dockerd_gives_them():
    assert links.parse("/db:my-db") == ("db", "my-db") and links.parse("db") == ("db", "db")
    assert links.env("my-db", "/app", "/db", "172.17.0.5", {"5432/tcp": {}, "53/udp": {}},
                     ["PATH=/bin", "HOME=/root", "PGDATA=/data"]) == [
        "MY_DB_NAME=/app/my-db", "MY_DB_PORT=tcp://172.17.0.5:5432",
        "MY_DB_PORT_5432_TCP=tcp://172.17.0.5:5432", "MY_DB_PORT_5432_TCP_ADDR=172.17.0.5",
        "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
        "MY_DB_PORT_53_UDP=udp://172.17.0.5:53", "MY_DB_PORT_53_UDP_ADDR=172.17.0.5",
        "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp", "MY_DB_ENV_PGDATA=/data"]
    assert links.hosts_line("my-db", "/db", "172.17.0.5") == "172.17.0.5\tmy-db db\n"
    assert links.hosts_line("db", "/db", "172.17.0.5") == "172.17.0.5\tdb\n"


# /etc files
def test_resolv_conf_as_dockerd_writes_it():
    host = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan\noptions edns0\n"
    assert etc_files.resolv_conf(host, {}) == \
        "nameserver 10.0.0.1\nsearch lan\noptions edns0\n"
    assert etc_files.resolv_conf("nameserver 127.0.0.53\n", {}) == \
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert etc_files.resolv_conf(host, {"Dns": ["1.1.1.1"], "DnsSearch": ["a.b"],
                                        "DnsOptions": ["ndots:2"]}) == \
        "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
    assert etc_files.resolv_conf(host, {}, embedded_dns=True) == \
        "nameserver 127.0.0.11\nsearch lan\noptions ndots:0 edns0\n"


def test_extra_hosts_as_dockerd_writes_and_checks_them():
    assert etc_files.extra_hosts(["a:1.2.3.4", "gw:host-gateway", "v6=[::1]"], "172.17.0.1") \
        == "1.2.3.4\ta\n172.17.0.1\tgw\n::1\tv6\n"
    for bad, message in (("nocolon", "bad format for add-host"),
                         ("a:300.1.1.1", "invalid IP address in add-host")):
        with pytest.raises(InvalidParameter, match=message):
            etc_files.check({"ExtraHosts": [bad]})
    with pytest.raises(InvalidParameter, match="is not an ip address"):
        etc_files.check({"Dns": ["dns.example"]})


# --bip
def test_bip_is_read_as_dockerd_reads_it():
    from engine import daemon_options
    assert daemon_options._bip("10.200.0.1/24") == "10.200.0.1/24"
    assert daemon_options._bip(None) is None
    for bad in ("10.200.0.0/24", "10.200.0.1", "10.200.0.1/31", "fd00::1/64", "x"):
        with pytest.raises(daemon_options.OptionsError, match="invalid --bip"):
            daemon_options._bip(bad)


# firewall
def test_rules_name_only_berths_chains_and_internal_networks_drop_first():
    rules = firewall.network_rules("br-x", "10.9.0.0/24", internal=False)
    assert {r.chain for r in rules} <= {"BERTH-FORWARD", "BERTH-POSTROUTING"}
    assert ["-s", "10.9.0.0/24", "!", "-o", "br-x", "-j", "MASQUERADE"] in \
        [list(r.spec) for r in rules]
    internal = firewall.network_rules("br-x", "10.9.0.0/24", internal=True)
    assert not any("MASQUERADE" in r.spec for r in internal)
    assert internal[0].line("-A").startswith("-I BERTH-FORWARD -i br-x ! -o br-x -j DROP")
    dnat, fwd = firewall.port_rules("br-x", "tcp", "127.0.0.1", 8080, "10.9.0.2", 80)
    assert dnat.line("-A") == ("-A BERTH -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT "
                               "--to-destination 10.9.0.2:80")
    assert fwd.chain == "BERTH-FORWARD"


def test_a_missing_iptables_is_named_with_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(firewall.FirewallError,
                       match=r"iptables is not installed: .*\(apt-get install iptables\)"):
        firewall.ensure_chains()
