"""berth pull, push, login and logout against berthd and docker-registry: credentials kept in
$DOCKER_CONFIG/config.json as docker keeps them (auths, or a credential helper named by
credsStore), progress drawn from the stream, errors as docker prints them."""
from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest

from tests.helpers.engine_daemon import VENV_BIN
from tests.helpers.registry import PASSWORD, USER, Registry

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/docker-registry"),
                                reason="Debian's docker-registry is not installed")


def _berth(daemon, *args, input=None, env=None):
    return subprocess.run([str(VENV_BIN / "berth"), *args], input=input, capture_output=True,
                          env=env or daemon.env(), timeout=60)


def test_berth_push_pull_with_login_and_logout(daemon):
    reg = Registry("tls").start()
    ref = f"{reg.host}/cli/box:7"
    config = daemon.docker_config / "config.json"
    try:
        p = _berth(daemon, "login", "-u", USER, "--password-stdin", reg.host, input=b"nope\n")
        assert p.returncode == 1 and b"Error response from daemon:" in p.stderr, p.stderr
        p = _berth(daemon, "login", "-u", USER, "--password-stdin", reg.host,
                   input=PASSWORD.encode() + b"\n")
        assert p.returncode == 0 and p.stdout == b"Login Succeeded\n", p.stderr
        auth = json.loads(config.read_text())["auths"][reg.host]["auth"]
        assert base64.b64decode(auth).decode() == f"{USER}:{PASSWORD}"
        assert daemon.docker("tag", "busybox", ref).returncode == 0
        p = _berth(daemon, "push", ref)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        assert out.startswith(f"The push refers to repository [{reg.host}/cli/box]\n"), out
        assert "Pushed" in out and out.strip().splitlines()[-1].startswith("7: digest: sha256:")
        daemon.docker("rmi", ref)
        p = _berth(daemon, "pull", ref)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        assert out.startswith("7: Pulling from cli/box\n") and out.endswith(f"{ref}\n"), out
        assert "Status: Downloaded newer image" in out
        p = _berth(daemon, "logout", reg.host)
        assert p.stdout == f"Removing login credentials for {reg.host}\n".encode()
        assert reg.host not in json.loads(config.read_text())["auths"]
        daemon.docker("rmi", ref)
        p = _berth(daemon, "pull", ref)
        assert p.returncode == 1 and b"pull access denied" in p.stderr, p.stderr
    finally:
        daemon.docker("rmi", ref)
        reg.stop()


def test_a_credential_helper_named_by_creds_store_is_used(daemon, tmp_path):
    """credsStore: berth login stores through docker-credential-<name> and pull reads it back
    from there; config.json holds no secret."""
    reg = Registry("token").start()
    store_file = tmp_path / "helper-store.json"
    helper = tmp_path / "bin" / "docker-credential-berthtest"
    helper.parent.mkdir()
    helper.write_text(f"""#!/bin/sh
# a credential helper keeping one JSON file: store / get / erase as docker's protocol
f={store_file}
case "$1" in
  store) cat > "$f" ;;
  get) if [ -s "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm -f "$f" ;;
esac
""")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    env = daemon.env()
    env["PATH"] = f"{helper.parent}:{env['PATH']}"
    env["DOCKER_CONFIG"] = str(tmp_path / "cfg")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps({"credsStore": "berthtest"}))
    ref = f"{reg.host}/helper/box:1"
    try:
        p = _berth(daemon, "login", "-u", USER, "-p", PASSWORD, reg.host, env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(store_file.read_text())["Secret"] == PASSWORD
        assert PASSWORD not in (tmp_path / "cfg" / "config.json").read_text()
        daemon.docker("tag", "busybox", ref)
        p = _berth(daemon, "push", ref, env=env)
        assert p.returncode == 0, p.stderr
        assert any(r["user"] == USER for r in reg.token.requests)
        p = _berth(daemon, "logout", reg.host, env=env)
        assert p.returncode == 0 and not store_file.exists()
    finally:
        daemon.docker("rmi", ref)
        reg.stop()


def test_pull_of_a_missing_tag_is_an_error(daemon):
    reg = Registry("plain").start()
    try:
        p = _berth(daemon, "pull", f"{reg.host}/none/such:tag")
        assert p.returncode == 1
        assert b"Error response from daemon: manifest for" in p.stderr, p.stderr
    finally:
        reg.stop()
