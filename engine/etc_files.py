"""The files dockerd writes for each container and binds over the image's: /etc/hostname,
/etc/hosts and /etc/resolv.conf, made in the container's directory before each start."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from .container import Container

HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n")
# The container's own address in the default network mode. dockerd lists the container's
# names against its bridge address (172.17.0.x); berth has no bridge yet, so a container's only
# interface is its loopback, and that is where its own name must resolve.
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


def write(c: Container, cdir: Path) -> None:
    mode = c.host_config["NetworkMode"]
    host_mode = mode == "host"
    (cdir / "hostname").write_text(c.config["Hostname"] + "\n")
    if host_mode:
        shutil.copyfile("/etc/hosts", cdir / "hosts")
    elif mode == "none":
        # as dockerd: no interface has an address, so the hostname is not listed
        (cdir / "hosts").write_text(HOSTS)
    else:
        (cdir / "hosts").write_text(HOSTS + f"{OWN_ADDRESS}\t{own_names(c.config)}\n")
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    if not host_mode:
        # a private namespace cannot reach the host's loopback resolvers
        lines = [ln for ln in resolv.splitlines()
                 if not re.match(r"\s*nameserver\s+(127\.|::1)", ln)]
        if not any(ln.strip().startswith("nameserver") for ln in lines):
            lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
        resolv = "\n".join(lines) + "\n"
    (cdir / "resolv.conf").write_text(resolv)
