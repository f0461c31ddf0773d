"""berthd on the network with mutual TLS, as the Docker course's remote-daemon exercise drives
dockerd: berthd in one network namespace, the docker CLI, docker-py and the berth CLI in another,
over a veth pair; certificates made by `berth tls`. Clients without an acceptable certificate,
and plain HTTP, are refused with a clear error on both sides while berthd keeps serving."""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.engine_daemon import DOCKER, VENV_BIN, BerthDaemon
from tests.helpers.netns import CLIENT_IP, SERVER_IP, make_pair, remove_pair

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PORT = 2376
HOST = f"tcp://{SERVER_IP}:{PORT}"


def berth_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "berth"), *args], capture_output=True, timeout=60,
                          cwd=cwd)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """ca/, server/ and client/ from `berth tls`; other/ signed by another CA; expired/ signed
    by the right CA but out of date; nocert/ with the CA only."""
    base = tmp_path_factory.mktemp("certs")
    for args in (("ca", "ca"), ("server", "server", "--ca", "ca", "--san", SERVER_IP,
                                "--san", "berthd.test"),
                 ("client", "client", "--ca", "ca"), ("ca", "other-ca"),
                 ("client", "other", "--ca", "other-ca")):
        p = berth_cli("tls", *args, cwd=base)
        assert p.returncode == 0, p.stderr
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from engine import tlscerts
    ca_cert = x509.load_pem_x509_certificate((base / "ca/ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((base / "ca/ca-key.pem").read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = tlscerts.issue(ca_cert, ca_key, "expired", client=True,
                               not_before=now - datetime.timedelta(days=30),
                               not_after=now - datetime.timedelta(days=1))
    (base / "expired").mkdir()
    tlscerts._write_cert(base / "expired/cert.pem", cert)
    tlscerts._write_key(base / "expired/key.pem", key)
    (base / "nocert").mkdir()
    for d in ("other", "expired", "nocert"):
        (base / d / "ca.pem").write_bytes((base / "ca/ca.pem").read_bytes())
    return base


@pytest.fixture(scope="module")
def remote(certs):
    pair = make_pair("tls")
    daemon = BerthDaemon(prefix=tuple(pair.in_server), extra_args=(
        "-H", HOST, "--tlsverify", "--tlscacert", str(certs / "server/ca.pem"),
        "--tlscert", str(certs / "server/cert.pem"), "--tlskey", str(certs / "server/key.pem")))
    try:
        daemon.start()
        yield pair, daemon
    finally:
        daemon.cleanup()
        remove_pair(pair)


def client_env(certs, name: str = "client") -> dict:
    env = dict(os.environ)
    # requests takes these over docker-py's own CA (docker/docker-py#3157-like reports)
    for var in ("BERTH_HOST", "DOCKER_CONTEXT", "DOCKER_API_VERSION", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE"):
        env.pop(var, None)
    env.update(DOCKER_HOST=HOST, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs / name),
               DOCKER_CONFIG=str(certs / "docker-config"))
    return env


def in_client(pair, argv: list[str], env: dict, input: bytes | None = None
              ) -> subprocess.CompletedProcess:
    return subprocess.run([*pair.in_client, *argv], capture_output=True, env=env, input=input,
                          timeout=90)


def test_berthd_in_its_namespace_is_reachable_only_over_the_veth(remote):
    pair, daemon = remote
    listening = subprocess.run([*pair.in_server, "ss", "-Hltn"], capture_output=True,
                               text=True).stdout
    assert f"{SERVER_IP}:{PORT}" in listening
    host_listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    assert f"{SERVER_IP}:{PORT}" not in host_listening


def test_docker_cli_runs_lists_logs_and_removes_over_mutual_tls(remote, certs):
    pair, daemon = remote
    env = client_env(certs)
    p = in_client(pair, [DOCKER, "run", "--name", "tls-docker", "busybox", "echo",
                         "hello over tls"], env)
    assert (p.returncode, p.stdout) == (0, b"hello over tls\n"), p.stderr
    p = in_client(pair, [DOCKER, "ps", "-a", "--format", "{{.Names}} {{.Status}}"], env)
    assert p.returncode == 0 and b"tls-docker Exited (0)" in p.stdout, p.stderr
    p = in_client(pair, [DOCKER, "logs", "tls-docker"], env)
    assert (p.returncode, p.stdout) == (0, b"hello over tls\n"), p.stderr
    # stdin ends with TLS's close_notify (the half-close); the output still arrives
    p = in_client(pair, [DOCKER, "run", "-i", "--rm", "busybox", "cat"], env,
                  input=b"piped in over tls\n")
    assert (p.returncode, p.stdout) == (0, b"piped in over tls\n"), p.stderr
    p = in_client(pair, [DOCKER, "rm", "tls-docker"], env)
    assert p.returncode == 0, p.stderr
    assert not daemon.container_ids()


def test_berth_cli_runs_lists_logs_and_removes_over_mutual_tls(remote, certs):
    pair, daemon = remote
    env = client_env(certs)
    berth = str(VENV_BIN / "berth")
    p = in_client(pair, [berth, "run", "--name", "tls-berth", "busybox", "echo", "from berth"],
                  env)
    assert (p.returncode, p.stdout) == (0, b"from berth\n"), p.stderr
    p = in_client(pair, [berth, "ps", "-a"], env)
    assert p.returncode == 0 and b"tls-berth" in p.stdout, p.stderr
    p = in_client(pair, [berth, "logs", "tls-berth"], env)
    assert (p.returncode, p.stdout) == (0, b"from berth\n"), p.stderr
    p = in_client(pair, [berth, "run", "-i", "--rm", "busybox", "cat"], env,
                  input=b"piped through berth\n")
    assert (p.returncode, p.stdout) == (0, b"piped through berth\n"), p.stderr
    # the flags instead of the variables
    flags = [berth, "-H", HOST, "--tlsverify", "--tlscacert", str(certs / "client/ca.pem"),
             "--tlscert", str(certs / "client/cert.pem"), "--tlskey",
             str(certs / "client/key.pem")]
    p = in_client(pair, [*flags, "rm", "tls-berth"], {**os.environ, "BERTH_HOST": "",
                                                      "DOCKER_HOST": ""})
    assert p.returncode == 0, p.stderr
    assert not daemon.container_ids()


def test_docker_py_runs_lists_logs_and_removes_over_mutual_tls(remote, certs):
    pair, daemon = remote
    script = textwrap.dedent(f"""
        import docker, docker.tls
        tls = docker.tls.TLSConfig(client_cert=({str(certs / 'client/cert.pem')!r},
                                                {str(certs / 'client/key.pem')!r}),
                                   ca_cert={str(certs / 'client/ca.pem')!r}, verify=True)
        client = docker.DockerClient(base_url={HOST!r}, tls=tls, timeout=60)
        c = client.containers.run("busybox", "echo from docker-py", name="tls-py", detach=True)
        assert c.wait()["StatusCode"] == 0
        assert [x.name for x in client.containers.list(all=True)] == ["tls-py"]
        assert c.logs() == b"from docker-py\\n", c.logs()
        c.remove()
        assert client.containers.list(all=True) == []
        print("ok")
    """)
    p = in_client(pair, [sys.executable, "-c", script], client_env(certs))
    assert (p.returncode, p.stdout) == (0, b"ok\n"), p.stderr
    assert not daemon.container_ids()


@pytest.mark.parametrize("who, client_says, berthd_says", [
    ("nocert", "certificate required", "peer did not return a certificate"),
    ("other", "unknown (ca|certificate authority)", "unable to get local issuer certificate"),
    ("expired", "expired|bad certificate", "certificate has expired"),
])
def test_a_client_without_an_accepted_certificate_is_refused_and_berthd_keeps_serving(
        remote, certs, who, client_says, berthd_says):
    import re
    pair, daemon = remote
    before = daemon.log.read_text()
    for argv in ([DOCKER, "ps"], [str(VENV_BIN / "berth"), "ps"]):
        p = in_client(pair, argv, client_env(certs, who))
        assert p.returncode == 1, (argv, p.stdout)
        assert re.search(client_says, p.stderr.decode()), (argv, p.stderr)
    logged = daemon.log.read_text()[len(before):]
    assert re.search(f"tls connection from {CLIENT_IP}:\\d+ to {HOST} refused: "
                     f"({berthd_says})", logged), logged
    # the right client is still served
    p = in_client(pair, [DOCKER, "version", "--format", "{{.Server.Version}}"],
                  client_env(certs))
    assert p.returncode == 0 and p.stdout.strip(), p.stderr


def test_plain_http_to_the_tls_port_is_told_so(remote, certs):
    pair, daemon = remote
    env = client_env(certs)
    env.pop("DOCKER_TLS_VERIFY")
    for argv in ([DOCKER, "ps"], [str(VENV_BIN / "berth"), "ps"]):
        p = in_client(pair, argv, env)
        assert p.returncode == 1
        assert b"Client sent an HTTP request to an HTTPS server." in p.stderr, (argv, p.stderr)
    assert f"refused a plain HTTP request to the tls port {HOST} from {CLIENT_IP}" in \
        daemon.log.read_text()
    p = in_client(pair, [DOCKER, "info", "--format", "{{.ID}}"], client_env(certs))
    assert p.returncode == 0, p.stderr


def test_a_client_that_does_not_verify_the_server_still_needs_a_certificate(remote, certs):
    """--tls without --tlsverify: the client skips checking berthd; berthd still checks it."""
    pair, daemon = remote
    env = client_env(certs, "nocert")
    env.pop("DOCKER_TLS_VERIFY")
    p = in_client(pair, [DOCKER, "--tls", "ps"], env)
    assert p.returncode == 1 and b"certificate required" in p.stderr, p.stderr
