"""docker-compose against berthd (issue 12, done-when 3): Debian's docker-compose 1.29, pointed at
the session's berthd with DOCKER_HOST, brings up a project of two busybox services on a user
network sharing a named volume, one publishing a port on the host's loopback. It comes up,
serves, shows in `ps` and `logs`, and `down -v` leaves nothing of it behind: no container,
network, volume (directory or mount), veth, netns or iptable rule of berth's.

What each step needs from berthd, as compose 1.29 drives it: a network created with
Attachable (compose always asks for it at API >= 1.24; on a local bridge it changes nothing),
the compose labels on networks, volumes and containers and the label filters it lists them by,
and, before each start, a disconnect and connect of the container from its own network mode's
network (compose re-connects a created container to give it its aliases: the service name is
one, which the other service resolves through the embedded DNS)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import leaks

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"

pytestmark = pytest.mark.skipif(not os.path.exists(COMPOSE),
                                reason="docker-compose is not installed (.ci/install --test)")

# web serves /srv (the volume); fetcher waits for web by its service name on the project's
# network, fetches its page and writes the copy into the same volume, where web serves it too.
# init: both run under docker-init, so that `down` stops them at once (busybox's httpd and sh as
# PID 1 would ignore SIGTERM and wait for the kill after the timeout).
COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo {token} > /srv/index.html && exec httpd -f -v -p 80 -h /srv"]
    volumes: ["site:/srv"]
    networks: [backend]
    ports: ["127.0.0.1::80"]
  fetcher:
    image: busybox
    init: true
    command:
      - sh
      - -c
      - >-
        until wget -q -O /tmp/page http://web/index.html; do sleep 0.2; done;
        cp /tmp/page /srv/fetched.txt; echo fetched $$(cat /srv/fetched.txt);
        exec sleep 3600
    volumes: ["site:/srv"]
    networks: [backend]
    depends_on: [web]
networks:
  backend: {{}}
volumes:
  site: {{}}
"""


def _compose(daemon, project_dir: Path, project: str, *args: str, timeout: float = 120,
             api_version: str | None = None) -> subprocess.CompletedProcess:
    env = daemon.env()
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_API_VERSION"):
        env.pop(name, None)
    if api_version:
        env["COMPOSE_API_VERSION"] = api_version
    return subprocess.run([COMPOSE, "--ansi", "never", "-p", project, *args], cwd=project_dir,
                          capture_output=True, env=env, timeout=timeout)


def _ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.args, p.returncode, p.stdout.decode(), p.stderr.decode())
    return p.stdout.decode()


def _project_objects(daemon, project: str) -> dict[str, list[str]]:
    """What berthd holds of the project, found by compose's label as compose finds it."""
    label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    q = urllib.request.quote(label)
    containers = daemon.api("GET", f"/containers/json?all=1&filters={q}").json()
    networks = daemon.api("GET", f"/networks?filters={q}").json()
    volumes = daemon.api("GET", f"/volumes?filters={q}").json()["Volumes"] or []
    return {"containers": [c["Id"] for c in containers],
            "networks": [n["Name"] for n in networks],
            "volumes": [v["Name"] for v in volumes]}


