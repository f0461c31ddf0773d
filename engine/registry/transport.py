"""How a registry host is reached: which schemes, and with what TLS.

As dockerd: a registry is spoken to over HTTPS, verified against the system's CAs plus the CA
files of its directory under /etc/docker/certs.d/<host[:port]>/ (*.crt), with the client pair
*.cert/*.key found there; berth's own /etc/berth/certs.d/ is read the same way, first. A registry
in 127.0.0.0/8 (or ::1) or named by `insecure-registries` is insecure: HTTPS is tried without
verification and plain HTTP after it. `registry-mirrors` are asked first for pulls from docker.io.
"""
from __future__ import annotations

import ipaddress
import os
import ssl
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CERTS_DIRS = (Path("/etc/berth/certs.d"), Path("/etc/docker/certs.d"))
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@dataclass
class Endpoint:
    """Where a registry is spoken to: base URL and the TLS context (None: plain HTTP)."""

    host: str                      # as in the reference: docker.io, 127.0.0.1:5000
    url: str                       # https://127.0.0.1:5000
    ssl: ssl.SSLContext | bool | None


@dataclass
class RegistryConfig:
    """berthd's registry settings: insecure registries (host[:port] or CIDR)."""

    insecure: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)     # URLs, for pulls from docker.io
    certs_dirs: tuple[Path, ...] = CERTS_DIRS

    def is_insecure(self, host: str) -> bool:
        name = _hostname(host)
        try:
            addr = ipaddress.ip_address(name)
        except ValueError:
            addr = None
        if addr is not None and addr.is_loopback:
            return True
        for entry in self.insecure:
            if entry in (host, name):
                return True
            if addr is not None and "/" in entry:
                try:
                    if addr in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def endpoints(self, host: str) -> list[Endpoint]:
        """The endpoints to try, in order."""
        real = DOCKER_HUB_ENDPOINT if host == DOCKER_HUB else host
        if self.is_insecure(host):
            return [Endpoint(host, f"https://{real}", self.ssl_context(host, verify=False)),
                    Endpoint(host, f"http://{real}", None)]
        return [Endpoint(host, f"https://{real}", self.ssl_context(host))]

    def mirror_endpoints(self, host: str) -> list[Endpoint]:
        """The mirrors to ask first for a pull from host: docker.io's only, as dockerd."""
        if host != DOCKER_HUB:
            return []
        out = []
        for url in self.mirrors:
            parts = urllib.parse.urlsplit(url)
            base = f"{parts.scheme}://{parts.netloc}"
            if parts.scheme == "http":
                out.append(Endpoint(host, base, None))
            else:
                out.append(Endpoint(host, base, self.ssl_context(
                    parts.netloc, verify=not self.is_insecure(parts.netloc))))
        return out

    def ssl_context(self, host: str, verify: bool = True) -> ssl.SSLContext:
        """The system's CAs plus the host's certs.d CA files, and its client pair; verify
        False (an insecure registry) checks nothing but still presents the client pair."""
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for base in self.certs_dirs:
            d = base / host
            if not d.is_dir():
                continue
            names = sorted(os.listdir(d))
            for name in names:
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=str(d / name))
            for name in names:
                if name.endswith(".cert"):
                    key = d / (name[:-5] + ".key")
                    if not key.exists():
                        raise ValueError(f"missing key {key.name} for client certificate "
                                         f"{d / name}")
                    ctx.load_cert_chain(str(d / name), str(key))
        return ctx


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_insecure_entry(entry: str) -> str:
    """An `insecure-registries` entry as dockerd accepts it: host[:port] or a CIDR, without a
    scheme."""
    if "://" in entry:
        raise ValueError(f"insecure registry {entry} should not contain '://'")
    if not entry or "/" in entry and not _is_cidr(entry):
        raise ValueError(f"invalid insecure registry {entry!r}: give host[:port] or a CIDR")
    return entry


def check_mirror(url: str) -> str:
    """A `registry-mirrors` entry as dockerd accepts it: an http(s) URL without a path."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid mirror: unsupported scheme or missing host in {url!r}: "
                         "give http://HOST[:PORT] or https://HOST[:PORT]")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(f"invalid mirror: path, query or fragment in {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False
