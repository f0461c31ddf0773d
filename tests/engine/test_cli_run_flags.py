"""`berth run`/`berth create` flags against the docker CLI's: the same flags given to both CLIs
against the same berthd make containers whose inspected Config and HostConfig are the same;
a few run end to end (a published port answers on 127.0.0.1, a named volume keeps its data,
a user network resolves a container's name)."""
from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest

from tests.helpers.engine_daemon import docker_cli_major

GROUPS = {
    "ports": ["-p", "127.0.0.1:18080:80", "-p", "19000-19001:90-91/udp", "-p", "53",
              "--expose", "5000", "--expose", "6000-6001/udp", "-P"],
    "storage": ["-v", "cli-flags-vol:/data", "-v", "/tmp:/host:ro", "-v", "/anon",
                "--mount", "type=volume,src=cli-flags-vol2,dst=/m,volume-nocopy",
                "--mount", "type=bind,source=/tmp,target=/b,readonly",
                "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
                "--tmpfs", "/run:size=1m", "--tmpfs", "/x"],
    "names": ["--add-host", "h:1.2.3.4", "--dns", "8.8.8.8", "--dns-search", "x.com",
              "--dns-option", "ndots:2", "-h", "myh", "--domainname", "d.com"],
    "security": ["--cap-add", "net_admin", "--cap-drop", "CHOWN", "--security-opt",
                 "no-new-privileges", "--read-only", "--group-add", "10",
                 "--device", "/dev/null:/dev/xnull:rw"],
    "privileged": ["--privileged"],
    "resources": ["--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "-m", "64m",
                  "--memory-swap", "128m", "--ulimit", "nofile=1024:2048", "--shm-size", "32m",
                  "--sysctl", "net.ipv4.ip_forward=1"],
    "meta": ["-l", "a=b", "-l", "c", "--log-driver", "json-file", "--log-opt", "max-size=1m",
             "--stop-signal", "SIGUSR1", "--stop-timeout", "5", "--runtime", "runc"],
    "health": ["--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2",
               "--health-timeout", "1500ms", "--health-start-period", "1m3s"],
    "no-health": ["--no-healthcheck"],
    "attach": ["-a", "stdout", "-i", "-t"],
}


def _inspect(daemon, name: str) -> dict:
    return daemon.api("GET", f"/containers/{name}/json").json()


def _created_same(daemon, args: list[str], cmd=("true",)) -> tuple[dict, dict]:
    """Create one container with docker and one with berth; their inspect documents."""
    suffix = uuid.uuid4().hex[:8]
    made = {}
    for cli in ("docker", "berth"):
        name = f"cli-flags-{cli}-{suffix}"
        p = getattr(daemon, cli)("create", "--name", name, *args, "busybox", *cmd)
        assert p.returncode == 0, (cli, p.stderr)
        made[cli] = _inspect(daemon, name)
    return made["docker"], made["berth"]


def _comparable(info: dict) -> tuple[dict, dict]:
    config = dict(info["Config"])
    if config.get("Hostname") == info["Id"][:12]:
        config.pop("Hostname")          # generated from the ID when not given
    host = dict(info["HostConfig"])
    if host.get("Binds"):
        host["Binds"] = sorted(host["Binds"])   # the docker CLI sends -v from a Go map
    for key in ("CapAdd", "CapDrop"):           # docker CLI 20.10 sends them as typed, 28 and
        if host.get(key):                       # berth as CAP_NAME: the same to dockerd
            host[key] = [c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper()
                         for c in host[key]]
    return config, host


def _assert_same(docker: dict, berth: dict) -> None:
    d_config, d_host = _comparable(docker)
    b_config, b_host = _comparable(berth)
    assert b_host == d_host
    assert b_config == d_config


@pytest.fixture
def volumes_removed(daemon):
    yield
    for name in ("cli-flags-vol", "cli-flags-vol2", "cli-flags-data"):
        daemon.api("DELETE", f"/volumes/{name}?force=1")


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_flags_make_the_same_container_as_docker(daemon, group, volumes_removed):
    docker, berth = _created_same(daemon, GROUPS[group])
    for info in (docker, berth):            # with their anonymous volumes
        daemon.api("DELETE", f"/containers/{info['Id']}?force=1&v=1")
    _assert_same(docker, berth)
    assert sorted((m["Type"], m["Destination"], m["RW"]) for m in berth["Mounts"]) == \
        sorted((m["Type"], m["Destination"], m["RW"]) for m in docker["Mounts"])


