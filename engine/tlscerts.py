"""Certificates for a remote berthd (`berth tls`): a CA, a server certificate naming the names
and addresses clients dial, and client certificates, laid out as DOCKER_CERT_PATH expects
(ca.pem, cert.pem, key.pem). Keys are ECDSA P-256, which Go's TLS (the docker CLI) and
Python's (docker-py) both accept and which is made in a millisecond where RSA takes ~50.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
CERT, KEY = "cert.pem", "key.pem"


class CertError(Exception):
    pass


def docker_cert_path(name: str) -> str:
    """Where the docker CLI and dockerd look for a TLS file by default: $DOCKER_CERT_PATH, else
    ~/.docker (berthd's --tls* defaults and the berth CLI's, as docker's)."""
    base = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    return os.path.join(base, name)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert) -> None:
    from cryptography.hazmat.primitives import serialization
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _fresh_dir(directory: Path, names: tuple[str, ...]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    there = [str(directory / n) for n in names if (directory / n).exists()]
    if there:
        raise CertError(f"{', '.join(there)} already exist: not overwritten")


def _load_ca(ca_dir: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        cert = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), None)
    except OSError as e:
        raise CertError(f"cannot read the CA in {ca_dir}: {e.filename}: "
                        f"{(e.strerror or str(e)).lower()} (make one with `berth tls ca "
                        f"{ca_dir}`)") from None
    except ValueError as e:
        raise CertError(f"the CA in {ca_dir} is not a PEM certificate and key: {e}") from None
    return cert, key


def issue(ca_cert, ca_key, common_name: str, *, server_names: list[str] = (),
          client: bool = False, not_before: datetime.datetime | None = None,
          not_after: datetime.datetime | None = None, days: int = 365):
    """(certificate, key) signed by the CA: for a server (server_names: DNS names and IP
    addresses it is reached by) or for a client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _new_key()
    start = not_before or _now() - datetime.timedelta(minutes=5)   # clocks a little behind
    end = not_after or start + datetime.timedelta(days=days)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_encipherment=False, content_commitment=False,
                   data_encipherment=False, key_agreement=True, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.CLIENT_AUTH if client
                    else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]),
            critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _general_name(name: str):
    from cryptography import x509
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not name or any(c.isspace() or c in "/:@" for c in name):
        raise CertError(f"invalid --san {name!r}: give a DNS name or an IP address")
    return x509.DNSName(name)


def make_ca(directory: Path, common_name: str = "berth CA", days: int = 3650) -> None:
    """ca.pem and ca-key.pem (mode 0600): the authority that signs servers and clients."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    _fresh_dir(directory, (CA_CERT, CA_KEY))
    key = _new_key()
    start = _now() - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name))
            .issuer_name(_name(common_name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(directory / CA_KEY, key)
    _write_cert(directory / CA_CERT, cert)


def make_leaf(directory: Path, ca_dir: Path, common_name: str, *,
              server_names: list[str] = (), client: bool = False, days: int = 365) -> None:
    """ca.pem, cert.pem and key.pem (mode 0600) in directory: what a server's --tlscacert,
    --tlscert and --tlskey, or a client's DOCKER_CERT_PATH, take."""
    if not client and not server_names:
        raise CertError("a server certificate needs at least one --san: the names and "
                        "addresses clients reach the server by")
    ca_cert, ca_key = _load_ca(ca_dir)
    cert, key = issue(ca_cert, ca_key, common_name, server_names=list(server_names),
                      client=client, days=days)
    _fresh_dir(directory, (CA_CERT, CERT, KEY))
    _write_key(directory / KEY, key)
    _write_cert(directory / CERT, cert)
    _write_cert(directory / CA_CERT, ca_cert)
