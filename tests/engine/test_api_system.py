"""_ping, version negotiation, dockerd's headers, error shapes, version and info."""
from __future__ import annotations

import json
import subprocess

import pytest

from engine.version import API_VERSION
from tests.helpers.engine_daemon import DOCKER, BerthDaemon


def test_ping_get_and_head(daemon):
    r = daemon.api("GET", "/_ping")
    assert r.status == 200 and r.body == b"OK"
    assert r.headers["Api-Version"] == API_VERSION
    assert r.headers["Ostype"] == "linux"
    assert r.headers["Docker-Experimental"] == "false"
    assert r.headers["Server"].startswith("Docker/")
    assert r.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Content-Type"].startswith("text/plain")
    h = daemon.api("HEAD", "/_ping")
    assert h.status == 200 and h.body == b"" and h.headers["Content-Length"] == "0"
    assert h.headers["Api-Version"] == API_VERSION
    assert daemon.api("GET", "/v1.50/_ping").body == b"OK"


@pytest.mark.parametrize("prefix", ["", "/v1.24", "/v1.41", f"/v{API_VERSION}"])
def test_every_route_with_and_without_version_prefix(daemon, prefix):
    assert daemon.api("GET", f"{prefix}/version").json()["ApiVersion"] == API_VERSION
    assert isinstance(daemon.api("GET", f"{prefix}/containers/json").json(), list)
    assert daemon.api("GET", f"{prefix}/images/json").status == 200


def test_version_too_new_is_json_400(daemon):
    r = daemon.api("GET", "/v1.51/version")
    assert r.status == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"message": "client version 1.51 is too new. Maximum supported API "
                                   "version is 1.50"}


def test_version_too_old_is_plain_text_400(daemon):
    r = daemon.api("GET", "/v1.23/containers/json")
    assert r.status == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.body.decode().startswith("client version 1.23 is too old. Minimum supported API "
                                      "version is 1.24")


def test_errors_are_json_with_exact_content_type(daemon):
    r = daemon.api("GET", "/containers/nosuch/json")
    assert r.status == 404
    # exactly this: the Go client compares the whole header to decide to parse the body
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"message": "No such container: nosuch"}
    r = daemon.api("GET", "/no/such/route")
    assert r.status == 404 and r.json() == {"message": "page not found"}


def test_docker_cli_reads_daemon_errors(daemon):
    p = daemon.docker("inspect", "--type", "container", "nosuch")
    assert p.returncode == 1
    # the CLI's own prefix differs ("Error: " in 20.10, "Error response from daemon: " in 28);
    # the daemon's message is the same
    assert b"No such container: nosuch" in p.stderr
    assert daemon.docker("create", "--name", "dup", "busybox", "true").returncode == 0
    p = daemon.docker("create", "--name", "dup", "busybox", "true")
    assert p.returncode != 0
    assert b'Error response from daemon: Conflict. The container name "/dup" is already in use' \
        in p.stderr


def test_docker_version(daemon):
    p = daemon.docker("version")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "Server: berth" in out
    assert "API version:      1.50 (minimum version 1.24)" in out
    assert "berth-supervisor" in out
    v = daemon.api("GET", "/version").json()
    assert v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"


def test_docker_info(daemon):
    p = daemon.docker("info")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "Logging Driver: json-file" in out
    assert "Cgroup Driver: cgroupfs" in out
    assert f"Docker Root Dir: {daemon.data_root}" in out
    info = daemon.api("GET", "/info").json()
    assert info["Images"] >= 2
    assert info["DefaultRuntime"] == "lowrt"
    assert set(info) >= {"Containers", "ContainersRunning", "ContainersStopped", "Driver",
                         "CgroupVersion", "NCPU", "MemTotal", "OSType", "Swarm", "Runtimes"}


def test_docker_py_negotiates_with_unprefixed_version(daemon):
    client = daemon.docker_py()
    assert client.api.api_version == API_VERSION
    assert client.ping() is True
    assert json.loads(json.dumps(client.version()))["ApiVersion"] == API_VERSION


def test_every_H_socket_is_served():
    daemon = BerthDaemon()
    second = daemon.root / "second.sock"
    daemon.extra_args = ("-H", f"unix://{second}")
    try:
        daemon.start()
        env = daemon.env()
        env["DOCKER_HOST"] = f"unix://{second}"
        p = subprocess.run([DOCKER, "version", "--format", "{{.Server.Platform.Name}}"], env=env,
                           capture_output=True)
        assert p.stdout.startswith(b"berth"), p.stderr
        assert daemon.stop() == 0
        assert not second.exists() and not daemon.sock.exists()    # removed at exit
    finally:
        daemon.cleanup()
