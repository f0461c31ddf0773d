"""The connections the berth CLI reaches a daemon by, as the docker CLI's -H: unix:///PATH,
tcp://HOST:PORT (with TLS: --tls, --tlsverify, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and
ssh://[USER@]HOST[:PORT][/SOCKET], which runs `berth system dial-stdio` on the host.

Each connection offers what a socket offers the client (sendall, recv, shutdown, makefile,
close): a socket, a tls_connection.TLSConnection or an ssh_connection.SSHConnection, each
imported only when used (ssl alone costs a unix-socket command ~10 ms).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TransportError(Exception):
    pass


@dataclass
class TLSOptions:
    """The docker CLI's TLS flags; verify checks the daemon's certificate against cacert."""
    verify: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None


def tls_from(tls: bool, tlsverify: bool | None, cacert: str | None, cert: str | None,
             key: str | None) -> TLSOptions | None:
    """TLS options as the docker CLI decides them: --tlsverify (or DOCKER_TLS_VERIFY set)
    verifies, --tls encrypts without verifying; the client certificate is sent when its
    files exist (given, or in DOCKER_CERT_PATH, or ~/.docker)."""
    if tlsverify is None:
        tlsverify = bool(os.environ.get("DOCKER_TLS_VERIFY"))
    if not (tls or tlsverify):
        return None
    from ..tlscerts import docker_cert_path as cert_path
    cert = cert or cert_path("cert.pem")
    key = key or cert_path("key.pem")
    have_pair = os.path.exists(cert) and os.path.exists(key)
    return TLSOptions(verify=tlsverify, cacert=cacert or cert_path("ca.pem"),
                      cert=cert if have_pair else None, key=key if have_pair else None)


def _client_context(opts: TLSOptions):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if opts.verify:
            ctx.load_verify_locations(opts.cacert)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if opts.cert:
            ctx.load_cert_chain(opts.cert, opts.key)
    except (OSError, ssl.SSLError) as e:
        raise TransportError(f"could not read the TLS files ({opts.cacert}, {opts.cert}, "
                             f"{opts.key}): {getattr(e, 'strerror', None) or e}") from None
    return ctx


def connect(host: str, tls: TLSOptions | None):
    """A connection to the daemon at host."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise TransportError(f"Cannot connect to the berth daemon at {host}. Is berthd "
                                 f"running? ({e.strerror or e})") from None
        return s
    if host.startswith("tcp://"):
        return _connect_tcp(host, tls)
    if host.startswith("ssh://"):
        from .ssh_connection import SSHConnection
        return SSHConnection(host)
    raise TransportError(f"unsupported host {host}: use unix:///PATH, tcp://HOST:PORT or "
                         "ssh://[USER@]HOST[:PORT]")


def _connect_tcp(host: str, tls: TLSOptions | None):
    parts = urlsplit(host)
    try:
        port = parts.port or (2376 if tls else 2375)
    except ValueError:
        raise TransportError(f"invalid host {host}: bad port") from None
    if not parts.hostname:
        raise TransportError(f"invalid host {host}: no address")
    try:
        raw = socket.create_connection((parts.hostname, port), timeout=30)
    except OSError as e:
        raise TransportError(f"error during connect: cannot reach {host}: "
                             f"{e.strerror or e}") from None
    raw.settimeout(None)
    if tls is None:
        return raw
    from .tls_connection import TLSConnection
    try:
        return TLSConnection(raw, _client_context(tls), parts.hostname)
    except BaseException:
        raw.close()
        raise
