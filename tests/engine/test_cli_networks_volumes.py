"""`berth network` and `berth volume` against the docker CLI on the same berthd: the same
requests (so the same objects), the same table columns, --format and -q output, messages and
exit codes."""
from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.helpers.engine_daemon import docker_cli_major


def _name(kind: str) -> str:
    return f"cli-{kind}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def cleanup(daemon):
    made: list[tuple[str, str]] = []
    yield made
    daemon.remove_containers(daemon.container_ids())
    for kind, name in made:
        daemon.api("DELETE", f"/{kind}/{name}" + ("?force=1" if kind == "volumes" else ""))


def _out(p) -> str:
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_network_create_makes_what_docker_makes(daemon, cleanup):
    flags = ["--subnet", "10.231.9.0/24", "--gateway", "10.231.9.1", "--ip-range",
             "10.231.9.0/25", "--internal", "--attachable", "--label", "team=a"]
    made = {}
    for cli, subnet in (("docker", "10.231.8"), ("berth", "10.231.9")):
        name = _name("net")
        cleanup.append(("networks", name))
        args = [f.replace("10.231.9", subnet) for f in flags]
        net_id = _out(getattr(daemon, cli)("network", "create", *args, name)).strip()
        assert len(net_id) == 64
        made[cli] = daemon.api("GET", f"/networks/{name}").json()
    for info in made.values():
        for key in ("Name", "Id", "Created"):
            info.pop(key)
        info["IPAM"]["Config"] = [{k: v.replace("10.231.8", "10.231.9") for k, v in c.items()}
                                  for c in info["IPAM"]["Config"]]
    assert made["berth"] == made["docker"]
    assert made["berth"]["Internal"] and made["berth"]["Labels"] == {"team": "a"}


def test_network_ls_inspect_rm_as_docker(daemon, cleanup):
    name = _name("net")
    cleanup.append(("networks", name))
    _out(daemon.berth("network", "create", name))
    berth_ls, docker_ls = (_out(getattr(daemon, c)("network", "ls")) for c in ("berth", "docker"))
    assert berth_ls.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert berth_ls == docker_ls
    for args in (["-q"], ["--no-trunc", "-q"], ["--format", "{{.Name}} {{.Driver}}"],
                 ["--format", "table {{.Name}}\t{{.ID}}"], ["-f", f"name={name}"]):
        assert _out(daemon.berth("network", "ls", *args)) == \
            _out(daemon.docker("network", "ls", *args)), args
    inspected = json.loads(_out(daemon.berth("network", "inspect", name)))
    assert inspected == json.loads(_out(daemon.docker("network", "inspect", name)))
    assert _out(daemon.berth("network", "inspect", "-f", "{{.Driver}}", name)) == "bridge\n"
    missing = daemon.berth("network", "rm", name, "cli-no-such-net")
    assert missing.returncode == 1 and missing.stdout == f"{name}\n".encode()
    assert b"Error response from daemon" in missing.stderr and b"cli-no-such-net" in \
        missing.stderr
    assert daemon.api("GET", f"/networks/{name}").status == 404


def test_network_connect_disconnect_and_prune(daemon, cleanup):
    name, unused = _name("net"), _name("net")
    cleanup += [("networks", name), ("networks", unused)]
    _out(daemon.berth("network", "create", "--subnet", "10.231.10.0/24", name))
    _out(daemon.berth("network", "create", unused))
    cid = _out(daemon.berth("run", "-d", "busybox", "sleep", "30")).strip()
    assert _out(daemon.berth("network", "connect", "--alias", "side", "--ip", "10.231.10.50",
                             name, cid)) == ""
    ep = daemon.api("GET", f"/containers/{cid}/json").json()["NetworkSettings"]["Networks"]
    assert ep[name]["IPAddress"] == "10.231.10.50" and "side" in ep[name]["Aliases"]
    ip = _out(daemon.berth("exec", cid, "ip", "-4", "-o", "addr"))
    assert "10.231.10.50/24" in ip
    assert _out(daemon.berth("network", "disconnect", name, cid)) == ""
    assert name not in daemon.api("GET", f"/containers/{cid}/json").json()[
        "NetworkSettings"]["Networks"]
    p = daemon.berth("network", "prune", input=b"n\n")
    assert p.stdout.startswith(b"WARNING! This will remove all custom networks not used by at "
                               b"least one container.\nAre you sure you want to continue? [y/N]")
    assert daemon.api("GET", f"/networks/{unused}").status == 200
    out = _out(daemon.berth("network", "prune", "-f"))
    assert out.startswith("Deleted Networks:\n") and unused in out.splitlines()
    assert daemon.api("GET", f"/networks/{unused}").status == 404


def test_volume_verbs_as_docker(daemon, cleanup):
    name = _name("vol")
    cleanup.append(("volumes", name))
    assert _out(daemon.berth("volume", "create", "--label", "k=v", name)) == f"{name}\n"
    info = json.loads(_out(daemon.berth("volume", "inspect", name)))
    assert info == json.loads(_out(daemon.docker("volume", "inspect", name)))
    assert info[0]["Labels"] == {"k": "v"} and info[0]["Driver"] == "local"
    berth_ls = _out(daemon.berth("volume", "ls"))
    assert berth_ls.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert berth_ls == _out(daemon.docker("volume", "ls"))
    for args in (["-q"], ["--format", "{{.Name}}:{{.Mountpoint}}"],
                 ["--format", "table {{.Name}}\t{{.Labels}}"], ["-f", "label=k=v"]):
        assert _out(daemon.berth("volume", "ls", *args)) == \
            _out(daemon.docker("volume", "ls", *args)), args
    generated = _out(daemon.berth("volume", "create")).strip()    # named, not anonymous
    cleanup.append(("volumes", generated))
    assert len(generated) == 64
    holder = _out(daemon.berth("create", "-v", "/anon", "busybox")).strip()
    anonymous = daemon.api("GET", f"/containers/{holder}/json").json()["Mounts"][0]["Name"]
    cleanup.append(("volumes", anonymous))
    assert _out(daemon.berth("rm", holder)) == f"{holder}\n"
    pruned = _out(daemon.berth("volume", "prune", "-f"))
    assert pruned.startswith("Deleted Volumes:\n") and anonymous in pruned.splitlines()
    assert re.search(r"\n\nTotal reclaimed space: [0-9.]+k?B\n\Z", pruned), pruned
    assert daemon.api("GET", f"/volumes/{generated}").status == 200
    assert daemon.api("GET", f"/volumes/{anonymous}").status == 404
    assert daemon.api("GET", f"/volumes/{name}").status == 200      # named: only with -a
    cid = _out(daemon.berth("create", "-v", f"{name}:/data", "busybox")).strip()
    busy = daemon.berth("volume", "rm", name)
    assert busy.returncode == 1 and b"in use" in busy.stderr
    daemon.remove_containers([cid])
    out = _out(daemon.berth("volume", "prune", "-a", "-f"))
    assert out.startswith("Deleted Volumes:\n") and name in out.splitlines()
    gone = daemon.berth("volume", "rm", name)
    # docker 28's words (20.10 words it "Error: No such volume: NAME" itself)
    assert gone.returncode == 1 \
        and gone.stderr == f"Error response from daemon: get {name}: no such volume\n".encode()
    if docker_cli_major() >= 28:
        assert gone.stderr == daemon.docker("volume", "rm", name).stderr
