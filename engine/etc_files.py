"""The files dockerd writes for each container and binds over the image's: /etc/hostname,
/etc/hosts and /etc/resolv.conf, made in the container's directory before each start."""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from .container import Container
from .errors import InvalidParameter

HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n")
# Where the container's own names resolve when it has no address of its own on a network.
OWN_ADDRESS = "127.0.0.1"


def own_names(config: dict) -> str:
    """The names dockerd lists against the container's address: hostname, with domainname
    when there is one, and the short name too when that makes a dotted name."""
    names = config.get("Hostname") or ""
    if config.get("Domainname"):
        names += "." + config["Domainname"]
    if "." in names:
        names += " " + names.partition(".")[0]
    return names


def check(hc: dict) -> None:
    """--add-host and --dns values, refused at create as dockerd refuses them."""
    for entry in hc.get("ExtraHosts") or []:
        name, sep, ip = entry.partition("=") if "=" in entry else entry.partition(":")
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        try:
            if not name or not sep or (ip != "host-gateway" and not ipaddress.ip_address(ip)):
                raise ValueError
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: \"{ip}\"" if name and sep
                                   else f"bad format for add-host: \"{entry}\"") from None
    for server in hc.get("Dns") or []:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidParameter(f"{server} is not an ip address") from None


def extra_hosts(entries: list[str] | None, host_gateway: str | None) -> str:
    """--add-host lines, "name:ip" (dockerd also takes "name=ip"), host-gateway being the
    default bridge's gateway address, as dockerd's --host-gateway-ip default."""
    out = ""
    for entry in entries or []:
        name, sep, ip = entry.partition("=") if "=" in entry else entry.partition(":")
        if ip == "host-gateway":
            ip = host_gateway or ""
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        out += f"{ip}\t{name}\n"
    return out


EMBEDDED_DNS = "127.0.0.11"


def resolv_conf(host_text: str, hc: dict, embedded_dns: bool = False) -> str:
    """dockerd's resolv.conf for a private network namespace: the host's, less nameservers on
    the host's loopback (unreachable from the container; Google's when none is left), with
    --dns, --dns-search and --dns-option replacing the nameservers, search and options. On a
    user network the one nameserver is the embedded server (which forwards to those), with
    ndots:0 first among the options, as dockerd writes it."""
    lines = host_text.splitlines()
    servers = [ln.split()[1] for ln in lines if ln.split()[:1] == ["nameserver"]
               and len(ln.split()) > 1]
    search = next((ln.split()[1:] for ln in reversed(lines) if ln.split()[:1] in (["search"],
                                                                                ["domain"])), [])
    options = [w for ln in lines if ln.split()[:1] == ["options"] for w in ln.split()[1:]]
    if hc.get("Dns"):
        servers = list(hc["Dns"])
    else:
        servers = [ns for ns in servers if not re.match(r"(127\.|::1$)", ns)]
        if not servers:
            servers = ["8.8.8.8", "8.8.4.4"]
    if hc.get("DnsSearch"):
        search = [] if hc["DnsSearch"] == ["."] else list(hc["DnsSearch"])
    if hc.get("DnsOptions"):
        options = list(hc["DnsOptions"])
    if embedded_dns:
        servers = [EMBEDDED_DNS]
        if not any(o.startswith("ndots:") for o in options):
            options = ["ndots:0", *options]
    out = "".join(f"nameserver {ns}\n" for ns in servers)
    if search:
        out += "search " + " ".join(search) + "\n"
    if options:
        out += "options " + " ".join(options) + "\n"
    return out


def write(c: Container, cdir: Path, address: str | None = None,
          host_gateway: str | None = None, embedded_dns: bool = False,
          links: str = "") -> None:
    """address: the container's on its first network (its own names are listed against it);
    host_gateway: what --add-host host-gateway stands for; embedded_dns: it is on a user
    network, whose names the embedded server at 127.0.0.11 resolves; links: the lines of its
    legacy links (on the default bridge), after the --add-host ones, as dockerd orders them."""
    mode = c.host_config["NetworkMode"]
    host_mode = mode == "host"
    hc = c.host_config
    (cdir / "hostname").write_text(c.config["Hostname"] + "\n")
    extra = extra_hosts(hc.get("ExtraHosts"), host_gateway) + links
    if host_mode:
        (cdir / "hosts").write_text(Path("/etc/hosts").read_text() + extra)
    elif mode == "none":
        # as dockerd: no interface has an address, so the hostname is not listed
        (cdir / "hosts").write_text(HOSTS + extra)
    else:
        (cdir / "hosts").write_text(HOSTS + extra
                                    + f"{address or OWN_ADDRESS}\t{own_names(c.config)}\n")
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    if not host_mode or hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions"):
        resolv = resolv_conf(resolv, hc, embedded_dns)
    (cdir / "resolv.conf").write_text(resolv)
