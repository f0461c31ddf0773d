"""Legacy links on the default bridge (`--link name[:alias]`), as dockerd gives them: the
linked container's address under the alias and its name in /etc/hosts, and the environment
variables that describe it (ALIAS_NAME, ALIAS_PORT_80_TCP_ADDR, ..., ALIAS_ENV_X). Pure logic;
containers.py finds the linked containers. On a user network a link is an alias its DNS
answers instead (manager.lookup)."""
from __future__ import annotations

import posixpath
import re

from ..errors import InvalidParameter


def parse(link: str) -> tuple[str, str]:
    """'name:alias' (or 'name') as (name, alias), as the docker CLI sends HostConfig.Links."""
    name, _, alias = link.partition(":")
    name, alias = name.lstrip("/"), posixpath.basename(alias or name)
    if not name or not alias:
        raise InvalidParameter(f"invalid link format: {link!r}: want name:alias")
    return name, alias


def _prefix(alias: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", alias).upper()


def env(alias: str, own_name: str, target_name: str, address: str,
        exposed: dict | None, target_env: list[str] | None) -> list[str]:
    """The variables dockerd's links set in the linking container."""
    p = _prefix(alias)
    out = [f"{p}_NAME=/{own_name.lstrip('/')}/{alias}"]
    ports = []
    for key in exposed or {}:
        port, _, proto = key.partition("/")
        if port.isdigit():
            ports.append((int(port), proto or "tcp"))
    ports.sort(key=lambda pp: (pp[1] != "tcp", pp[0], pp[1]))
    if ports:
        port, proto = ports[0]
        out.append(f"{p}_PORT={proto}://{address}:{port}")
    for port, proto in ports:
        base = f"{p}_PORT_{port}_{proto.upper()}"
        out += [f"{base}={proto}://{address}:{port}", f"{base}_ADDR={address}",
                f"{base}_PORT={port}", f"{base}_PROTO={proto}"]
    for var in target_env or []:
        key, eq, value = var.partition("=")
        if eq and key not in ("HOME", "PATH"):
            out.append(f"{p}_ENV_{key}={value}")
    return out


def hosts_line(alias: str, target_name: str, address: str) -> str:
    """'<address>\\t<alias> <name>' (the name once when it is the alias)."""
    name = target_name.lstrip("/")
    names = alias if alias == name else f"{alias} {name}"
    return f"{address}\t{names}\n"