def test_user_network_alias_and_ip_as_docker(daemon):
    net = f"cli-flags-net-{uuid.uuid4().hex[:6]}"
    assert daemon.docker("network", "create", "--subnet", "10.231.7.0/24", net).returncode == 0
    try:
        docker, berth = _created_same(daemon, ["--network", net, "--network-alias", "svc"])
        _assert_same(docker, berth)
        d_ep = docker["NetworkSettings"]["Networks"][net]
        b_ep = berth["NetworkSettings"]["Networks"][net]
        assert b_ep["Aliases"] == d_ep["Aliases"]
        for cli, ip in (("docker", "10.231.7.76"), ("berth", "10.231.7.77")):
            p = getattr(daemon, cli)("run", "-d", "--network", net, "--ip", ip, "busybox",
                                     "sleep", "30")
            assert p.returncode == 0, (cli, p.stderr)
            ep = _inspect(daemon, p.stdout.decode().strip())["NetworkSettings"]["Networks"]
            assert ep[net]["IPAddress"] == ip, cli
    finally:
        daemon.remove_containers(daemon.container_ids())
        daemon.api("DELETE", f"/networks/{net}")


def test_env_file_volumes_from_and_cidfile(daemon, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\n\nBOTH=file\n")
    first = daemon.berth("create", "--name", "cli-flags-src", "-v", "/shared", "busybox")
    assert first.returncode == 0, first.stderr
    cidfile = tmp_path / "cid"
    p = daemon.berth("run", "--cidfile", str(cidfile), "--env-file", str(env_file), "-e",
                     "BOTH=flag", "--volumes-from", "cli-flags-src:ro", "busybox", "sh", "-c",
                     "echo $FROM_FILE $BOTH; grep ' /shared ' /proc/mounts | grep -c ro,")
    assert (p.returncode, p.stdout) == (0, b"1 flag\n1\n"), p.stderr
    info = _inspect(daemon, cidfile.read_text())
    assert info["HostConfig"]["ContainerIDFile"] == str(cidfile)
    again = daemon.berth("create", "--cidfile", str(cidfile), "busybox")
    assert again.returncode == 125 and b"container ID file found" in again.stderr
    daemon.api("DELETE", "/containers/cli-flags-src?force=1&v=1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_published_port_answers_on_loopback_and_port_lists_it(daemon):
    host_port = _free_port()
    p = daemon.berth("run", "-d", "--name", "cli-flags-web", "-p",
                     f"127.0.0.1:{host_port}:8080", "busybox", "sh", "-c",
                     "while true; do echo pong | nc -l -p 8080; done")
    assert p.returncode == 0, p.stderr
    got = b""
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", host_port), timeout=2) as s:
                got = s.recv(100)
            if got:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert got == b"pong\n"
    assert daemon.berth("port", "cli-flags-web").stdout == \
        daemon.docker("port", "cli-flags-web").stdout == \
        f"8080/tcp -> 127.0.0.1:{host_port}\n".encode()
    assert daemon.berth("port", "cli-flags-web", "8080").stdout == \
        f"127.0.0.1:{host_port}\n".encode()
    shown = daemon.docker("ps", "--filter", "name=cli-flags-web", "--format",
                          "{{.Ports}}").stdout.decode().strip()
    assert shown == f"127.0.0.1:{host_port}->8080/tcp"
    row = next(line for line in daemon.berth("ps").stdout.decode().splitlines()
               if line.endswith("cli-flags-web"))
    assert f"   {shown}   " in row                     # ps's PORTS column, as docker ps's
    missing = daemon.berth("port", "cli-flags-web", "81/udp")
    assert missing.returncode == 1
    assert missing.stderr == daemon.docker("port", "cli-flags-web", "81/udp").stderr


def test_ps_ports_column_groups_ranges_as_docker(daemon):
    p = daemon.berth("create", "--name", "cli-flags-ranges", "-p", "127.0.0.1::90",
                     "--expose", "53-54", "--expose", "7/udp", "busybox", "sleep", "30")
    assert p.returncode == 0, p.stderr
    assert daemon.berth("start", "cli-flags-ranges").returncode == 0
    try:
        shown = daemon.docker("ps", "--filter", "name=cli-flags-ranges", "--format",
                              "{{.Ports}}").stdout.decode().strip()
        assert shown.startswith("7/udp, 53-54/tcp, 127.0.0.1:") and \
            shown.endswith("->90/tcp"), shown
        row = next(line for line in daemon.berth("ps").stdout.decode().splitlines()
                   if line.endswith("cli-flags-ranges"))
        assert f"   {shown}   " in row
    finally:
        daemon.berth("rm", "-f", "cli-flags-ranges")


def test_named_volume_keeps_data_between_containers(daemon, volumes_removed):
    p = daemon.berth("run", "--rm", "-v", "cli-flags-data:/data", "busybox", "sh", "-c",
                     "echo kept > /data/f")
    assert p.returncode == 0, p.stderr
    p = daemon.berth("run", "--rm", "--mount", "type=volume,src=cli-flags-data,dst=/d,ro",
                     "busybox", "cat", "/d/f")
    assert (p.returncode, p.stdout) == (0, b"kept\n"), p.stderr


def test_user_network_resolves_container_names(daemon):
    net = f"cli-flags-dns-{uuid.uuid4().hex[:6]}"
    assert daemon.berth("network", "create", net).returncode == 0
    try:
        p = daemon.berth("run", "-d", "--name", "cli-flags-peer", "--network", net,
                         "--network-alias", "peer-alias", "busybox", "sleep", "30")
        assert p.returncode == 0, p.stderr
        peer_ip = _inspect(daemon, "cli-flags-peer")["NetworkSettings"]["Networks"][net][
            "IPAddress"]
        for target in ("cli-flags-peer", "peer-alias"):
            p = daemon.berth("run", "--rm", "--network", net, "busybox", "nslookup", target)
            assert p.returncode == 0, (target, p.stdout, p.stderr)
            assert peer_ip.encode() in p.stdout
    finally:
        daemon.remove_containers(daemon.container_ids())
        daemon.api("DELETE", f"/networks/{net}")


@pytest.mark.parametrize("args, message", [
    (["-p", "99999"], b"invalid containerPort: 99999"),
    (["--cpus", "x"], b'invalid argument "x" for "--cpus" flag'),
    (["--health-interval", "-1s"], b"--health-interval cannot be negative"),
    pytest.param(["--pull", "sometimes"], b"invalid pull option: 'sometimes'",
                 marks=pytest.mark.skipif(docker_cli_major() < 28,
                                          reason="docker CLI 20.10's create takes any --pull "
                                          "(28 refuses it)")),
    (["--no-healthcheck", "--health-cmd", "true"], b"--no-healthcheck conflicts"),
    (["--ulimit", "nofile"], b"invalid ulimit argument: nofile"),
])
def test_bad_flags_exit_125_as_docker(daemon, args, message):
    before = daemon.container_ids()
    p = daemon.berth("create", *args, "busybox")
    d = daemon.docker("create", *args, "busybox")
    assert p.returncode == d.returncode == 125
    # docker CLI 20.10 capitalises some ("Invalid containerPort: 99999.")
    assert message in p.stderr and message.lower() in d.stderr.lower()
    assert daemon.container_ids() == before


def test_pull_never_does_not_pull_a_missing_image(daemon):
    p = daemon.berth("create", "--pull", "never", "cli-flags-no-such-image:1")
    assert p.returncode == 125
    assert b"No such image" in p.stderr and b"Unable to find image" not in p.stderr


def test_create_prints_the_id_and_attach_flags_reach_the_config(daemon):
    p = daemon.berth("create", "-a", "stderr", "busybox", "true")
    assert p.returncode == 0, p.stderr
    config = _inspect(daemon, p.stdout.decode().strip())["Config"]
    assert (config["AttachStdin"], config["AttachStdout"], config["AttachStderr"]) == \
        (False, False, True)
    assert json.loads(json.dumps(config["Cmd"])) == ["true"]


def test_pull_missing_asks_the_registry_as_docker_does(daemon):
    before = daemon.container_ids()
    p = daemon.berth("run", "--rm", "cli-flags-no-such-image")
    err = p.stderr.decode()
    assert p.returncode == 125
    assert "Unable to find image 'cli-flags-no-such-image:latest' locally" in err
    assert "registry-1.docker.io" in err, err       # the tests' dead proxy answers it
    quiet = daemon.berth("create", "-q", "cli-flags-no-such-image")
    assert quiet.returncode == 125 and b"Unable to find" not in quiet.stderr
    assert daemon.container_ids() == before


def test_empty_modes_and_shm_size_get_dockerd_s_defaults(daemon):
    """The docker CLI sends IpcMode and CgroupnsMode empty and ShmSize 0, meaning the
    daemon's defaults: inspect shows those, as after dockerd's adaptContainerSettings."""
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"IpcMode": "", "CgroupnsMode": "", "ShmSize": 0}})
    assert r.status == 201, r.body
    cid = r.json()["Id"]
    try:
        host = daemon.api("GET", f"/containers/{cid}/json").json()["HostConfig"]
        v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        assert (host["IpcMode"], host["CgroupnsMode"], host["ShmSize"]) == (
            "private", "private" if v2 else "host", 64 << 20)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
