"""berthd's networks and the containers' places in them: the records (persisted as JSON in
<data-root>/network/state.json, so a restarted berthd finds its subnets, addresses and ports),
and the steps that give a starting container its network namespace and take it away again.

Each running container outside the host's network has a sandbox: a named netns berthd made
(/run/netns/berth-<id12>), joined by the runtime by path, with a veth into the bridge of each
network it is on, its addresses, and its published ports (host ports held by sockets, DNAT rules
in berth's chains). A bridge comes up with the first container on it and stays up (as
docker0 does: the next container's start costs no firewall change) until its network is
removed or berthd exits with nothing attached to it."""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import socket
import time
from pathlib import Path

from pyroute2.netlink.exceptions import NetlinkError

from .. import timefmt
from ..config import DEFAULT_DATA_ROOT
from ..errors import Conflict, EngineError, Internal, InvalidParameter, NotFound
from . import bridge, firewall, ipam, netlink, netns, ports, resolver
from ..errors import Forbidden

log = logging.getLogger("berthd.network")

PREDEFINED = ("bridge", "host", "none")
REAP_AFTER = 2.0        # seconds a left veth may take to go with its namespace


def bridge_name(data_root: Path) -> str:
    """berth0 for the default data root; a daemon with another (the tests' in temp dirs) gets
    a bridge of its own, so that two berthds never share one."""
    if Path(data_root) == Path(DEFAULT_DATA_ROOT):
        return "berth0"
    return "berth-" + hashlib.sha256(str(data_root).encode()).hexdigest()[:8]


def _new_id() -> str:
    return os.urandom(32).hex()


