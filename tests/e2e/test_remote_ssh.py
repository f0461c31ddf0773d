"""`-H ssh://`: the berth CLI (and the docker CLI) reach berthd through an sshd the test starts on
a loopback port, with keys it makes: ssh runs `berth system dial-stdio` (or `docker system
dial-stdio`) on the "remote" host, which bridges to berthd's unix socket there."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.helpers.engine_daemon import DOCKER, VENV_BIN
from tests.helpers.netns import free_loopback_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists(SSHD) or not shutil.which("ssh"),
                                 reason="needs openssh-server and openssh-client")]


@pytest.fixture
def sshd(tmp_path, daemon):
    """An sshd on 127.0.0.1 that lets root in with a key the test made, whose sessions find
    the venv's berth on PATH and the test's berthd as their default daemon; and an `ssh` first
    on our PATH that uses the test's key and known_hosts (ssh reads the home directory from
    the password database, not $HOME, so a config cannot be slipped in otherwise)."""
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    port = free_loopback_port()
    (tmp_path / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path}/host_key\n"
        f"AuthorizedKeysFile {tmp_path}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {tmp_path}/sshd.pid\n"
        f"SetEnv PATH={VENV_BIN}:/usr/local/bin:/usr/bin:/bin BERTH_HOST={daemon.host} "
        f"DOCKER_HOST={daemon.host}\n")
    (tmp_path / "ssh_config").write_text(
        f"Host *\n  IdentityFile {tmp_path}/client_key\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {tmp_path}/known_hosts\n  StrictHostKeyChecking accept-new\n"
        "  BatchMode yes\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ssh").write_text(f"#!/bin/sh\nexec {shutil.which('ssh')} -F "
                                f"{tmp_path}/ssh_config \"$@\"\n")
    (bindir / "ssh").chmod(0o755)
    made_privsep = not os.path.isdir("/run/sshd")     # sshd insists on it
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp_path / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "sshd.log", "wb"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "sshd.log").read_text())
                time.sleep(0.05)
        env = {**daemon.env(), "PATH": f"{bindir}:{os.environ['PATH']}"}
        env.pop("BERTH_HOST")
        env.pop("DOCKER_HOST")
        yield f"ssh://root@127.0.0.1:{port}", env, tmp_path
    finally:
        proc.terminate()
        proc.wait(10)
        if made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_berth_over_ssh_runs_a_container_on_the_remote_berthd(sshd, daemon):
    url, env, _ = sshd
    berth = str(VENV_BIN / "berth")
    p = subprocess.run([berth, "-H", url, "run", "--name", "over-ssh", "busybox", "echo",
                        "hello over ssh"], capture_output=True, env=env, timeout=60)
    assert (p.returncode, p.stdout) == (0, b"hello over ssh\n"), p.stderr
    assert "over-ssh" in daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode()
    p = subprocess.run([berth, "-H", url, "run", "-i", "--rm", "busybox", "cat"],
                       input=b"stdin over ssh\n", capture_output=True, env=env, timeout=60)
    assert (p.returncode, p.stdout) == (0, b"stdin over ssh\n"), p.stderr
    p = subprocess.run([berth, "-H", url, "rm", "over-ssh"], capture_output=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr


def test_a_socket_path_in_the_ssh_url_names_the_remote_daemon(sshd, daemon):
    url, env, _ = sshd
    p = subprocess.run([str(VENV_BIN / "berth"), "-H", f"{url}{daemon.sock}", "version"],
                       capture_output=True, env=env, timeout=60)
    assert p.returncode == 0 and b"Server:" in p.stdout, p.stderr
    p = subprocess.run([str(VENV_BIN / "berth"), "-H", f"{url}/no/such.sock", "ps"],
                       capture_output=True, env=env, timeout=60)
    assert p.returncode == 1 and b"/no/such.sock" in p.stderr, p.stderr


def test_docker_cli_over_ssh_reaches_berthd_where_the_remote_docker_points_at_it(sshd, daemon):
    """The docker CLI runs `docker system dial-stdio` remotely: that docker's default daemon
    (DOCKER_HOST in the session, set here by sshd's SetEnv) must be berthd."""
    url, env, _ = sshd
    p = subprocess.run([DOCKER, "-H", url, "run", "--rm", "busybox", "echo", "docker via ssh"],
                       capture_output=True, env=env, timeout=90)
    assert (p.returncode, p.stdout) == (0, b"docker via ssh\n"), p.stderr


def test_ssh_failures_are_reported_with_what_ssh_said(sshd):
    url, env, tmp_path = sshd
    (tmp_path / "authorized_keys").write_text("")
    p = subprocess.run([str(VENV_BIN / "berth"), "-H", url, "ps"], capture_output=True,
                       env=env, timeout=60)
    assert p.returncode == 1
    assert b"error during connect" in p.stderr and b"Permission denied" in p.stderr, p.stderr