def _fetch(port: int, path: str, timeout: float = 20.0) -> bytes:
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _bridge_ports(bridge: str) -> set[str]:
    try:
        return set(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except OSError:
        return set()


def test_a_compose_project_comes_up_serves_and_goes_down_leaving_nothing(daemon, tmp_path):
    project = "bt" + uuid.uuid4().hex[:8]
    token = uuid.uuid4().hex
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.format(token=token))
    stale_before = set(leaks.stale_berth_state())
    mounts_before = leaks.mounts()
    seen: dict[str, set[str]] = {"ids": set(), "veths": set(), "addresses": set()}
    try:
        up = _compose(daemon, tmp_path, project, "up", "-d")
        _ok(up)
        objects = _project_objects(daemon, project)
        assert objects["networks"] == [f"{project}_backend"], objects
        assert objects["volumes"] == [f"{project}_site"], objects
        assert len(objects["containers"]) == 2, objects
        seen["ids"] |= set(objects["containers"])

        # the network and the volume as compose made them: its labels, a local bridge
        net = daemon.api("GET", f"/networks/{project}_backend").json()
        assert net["Driver"] == "bridge" and net["Scope"] == "local", net
        assert net["Labels"]["com.docker.compose.network"] == "backend", net
        bridge = f"br-{net['Id'][:12]}"
        vol = daemon.api("GET", f"/volumes/{project}_site").json()
        assert vol["Labels"]["com.docker.compose.volume"] == "site", vol
        for cid in objects["containers"]:
            c = daemon.api("GET", f"/containers/{cid}/json").json()
            ep = c["NetworkSettings"]["Networks"].get(f"{project}_backend")
            assert ep and ep["IPAddress"], (c["Name"], c["NetworkSettings"]["Networks"])
            service = c["Config"]["Labels"]["com.docker.compose.service"]
            assert service in (ep["Aliases"] or []), (c["Name"], ep)
            seen["addresses"].add(ep["IPAddress"])
            assert [m["Name"] for m in c["Mounts"]] == [f"{project}_site"], c["Mounts"]
        seen["veths"] |= _bridge_ports(bridge)
        assert len(seen["veths"]) == 2, (bridge, seen["veths"])

        # the published port, as compose reports it, reached from the host's loopback
        out = _ok(_compose(daemon, tmp_path, project, "port", "web", "80")).strip()
        host_ip, _, port = out.rpartition(":")
        assert host_ip == "127.0.0.1" and int(port) > 0, out
        assert _fetch(int(port), "/index.html") == f"{token}\n".encode()
        # fetcher reached web by its service name over the project network, and wrote what it
        # got into the shared volume, which web serves
        assert _fetch(int(port), "/fetched.txt") == f"{token}\n".encode()

        ps = _ok(_compose(daemon, tmp_path, project, "ps"))
        rows = {line.split()[0]: line for line in ps.splitlines()[2:] if line.strip()}
        assert set(rows) == {f"{project}_web_1", f"{project}_fetcher_1"}, ps
        assert all(" Up " in row for row in rows.values()), ps
        assert f"127.0.0.1:{port}->80/tcp" in rows[f"{project}_web_1"], ps
        services = _ok(_compose(daemon, tmp_path, project, "ps", "--services")).split()
        assert sorted(services) == ["fetcher", "web"], services

        logs = _ok(_compose(daemon, tmp_path, project, "logs", "--no-color"))
        assert f"fetched {token}" in logs, logs
        # busybox httpd -v logs each request: the fetcher's over the network, ours via the port
        assert "response:200" in logs, logs

        # exec into a service; a forced recreate (compose renames the old container, reads the
        # image's ContainerConfig, carries the volumes over) keeps what is in the volume.
        # Compose 1.29 negotiates berthd's newest API, where images have no ContainerConfig any
        # more (dockerd dropped it at 1.45), and its recreate then fails with KeyError:
        # 'ContainerConfig' as it does against Docker 25 and later: its users pin an older API
        _ok(_compose(daemon, tmp_path, project, "exec", "-T", "web", "sh", "-c",
                     "echo kept > /srv/kept.txt"))
        _ok(_compose(daemon, tmp_path, project, "up", "-d", "--force-recreate", "-t", "1",
                     api_version="1.44"))
        recreated = _project_objects(daemon, project)
        assert len(recreated["containers"]) == 2 and \
            not set(recreated["containers"]) & seen["ids"], recreated
        seen["ids"] |= set(recreated["containers"])
        for cid in recreated["containers"]:
            c = daemon.api("GET", f"/containers/{cid}/json").json()
            seen["addresses"].add(c["NetworkSettings"]["Networks"][f"{project}_backend"]
                                  ["IPAddress"])
        seen["veths"] |= _bridge_ports(bridge)
        out = _ok(_compose(daemon, tmp_path, project, "port", "web", "80")).strip()
        port = out.rpartition(":")[2]
        assert _fetch(int(port), "/kept.txt") == b"kept\n"

        down = _compose(daemon, tmp_path, project, "down", "-v", "-t", "5")
        _ok(down)
        assert _project_objects(daemon, project) == {"containers": [], "networks": [],
                                                     "volumes": []}
        assert not (daemon.data_root / "volumes" / f"{project}_site").exists()
        left = []
        netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        left += [f"netns berth-{c[:12]}" for c in seen["ids"] if f"berth-{c[:12]}" in netns]
        links = leaks.links()
        left += [f"link {name}" for name in seen["veths"] | {bridge} if name in links]
        rules = leaks.iptables()
        left += [f"rule {r}" for r in rules
                 if bridge in r.split() or any(f"{a}/32" in r or f"{a}:" in r
                                               for a in seen["addresses"])]
        left += [f"mount {m}" for m in leaks.mounts() - mounts_before
                 if m.startswith(str(daemon.root))]
        left += [s for s in leaks.stale_berth_state() if s not in stale_before]
        assert left == [], left
    finally:
        if _project_objects(daemon, project) != {"containers": [], "networks": [],
                                                 "volumes": []}:
            _compose(daemon, tmp_path, project, "down", "-v", "-t", "1")


def test_image_inspect_has_the_build_fields_before_api_1_45(daemon):
    # what compose 1.29 reads to recreate a container (ContainerConfig.Volumes), as dockerd
    # shows it before API 1.45: the image JSON's build container and its config, else Go's
    # zero config; from 1.45 on they are gone
    old = daemon.api("GET", "/v1.44/images/busybox/json").json()
    assert old["Container"] == "" and old["ContainerConfig"]["Volumes"] is None, old
    assert list(old)[list(old).index("Created") + 1:][:2] == ["Container", "ContainerConfig"]
    new = daemon.api("GET", "/v1.45/images/busybox/json").json()
    assert "Container" not in new and "ContainerConfig" not in new, new