class Networks:
    def __init__(self, data_root: Path, bip: str | None = None, events=None):
        self.dir = Path(data_root) / "network"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "state.json"
        self.lock = asyncio.Lock()
        self.events = events        # engine.events.EventLog: network events, as dockerd's
        self.active: set[str] = set()        # IDs of networks whose bridge is up
        self.sockets: dict[str, list[socket.socket]] = {}    # container ID: its host ports
        self.dns: dict[str, resolver.Server] = {}     # container ID: its embedded DNS server
        self.dying: set[str] = set()        # veths left to go with their namespaces
        self.reaping: set[asyncio.Task] = set()
        state = {}
        if self.path.exists():
            state = json.loads(self.path.read_text())
        self.networks: dict[str, dict] = state.get("Networks", {})
        self.sandboxes: dict[str, dict] = state.get("Sandboxes", {})
        self.default_bridge = bridge_name(data_root)
        if not any(n["Name"] == "bridge" for n in self.networks.values()):
            self._make_default(bip)
        elif bip:
            self._apply_bip(bip)

    def _event(self, action: str, net: dict, cid: str | None = None) -> None:
        """dockerd's network events (create, connect, disconnect, destroy): from the event
        loop's thread only, where subscribers are fed."""
        if self.events is None or net is None:
            return
        attrs = {"name": net["Name"], "type": net["Driver"]}
        if cid:
            attrs["container"] = cid
        self.events.log("network", action, net["Id"], attrs)

    # records
    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"Networks": self.networks, "Sandboxes": self.sandboxes}))
        os.replace(tmp, self.path)

    def _taken_subnets(self, but: dict | None = None) -> list[ipaddress.IPv4Network]:
        """Other networks' subnets and the host's routes (less those of our own bridges, up
        from an earlier run); `but` a network whose own subnet does not count."""
        taken = [ipaddress.IPv4Network(n["Subnet"]) for n in self.networks.values()
                 if n.get("Subnet") and n is not but]
        for route in netlink.host_routes(but["Bridge"] if but else None):
            if not any(str(route) == n.get("Subnet") for n in self.networks.values()
                       if n is not but):
                taken.append(route)
        return taken

    def _repick_default(self, net: dict) -> None:
        """The default bridge's subnet was picked when berthd first started; another program
        (a dockerd, another berthd) may route it since. Picked again while nothing holds an
        address in it, rather than clash (unless --bip named it)."""
        if net.get("UserSubnet") or net["Used"]:
            return
        current = ipaddress.IPv4Network(net["Subnet"])
        taken = self._taken_subnets(but=net)
        if not any(current.overlaps(t) for t in taken):
            return
        subnet = ipam.pick_subnet(taken)
        log.info("default bridge: %s is routed elsewhere now, taking %s", current, subnet)
        if net["Id"] in self.active:
            bridge.down(net)
            self.active.discard(net["Id"])
        net.update(Subnet=str(subnet), Gateway=ipam.default_gateway(subnet))
        self._save()

    def _make_default(self, bip: str | None) -> None:
        now = timefmt.rfc3339nano(timefmt.now_ns())
        if bip:
            iface = ipaddress.IPv4Interface(bip)
            subnet, gateway = iface.network, str(iface.ip)
        else:
            subnet = ipam.pick_subnet(self._taken_subnets())
            gateway = ipam.default_gateway(subnet)
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            nid = _new_id()
            rec = {"Id": nid, "Name": name, "Driver": driver, "Created": now, "Internal": False,
                   "Labels": {}, "Options": {}, "Predefined": True}
            if name == "bridge":
                rec.update(Bridge=self.default_bridge, Subnet=str(subnet), Gateway=gateway,
                           IPRange=None, Used=[], UserSubnet=bool(bip), Options={
                               "com.docker.network.bridge.default_bridge": "true",
                               "com.docker.network.bridge.enable_icc": "true",
                               "com.docker.network.bridge.enable_ip_masquerade": "true",
                               "com.docker.network.bridge.name": self.default_bridge,
                               "com.docker.network.driver.mtu": "1500"})
            self.networks[nid] = rec
        self._save()

    def _apply_bip(self, bip: str) -> None:
        """--bip changed since the default bridge was made: its new subnet, unless a container
        still holds an address in the old one (then the old stays, and berthd says so)."""
        iface = ipaddress.IPv4Interface(bip)
        net = self.find("bridge")
        if (net["Subnet"], net["Gateway"]) == (str(iface.network), str(iface.ip)):
            return
        if net["Used"]:
            log.warning("--bip %s not applied: containers still have addresses in %s",
                        bip, net["Subnet"])
            return
        net.update(Subnet=str(iface.network), Gateway=str(iface.ip), UserSubnet=True)
        self._save()

    def find(self, ref: str) -> dict:
        """By full ID, name, or unique ID prefix, as dockerd finds a network."""
        if ref in self.networks:
            return self.networks[ref]
        for n in self.networks.values():
            if n["Name"] == ref:
                return n
        matches = [n for nid, n in self.networks.items() if ref and nid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found "
                                   f"on name)")
        raise NotFound(f"network {ref} not found")

    def exists(self, ref: str) -> bool:
        try:
            self.find(ref)
            return True
        except EngineError:
            return False

    # user networks
    def create(self, body: dict) -> tuple[dict, str]:
        """POST /networks/create: the new network and dockerd's warning (empty)."""
        name = body.get("Name") or ""
        if not name:
            raise InvalidParameter("network name must not be empty")
        driver = body.get("Driver") or "bridge"
        if any(n["Name"] == name for n in self.networks.values()):
            raise Conflict(f"network with name {name} already exists")
        if name in PREDEFINED or driver in ("host", "null"):
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if driver != "bridge":
            raise NotFound(f"plugin \"{driver}\" not found")
        if body.get("EnableIPv6"):
            raise InvalidParameter("berth cannot apply --ipv6 yet (EnableIPv6): berth's "
                                   "networks are IPv4 only")
        # Attachable only means something for swarm's networks: dockerd keeps and shows it
        # on a local bridge (docker-compose sets it), and so does berth
        if body.get("Ingress") or (body.get("ConfigFrom") or {}).get("Network") \
                or body.get("ConfigOnly") or body.get("Scope") not in (None, "", "local"):
            raise InvalidParameter("berth cannot apply swarm network options yet (Ingress, "
                                   "ConfigFrom, ConfigOnly, Scope): no swarm")
        options = dict(body.get("Options") or {})
        allowed = {"com.docker.network.bridge.name", "com.docker.network.driver.mtu"}
        bad = sorted(k for k in options if k not in allowed)
        if bad:
            raise InvalidParameter(f"berth cannot apply --opt {', '.join(bad)} yet: of the "
                                   f"bridge driver's options it applies only "
                                   f"{', '.join(sorted(allowed))}")
        mtu = options.get("com.docker.network.driver.mtu")
        if mtu not in (None, "", "1500"):
            raise InvalidParameter(f"berth cannot apply --opt com.docker.network.driver.mtu="
                                   f"{mtu} yet: its bridges have the default MTU 1500")
        nid = _new_id()
        bridge_dev = options.get("com.docker.network.bridge.name") or "br-" + nid[:12]
        if len(bridge_dev) > 15:
            raise InvalidParameter(f"invalid bridge name {bridge_dev}: longer than 15 characters")
        if any(n.get("Bridge") == bridge_dev for n in self.networks.values()) \
                or netlink.link_exists(bridge_dev):
            raise Conflict(f"bridge name {bridge_dev} is in use")
        configs = (body.get("IPAM") or {}).get("Config") or []
        ipam_driver = (body.get("IPAM") or {}).get("Driver") or "default"
        if ipam_driver != "default" or (body.get("IPAM") or {}).get("Options"):
            raise InvalidParameter(f"berth cannot apply --ipam-driver {ipam_driver} or "
                                   f"--ipam-opt yet: only the default IPAM")
        if len(configs) > 1:
            raise InvalidParameter("berth cannot apply more than one --subnet yet")
        conf = configs[0] if configs else {}
        others = {n["Name"]: ipaddress.IPv4Network(n["Subnet"])
                  for n in self.networks.values() if n.get("Subnet")}
        if conf.get("Subnet"):
            subnet = ipam.parse_subnet(conf["Subnet"])
            ipam.check_overlap(subnet, others)
        else:
            if conf.get("Gateway") or conf.get("IPRange"):
                raise InvalidParameter("invalid pool request: a gateway or ip-range needs a "
                                       "subnet (--subnet)")
            subnet = ipam.pick_subnet(self._taken_subnets())
        if conf.get("AuxiliaryAddresses"):
            raise InvalidParameter("berth cannot apply --aux-address yet")
        gateway = ipam.default_gateway(subnet)
        if conf.get("Gateway"):
            gw = ipam.parse_address(conf["Gateway"], "gateway")
            if gw not in subnet:
                raise InvalidParameter(f"invalid gateway {gw}: not in subnet {subnet}")
            gateway = str(gw)
        ip_range = None
        if conf.get("IPRange"):
            ip_range = ipam.parse_subnet(conf["IPRange"])
            if not ip_range.subnet_of(subnet):
                raise InvalidParameter(f"invalid ip-range {ip_range}: not in subnet {subnet}")
        rec = {"Id": nid, "Name": name, "Driver": "bridge",
               "Created": timefmt.rfc3339nano(timefmt.now_ns()),
               "Internal": bool(body.get("Internal")), "Labels": dict(body.get("Labels") or {}),
               "Attachable": bool(body.get("Attachable")),
               "Options": options, "Predefined": False, "Bridge": bridge_dev,
               "Subnet": str(subnet), "Gateway": gateway,
               "IPRange": str(ip_range) if ip_range else None, "Used": [],
               "UserSubnet": bool(conf.get("Subnet")), "UserGateway": bool(conf.get("Gateway"))}
        self.networks[nid] = rec
        self._save()
        self._event("create", rec)
        return rec, ""

    def endpoints(self, nid: str) -> dict[str, dict]:
        """container ID: its endpoint, for the containers attached to network nid."""
        # snapshots (list): a worker thread may be adding or removing a sandbox meanwhile
        out = {}
        for cid, box in list(self.sandboxes.items()):
            ep = dict(box.get("Networks", {})).get(nid)
            if ep is not None:
                out[cid] = ep
        return out

    async def remove(self, ref: str) -> None:
        async with self.lock:
            net = self.find(ref)
            if net.get("Predefined"):
                raise Forbidden(f"{net['Name']} is a pre-defined network and cannot be removed")
            eps = self.endpoints(net["Id"])
            if eps:
                raise Forbidden(f"error while removing network: network {net['Name']} id "
                                f"{net['Id']} has active endpoints")
            if net["Id"] in self.active:
                await asyncio.to_thread(bridge.down, net)
                self.active.discard(net["Id"])
            del self.networks[net["Id"]]
            self._save()
        self._event("destroy", net)

    # sandboxes
    def sandbox(self, cid: str) -> dict | None:
        return self.sandboxes.get(cid)

    async def attach(self, cid: str, name: str, mode: str, endpoints_config: dict,
                     exposed: dict | None, port_bindings: dict | None,
                     publish_all: bool) -> str | None:
        """The network namespace path a starting container joins (None: the host's), made
        with its interfaces and ports: on the network its mode names first (the ports are
        published there), then on each other network its endpoints config names (those
        `network connect` added while it was stopped). On failure nothing of it is left."""
        if mode == "host" or mode.startswith("container:"):
            return None
        async with self.lock:
            if cid in self.sandboxes:      # a start that failed before its detach
                await asyncio.to_thread(self._detach_sync, cid)
            try:
                path = await asyncio.to_thread(self._attach_sync, cid, name, mode,
                                               endpoints_config, exposed, port_bindings,
                                               publish_all)
            except (NetlinkError, firewall.FirewallError, OSError) as e:
                raise Internal(f"cannot set up the network of container {cid[:12]} "
                               f"({mode}): {e}") from None
        for nid in self.sandboxes[cid]["Networks"]:
            self._event("connect", self.networks.get(nid), cid)
        return path

    def _attach_sync(self, cid: str, name: str, mode: str, endpoints_config: dict,
                     exposed: dict | None, port_bindings: dict | None,
                     publish_all: bool) -> str:
        ns_name = "berth-" + cid[:12]
        box = {"Netns": str(netns.path(ns_name)), "NetnsName": ns_name, "Networks": {},
               "SandboxID": _new_id()}
        self.sandboxes[cid] = box
        t0 = time.monotonic()
        try:
            netns.remove(ns_name)           # a leftover of a crash
            path = netns.create(ns_name)
            t1 = time.monotonic()
            netlink.loopback_up(path)
            t2 = time.monotonic()
            if mode != "none":
                mappings = ports.wanted(port_bindings, publish_all, exposed)
                net = self.find(mode)
                self._connect_sync(cid, name, box, net, self._ep_config(endpoints_config, net),
                                   mappings)
                for ref in endpoints_config:
                    if ref in PREDEFINED or ref == "default" or ref in (mode, net["Id"]):
                        continue
                    other = self.find(ref)
                    if other["Id"] not in box["Networks"] and not other.get("Predefined"):
                        self._connect_sync(cid, name, box, other,
                                           self._ep_config(endpoints_config, other), [])
            t3 = time.monotonic()
            self._save()
            log.debug("network of %s: netns %.1f ms, lo %.1f ms, endpoints %.1f ms, save "
                      "%.1f ms", cid[:12], (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3,
                      (time.monotonic() - t3) * 1e3)
            return str(path)
        except BaseException:
            self._detach_sync(cid)
            raise

    @staticmethod
    def _ep_config(endpoints_config: dict, net: dict) -> dict:
        """A container's endpoint settings for net, keyed by the network's name or ID."""
        for key in (net["Name"], net["Id"]):
            if endpoints_config.get(key):
                return endpoints_config[key]
        for key, value in endpoints_config.items():
            if key and net["Id"].startswith(key):
                return value or {}
        return {}

    async def connect(self, cid: str, name: str, ref: str, ep_config: dict) -> None:
        """`network connect` of a running container: a new interface in its namespace."""
        async with self.lock:
            box = self.sandboxes.get(cid)
            net = self.find(ref)
            if box is None:
                raise Conflict(f"container {cid[:12]} has no network namespace of its own to "
                               f"connect")
            if net["Id"] in box["Networks"]:
                raise Forbidden(f"endpoint with name {name.lstrip('/')} already exists in "
                                f"network {net['Name']}")

            def run() -> None:
                try:
                    self._connect_sync(cid, name, box, net, ep_config, [])
                except (NetlinkError, firewall.FirewallError, OSError) as e:
                    ep = box["Networks"].pop(net["Id"], None)
                    if ep:
                        self._disconnect_ep(net["Id"], ep)
                    raise Internal(f"cannot connect container {cid[:12]} to network "
                                   f"{net['Name']}: {e}") from None
                except BaseException:
                    ep = box["Networks"].pop(net["Id"], None)
                    if ep:
                        self._disconnect_ep(net["Id"], ep)
                    raise
                finally:
                    self._save()
            await asyncio.to_thread(run)
        self._event("connect", net, cid)

    async def disconnect(self, cid: str, ref: str) -> None:
        async with self.lock:
            box = self.sandboxes.get(cid) or {"Networks": {}}
            net = self.find(ref)
            ep = box["Networks"].pop(net["Id"], None)
            if ep is None:
                raise Forbidden(f"container {cid} is not connected to network {net['Name']}")
            await asyncio.to_thread(self._disconnect_ep, net["Id"], ep)
            for s in self.sockets.pop(cid, []) if ep.get("Ports") else []:
                s.close()
            self._save()
        self._event("disconnect", net, cid)

    def _connect_sync(self, cid: str, name: str, box: dict, net: dict, ep_config: dict,
                      mappings: list[ports.Mapping]) -> None:
        nid = net["Id"]
        if net.get("Predefined") and nid not in self.active:
            self._repick_default(net)       # before its bridge comes up, not at every start
        if nid not in self.active:
            bridge.up(net)
            self.active.add(nid)
        want = ((ep_config.get("IPAMConfig") or {}).get("IPv4Address") or "")
        if want and net.get("Predefined"):
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
        if want and not net.get("UserSubnet"):
            raise InvalidParameter("user specified IP address is supported only when "
                                   "connecting to networks with user configured subnets")
        subnet = ipaddress.IPv4Network(net["Subnet"])
        ip_range = ipaddress.IPv4Network(net["IPRange"]) if net.get("IPRange") else None
        address = ipam.allocate(subnet, ip_range, net["Gateway"], net["Used"], want or None,
                                net.get("Last"))
        net["Used"].append(address)
        if not want:
            net["Last"] = address
        veth = netlink.veth_name()
        ifname = f"eth{len(box['Networks'])}"
        ep = {"EndpointID": _new_id(), "IPAddress": address, "IPPrefixLen": subnet.prefixlen,
              "Gateway": net["Gateway"], "MacAddress": netlink.random_mac(address),
              "Veth": veth, "IfName": ifname, "Name": name,
              "Aliases": list(ep_config.get("Aliases") or []),
              "IPAMConfig": ep_config.get("IPAMConfig") or None,
              "Links": list(ep_config.get("Links") or []) or None, "Ports": [], "Rules": []}
        box["Networks"][nid] = ep
        # only the first network gives the default route (dockerd: the gateway of one)
        gateway = None if net.get("Internal") or len(box["Networks"]) > 1 else net["Gateway"]
        netlink.add_veth(veth, Path(box["Netns"]), net["Bridge"], address, subnet.prefixlen,
                         gateway, ep["MacAddress"], ifname)
        if mappings and not net.get("Internal"):
            held = self.sockets.setdefault(cid, [])
            for m in mappings:
                held.append(ports.reserve(m, name.lstrip("/"), address))
                rules = firewall.port_rules(net["Bridge"], m.proto, m.host_ip, m.host_port,
                                            address, m.container_port)
                ep["Rules"] += [[r.table, r.chain, list(r.spec)] for r in rules]
                ep["Ports"].append(m.as_record())
            firewall.add(self._rules(ep))

    @staticmethod
    def _rules(ep: dict) -> list[firewall.Rule]:
        return [firewall.Rule(t, c, tuple(s)) for t, c, s in ep.get("Rules", [])]

    # the embedded DNS server
    def _user_networks(self, cid: str) -> list[str]:
        box = self.sandboxes.get(cid) or {}
        return [nid for nid in list(box.get("Networks", {}))
                if not (self.networks.get(nid) or {}).get("Predefined")]

    def uses_dns(self, cid: str) -> bool:
        """On a user network, a container resolves through the embedded server (as dockerd
        does; the default bridge has none)."""
        return bool(self._user_networks(cid))

    def lookup(self, cid: str, name: str) -> list[str]:
        """The addresses `name` has for container cid: those of the containers on its user
        networks with that name, short ID or alias, and the targets of its own links."""
        name = name.lower().rstrip(".")
        found: list[str] = []
        box = self.sandboxes.get(cid) or {}
        for nid in self._user_networks(cid):
            eps = self.endpoints(nid)
            for other, ep in eps.items():
                names = {ep["Name"].lstrip("/").lower(), other[:12],
                         *(a.lower() for a in ep.get("Aliases") or [])}
                if name in names and ep["IPAddress"] not in found:
                    found.append(ep["IPAddress"])
            own = dict(box.get("Networks", {})).get(nid) or {}
            for link in own.get("Links") or []:
                target, _, alias = link.partition(":")
                if (alias or target).lstrip("/").lower() != name:
                    continue
                for ep in eps.values():
                    if ep["Name"].lstrip("/") == target.lstrip("/") \
                            and ep["IPAddress"] not in found:
                        found.append(ep["IPAddress"])
        return found

    def reverse(self, cid: str, address: str) -> str | None:
        for nid in self._user_networks(cid):
            for ep in self.endpoints(nid).values():
                if ep["IPAddress"] == address:
                    return f"{ep['Name'].lstrip('/')}.{self.networks[nid]['Name']}"
        return None

    async def start_dns(self, cid: str, dns: list[str] | None) -> None:
        """The container's embedded server, when it is on a user network: forwarding to its
        --dns servers, else to the host's."""
        if cid in self.dns or not self.uses_dns(cid):
            return
        box = self.sandboxes[cid]
        upstreams = list(dns or []) or resolver.host_resolvers()
        box["Upstreams"] = upstreams
        server = resolver.Server(lambda n: self.lookup(cid, n), lambda a: self.reverse(cid, a),
                                 upstreams)
        await server.start(box["Netns"])
        self.dns[cid] = server

    def _stop_dns(self, cid: str) -> None:
        server = self.dns.pop(cid, None)
        if server:
            server.close()

    async def detach(self, cid: str) -> None:
        """Everything of the container's sandbox goes (idempotent)."""
        self._stop_dns(cid)
        if cid not in self.sandboxes and cid not in self.sockets:
            return
        nets = list((self.sandboxes.get(cid) or {}).get("Networks", {}))
        async with self.lock:
            veths = await asyncio.to_thread(self._detach_sync, cid, True)
        for nid in nets:
            self._event("disconnect", self.networks.get(nid), cid)
        if veths:
            self.dying.update(veths)
            task = asyncio.get_running_loop().create_task(self._reap_later(veths))
            self.reaping.add(task)
            task.add_done_callback(self.reaping.discard)

    async def _reap_later(self, veths: list[str]) -> None:
        """A veth whose namespace went is deleted by the kernel with it, a few ms later and
        off the container's exit (deleting it here costs 15-30 ms of RCU waits). One still
        there after REAP_AFTER (something else held the namespace) is deleted then."""
        await asyncio.sleep(REAP_AFTER)
        await asyncio.to_thread(self._reap, veths)

    def _reap(self, veths: list[str]) -> None:
        for veth in veths:
            self.dying.discard(veth)
            try:
                if netlink.link_exists(veth):
                    netlink.delete_link(veth)
            except (OSError, NetlinkError) as e:
                log.error("deleting veth %s: %s", veth, e)

    def _detach_sync(self, cid: str, leave_veths: bool = False) -> list[str]:
        """The sandbox's kernel objects go; with leave_veths the veths are only taken off
        their bridges, for the kernel to delete with the namespace (their names returned)."""
        box = self.sandboxes.pop(cid, None)
        for s in self.sockets.pop(cid, []):
            s.close()
        if box is None:
            return []
        errors = []
        for nid, ep in box["Networks"].items():
            try:
                self._disconnect_ep(nid, ep, leave_veths)
            except (OSError, NetlinkError, firewall.FirewallError) as e:
                errors.append(str(e))
        try:
            netns.remove(box["NetnsName"])
        except OSError as e:
            errors.append(str(e))
        self._save()
        if errors:
            log.error("cleaning up the network of %s: %s", cid[:12], "; ".join(errors))
        return [ep["Veth"] for ep in box["Networks"].values()] if leave_veths else []

    def _disconnect_ep(self, nid: str, ep: dict, leave_veth: bool = False) -> None:
        firewall.delete_all(self._rules(ep))
        if leave_veth:
            netlink.release_link(ep["Veth"])
        else:
            netlink.delete_link(ep["Veth"])
        net = self.networks.get(nid)
        if net is None:
            return
        if ep["IPAddress"] in net["Used"]:
            net["Used"].remove(ep["IPAddress"])

    def view(self, cid: str) -> dict | None:
        """What a container's record keeps of its sandbox (container.network_settings shows
        it): its networks by name in the order joined, their endpoints, its ports."""
        box = self.sandboxes.get(cid)
        if box is None:
            return None
        nets, order, all_ports = {}, [], []
        for nid, ep in list(box["Networks"].items()):
            net = self.networks.get(nid) or {}
            name = net.get("Name", nid)
            order.append(name)
            dns = None
            if not net.get("Predefined"):
                dns = [ep["Name"].lstrip("/"), cid[:12], *ep.get("Aliases", [])]
            nets[name] = {k: ep[k] for k in ("EndpointID", "IPAddress", "IPPrefixLen",
                                             "Gateway", "MacAddress", "Aliases", "IPAMConfig",
                                             "Links")}
            nets[name].update(NetworkID=nid, DNSNames=dns)
            all_ports += ep.get("Ports", [])
        return {"SandboxID": box["SandboxID"], "SandboxKey": box["Netns"],
                "Order": order or ["none"], "Networks": nets, "Ports": all_ports}

    def first_address(self, cid: str) -> str | None:
        box = self.sandboxes.get(cid) or {}
        for ep in (box.get("Networks") or {}).values():
            return ep["IPAddress"]
        return None

    def host_gateway(self) -> str:
        """The default bridge's gateway: what --add-host host-gateway stands for."""
        return self.find("bridge")["Gateway"]

    # berthd's restart and exit
    async def restore(self, running: set[str]) -> None:
        """After berthd starts: sandboxes of containers still running are kept (their bridges
        marked up, their host ports taken again); the rest are cleaned up."""
        async with self.lock:
            for cid in list(self.sandboxes):
                if cid not in running:
                    await asyncio.to_thread(self._detach_sync, cid)
                    continue
                for nid, ep in self.sandboxes[cid]["Networks"].items():
                    net = self.networks.get(nid)
                    if net and nid not in self.active:
                        await asyncio.to_thread(bridge.up, net)
                        self.active.add(nid)
                    for p in ep.get("Ports", []):
                        m = ports.Mapping(p["Proto"], p["HostIp"], p["HostPort"],
                                          p["ContainerPort"])
                        try:
                            self.sockets.setdefault(cid, []).append(
                                ports.reserve(m, ep["Name"].lstrip("/"), ep["IPAddress"]))
                        except Conflict as e:
                            log.warning("container %s: %s", cid[:12], e.message)
        for cid in list(self.sandboxes):
            if self.uses_dns(cid):
                try:
                    await self.start_dns(cid, self.sandboxes[cid].get("Upstreams"))
                except OSError as e:
                    log.error("container %s: its DNS server: %s", cid[:12], e)
        async with self.lock:
            self._save()

    async def shutdown(self) -> None:
        """berthd exits: host ports are let go of with berthd (the DNAT rules of running
        containers stay, as their namespaces do); bridges with nothing attached go down, and
        berth's chains with the last rule."""
        for cid in list(self.dns):
            self._stop_dns(cid)
        for task in list(self.reaping):
            task.cancel()
        await asyncio.to_thread(self._reap, list(self.dying))
        async with self.lock:
            for held in self.sockets.values():
                for s in held:
                    s.close()
            self.sockets.clear()
            for nid in list(self.active):
                if not self.endpoints(nid):
                    try:
                        await asyncio.to_thread(bridge.down, self.networks[nid])
                    except (OSError, firewall.FirewallError) as e:
                        log.error("taking network %s down: %s", nid[:12], e)
                    self.active.discard(nid)




def sweep(data_root: Path) -> list[str]:
    """Everything of the kernel's that the state file under data_root names, removed without
    a berthd: its sandboxes (veths, netns, port rules), its bridges and their rules, and berth's
    chains once no rule is left in them. For a berthd that was killed and will not start
    again (a test's, in a temporary directory); what was removed, one line each."""
    path = Path(data_root) / "network" / "state.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    done = []
    for cid, box in state.get("Sandboxes", {}).items():
        for ep in box.get("Networks", {}).values():
            firewall.delete_all([firewall.Rule(t, c, tuple(s)) for t, c, s in ep.get("Rules", [])])
            if netlink.link_exists(ep["Veth"]):
                netlink.delete_link(ep["Veth"])
                done.append(f"link {ep['Veth']}")
        if netns.path(box["NetnsName"]).exists():
            netns.remove(box["NetnsName"])
            done.append(f"netns {box['NetnsName']}")
    for net in state.get("Networks", {}).values():
        if net.get("Bridge") and netlink.link_exists(net["Bridge"]):
            bridge.down(net)
            done.append(f"link {net['Bridge']}")
    firewall.remove_chains_if_unused()
    return done
