"""Volumes with the unchanged docker CLI against berthd (`docker volume create/ls/inspect/rm/
prune`, -v NAME:/path, -v /path, --mount type=volume, an image's VOLUME, --volumes-from,
rm -v and --rm), and what a berthd restart keeps. Data goes where a volume is and stays
there after its container; nothing is left behind (volume directories and mounts)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers.engine_daemon import DOCKER

CLIS = [c for c in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(c)]


def _docker(daemon, cli: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, env=daemon.env(), timeout=60)


def _volumes(daemon) -> set[str]:
    return {v["Name"] for v in daemon.api("GET", "/volumes").json()["Volumes"] or []}


@pytest.fixture
def vols(daemon):
    """The session's berthd; the volumes a test makes are removed after it (its containers
    first), and none of their directories is left."""
    before = _volumes(daemon)
    yield daemon
    daemon.remove_containers(daemon.container_ids())
    for name in _volumes(daemon) - before:
        r = daemon.api("DELETE", f"/volumes/{name}")
        assert r.status == 204, r
    left = set(os.listdir(daemon.data_root / "volumes")) - before
    assert not left, left


@pytest.mark.parametrize("cli", CLIS)
def test_volume_create_ls_inspect_rm_from_the_docker_cli(vols, cli):
    p = _docker(vols, cli, "volume", "create", "--label", "team=a", "cli-vol")
    assert p.returncode == 0 and p.stdout == b"cli-vol\n", p
    p = _docker(vols, cli, "volume", "ls", "--format", "{{.Driver}} {{.Name}}", "--filter",
                "label=team=a")
    assert p.stdout == b"local cli-vol\n", p
    info = json.loads(_docker(vols, cli, "volume", "inspect", "cli-vol").stdout)[0]
    assert info["Mountpoint"] == str(vols.data_root / "volumes" / "cli-vol" / "_data")
    assert info["Labels"] == {"team": "a"} and info["Scope"] == "local"
    assert os.path.isdir(info["Mountpoint"])
    p = _docker(vols, cli, "volume", "rm", "cli-vol")
    assert p.returncode == 0 and p.stdout == b"cli-vol\n", p
    assert not os.path.exists(vols.data_root / "volumes" / "cli-vol")
    p = _docker(vols, cli, "volume", "inspect", "cli-vol")
    assert p.returncode == 1 and b"no such volume" in p.stderr.lower(), p


def test_volume_create_refuses_a_bad_name_and_an_option_berth_cannot_apply(vols):
    p = vols.docker("volume", "create", "bad@name")
    assert p.returncode == 1 and b'"bad@name" includes invalid characters' in p.stderr, p
    p = vols.docker("volume", "create", "-o", "size=10m", "-o", "type=tmpfs", "-o",
                    "device=tmpfs", "sized")
    assert p.returncode == 1 and b"quota size requested but no quota support" in p.stderr, p
    assert "sized" not in _volumes(vols)


def test_volume_ls_filters(vols):
    vols.docker("volume", "create", "--label", "k=v", "flt-one")
    vols.docker("volume", "create", "flt-two")

    def names(*filters):
        args = [a for f in filters for a in ("--filter", f)]
        return vols.docker("volume", "ls", "-q", *args).stdout.decode().split()
    assert names("name=flt-") == ["flt-one", "flt-two"]
    assert names("label=k") == ["flt-one"] and names("label=k=w") == []
    assert names("driver=local", "name=flt-two") == ["flt-two"]
    assert "flt-two" in names("dangling=true") and names("dangling=false") == []
    p = vols.docker("volume", "ls", "--filter", "colour=red")
    assert p.returncode == 1 and b"invalid filter 'colour'" in p.stderr, p


def test_system_df_counts_volumes_with_their_real_size(vols):
    vols.docker("volume", "create", "df-vol")
    mountpoint = vols.data_root / "volumes" / "df-vol" / "_data"
    (mountpoint / "blob").write_bytes(b"x" * 123_457)
    df = vols.api("GET", "/system/df?type=volume").json()
    mine = [v for v in df["Volumes"] if v["Name"] == "df-vol"]
    assert len(mine) == 1 and mine[0]["UsageData"] == {"Size": 123_457, "RefCount": 0}, df
    p = vols.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert p.returncode == 0 and b"Local Volumes" in p.stdout, p
