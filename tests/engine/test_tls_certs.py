"""`berth tls`: the files DOCKER_CERT_PATH and berthd's --tls* flags expect, keys private, the
server's names in its certificate, and nothing overwritten."""
from __future__ import annotations

import ipaddress
import stat
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.helpers.engine_daemon import VENV_BIN


def berth(cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "berth"), "tls", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_server_and_client_files_as_docker_expects_them(tmp_path):
    assert berth(tmp_path, "ca", "ca").returncode == 0
    p = berth(tmp_path, "server", "srv", "--ca", "ca", "--san", "berthd.example",
              "--san", "192.0.2.7", "--san", "::1")
    assert p.returncode == 0, p.stderr
    assert berth(tmp_path, "client", "cli", "--ca", "ca", "--name", "alice").returncode == 0
    for d, names in (("ca", {"ca.pem", "ca-key.pem"}),
                     ("srv", {"ca.pem", "cert.pem", "key.pem"}),
                     ("cli", {"ca.pem", "cert.pem", "key.pem"})):
        assert {p.name for p in (tmp_path / d).iterdir()} == names
        for key in (tmp_path / d).glob("*key.pem"):
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca, srv, cli = cert(tmp_path / "ca/ca.pem"), cert(tmp_path / "srv/cert.pem"), \
        cert(tmp_path / "cli/cert.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["berthd.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7"),
                                                        ipaddress.ip_address("::1")]
    for c, want in ((srv, ExtendedKeyUsageOID.SERVER_AUTH), (cli, ExtendedKeyUsageOID.CLIENT_AUTH)):
        assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [want]
    assert srv.issuer == cli.issuer == ca.subject
    ca.public_key().verify(cli.signature, cli.tbs_certificate_bytes,
                           ec.ECDSA(cli.signature_hash_algorithm))
    assert (tmp_path / "cli/ca.pem").read_bytes() == (tmp_path / "ca/ca.pem").read_bytes()


def test_two_cas_have_different_names(tmp_path):
    assert berth(tmp_path, "ca", "a").returncode == berth(tmp_path, "ca", "b").returncode == 0
    assert cert(tmp_path / "a/ca.pem").subject != cert(tmp_path / "b/ca.pem").subject


def test_refusals_name_the_problem_and_overwrite_nothing(tmp_path):
    assert berth(tmp_path, "ca", "ca").returncode == 0
    before = (tmp_path / "ca/ca-key.pem").read_bytes()
    p = berth(tmp_path, "ca", "ca")
    assert p.returncode == 1 and "already exist: not overwritten" in p.stderr
    assert (tmp_path / "ca/ca-key.pem").read_bytes() == before
    p = berth(tmp_path, "server", "srv", "--ca", "nowhere", "--san", "x")
    assert p.returncode == 1 and "cannot read the CA in nowhere" in p.stderr
    p = berth(tmp_path, "server", "srv", "--ca", "ca", "--san", "not a name")
    assert p.returncode == 1 and "invalid --san 'not a name'" in p.stderr
    assert not (tmp_path / "srv").exists() or not any((tmp_path / "srv").iterdir())
