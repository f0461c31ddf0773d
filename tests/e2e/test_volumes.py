"""Volumes with the unchanged docker CLI against berthd (`docker volume create/ls/inspect/rm/
prune`, -v NAME:/path, -v /path, --mount type=volume, an image's VOLUME, --volumes-from,
rm -v and --rm), and what a berthd restart keeps. Data goes where a volume is and stays
there after its container; nothing is left behind (volume directories and mounts)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)

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


@pytest.mark.parametrize("cli", CLIS)
def test_volume_prune_from_the_docker_cli(vols, cli):
    """docker 20.10 (API 1.41) prunes every unused volume; docker 28 only anonymous ones
    unless --all, as against dockerd."""
    _docker(vols, cli, "volume", "create", "--label", f"pr={cli}", "prune-named")
    cid = vols.docker("create", "--network", "none", "-v", "/anon", "busybox",
                      "true").stdout.decode().strip()
    anon = [m["Name"] for m in json.loads(vols.docker("inspect", cid).stdout)[0]["Mounts"]][0]
    vols.docker("rm", cid)
    old = _docker(vols, cli, "version", "--format", "{{.Client.APIVersion}}").stdout.strip()
    p = _docker(vols, cli, "volume", "prune", "-f", "--filter", "label!=other")
    assert p.returncode == 0, p
    left = _volumes(vols)
    assert anon not in left, p
    if old < b"1.42":
        assert "prune-named" not in left, p
    else:
        assert "prune-named" in left, p
        p = _docker(vols, cli, "volume", "prune", "-f", "--all")
        assert p.returncode == 0 and "prune-named" not in _volumes(vols), p


def test_system_df_counts_volumes_with_their_real_size(vols):
    vols.docker("volume", "create", "df-vol")
    mountpoint = vols.data_root / "volumes" / "df-vol" / "_data"
    (mountpoint / "blob").write_bytes(b"x" * 123_457)
    df = vols.api("GET", "/system/df?type=volume").json()
    mine = [v for v in df["Volumes"] if v["Name"] == "df-vol"]
    assert len(mine) == 1 and mine[0]["UsageData"] == {"Size": 123_457, "RefCount": 0}, df
    p = vols.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert p.returncode == 0 and b"Local Volumes" in p.stdout, p


def _run(daemon, *args: str) -> subprocess.CompletedProcess:
    return daemon.docker("run", "--network", "none", *args)


def test_data_in_a_named_volume_outlives_its_container(vols):
    p = _run(vols, "--name", "vol-writer", "-v", "keep-vol:/data", "busybox", "sh", "-c",
             "echo kept > /data/f")
    assert p.returncode == 0, p
    assert "keep-vol" in _volumes(vols)                 # made by the run
    mounts = json.loads(vols.docker("inspect", "vol-writer").stdout)[0]["Mounts"]
    assert mounts == [{"Type": "volume", "Name": "keep-vol", "Destination": "/data",
                       "Source": str(vols.data_root / "volumes" / "keep-vol" / "_data"),
                       "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}], mounts
    p = vols.docker("volume", "rm", "keep-vol")
    assert p.returncode == 1 and b"volume is in use" in p.stderr, p
    assert vols.docker("rm", "-v", "vol-writer").returncode == 0    # -v: named ones stay
    p = _run(vols, "--rm", "-v", "keep-vol:/data:ro", "busybox", "sh", "-c",
             "cat /data/f; touch /data/g 2>&1 || echo refused")
    assert p.returncode == 0 and p.stdout.startswith(b"kept\n") and b"refused" in p.stdout, p
    assert vols.docker("volume", "rm", "keep-vol").returncode == 0


def test_removing_a_volume_in_use_fails_clearly_and_leaves_it_whole(vols):
    cid = vols.docker("create", "--network", "none", "-v", "busy-vol:/data", "busybox",
                      "true").stdout.decode().strip()
    r = vols.api("DELETE", "/volumes/busy-vol?force=1")
    assert r.status == 409 and r.json()["message"] == \
        f"remove busy-vol: volume is in use - [{cid}]", r
    assert (vols.data_root / "volumes" / "busy-vol" / "_data").is_dir()
    vols.docker("rm", cid)
    assert vols.api("DELETE", "/volumes/busy-vol").status == 204


def test_mount_type_volume_with_its_options(vols):
    p = _run(vols, "--rm", "--mount", "type=volume,source=opt-vol,target=/data,"
             "volume-label=team=b,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
             "volume-opt=o=size=1m", "busybox", "sh", "-c",
             "grep ' /data ' /proc/self/mountinfo; echo x > /data/f")
    assert p.returncode == 0 and b" tmpfs " in p.stdout, p
    info = json.loads(vols.docker("volume", "inspect", "opt-vol").stdout)[0]
    assert info["Labels"] == {"team": "b"}
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    # unmounted after its last user: what the tmpfs held is gone with it
    mountpoint = info["Mountpoint"]
    with open("/proc/self/mountinfo") as f:
        assert f" {mountpoint} " not in f.read()
    assert os.listdir(mountpoint) == []
    p = _run(vols, "--rm", "--mount", "type=volume,target=/ro,readonly", "busybox", "sh",
             "-c", "touch /ro/x 2>&1 || echo refused")
    assert b"refused" in p.stdout, p


def test_anonymous_volumes_go_with_rm(vols):
    before = _volumes(vols)
    p = _run(vols, "--rm", "-v", "/scratch", "-v", "named-kept:/n", "busybox", "sh", "-c",
             "echo x > /scratch/f")
    assert p.returncode == 0, p
    assert _volumes(vols) - before == {"named-kept"}     # --rm took only the anonymous one
    cid = vols.docker("create", "--network", "none", "-v", "/scratch", "busybox",
                      "true").stdout.decode().strip()
    vols.docker("rm", cid)                              # without -v it stays
    assert len(_volumes(vols) - before - {"named-kept"}) == 1


def test_anonymous_volumes_go_with_rm_v(vols):
    before = _volumes(vols)
    cid = vols.docker("create", "--network", "none", "-v", "/scratch", "-v", "named-kept:/n",
                      "busybox", "true").stdout.decode().strip()
    made = _volumes(vols) - before
    assert len(made) == 2 and "named-kept" in made
    anonymous = (made - {"named-kept"}).pop()
    assert len(anonymous) == 64
    assert vols.docker("rm", "-v", cid).returncode == 0
    assert _volumes(vols) - before == {"named-kept"}


def test_volumes_from_shares_the_other_containers_volumes(vols):
    vols.docker("create", "--network", "none", "--name", "vol-source", "-v",
                "shared-vol:/shared", "-v", "/anon", "busybox", "true")
    p = _run(vols, "--rm", "--volumes-from", "vol-source", "busybox", "sh", "-c",
             "echo hi > /shared/f && echo there > /anon/g")
    assert p.returncode == 0, p
    p = _run(vols, "--rm", "--volumes-from", "vol-source:ro", "busybox", "sh", "-c",
             "cat /shared/f /anon/g; touch /shared/x 2>&1 || echo refused")
    assert p.stdout.startswith(b"hi\nthere\n") and b"refused" in p.stdout, p
    # --pull never: else the CLI takes the 404 for a missing image and pulls (as with dockerd)
    p = _run(vols, "--rm", "--pull", "never", "--volumes-from", "nosuch", "busybox", "true")
    assert p.returncode == 125 and b"No such container: nosuch" in p.stderr, p
    vols.docker("rm", "-v", "vol-source")


def test_a_bad_volume_spec_is_refused_and_makes_nothing(vols):
    before = _volumes(vols)
    for flags, words in ((["-v", "bad@vol:/data"], b"includes invalid characters"),
                         (["-v", "okvol:/data:bogus"], b"invalid mode: bogus"),
                         (["-v", "okvol:relative"], b"mount path must be absolute"),
                         (["--mount", "type=volume,src=okvol,dst=/d,volume-subpath=x"],
                          b"volume-subpath")):
        p = _run(vols, "--rm", *flags, "busybox", "true")
        assert p.returncode == 125 and words in p.stderr, (flags, p)
    assert _volumes(vols) == before


def test_a_berthd_restart_keeps_volumes_and_their_users(tmp_path):
    from tests.helpers.engine_daemon import BerthDaemon
    d = BerthDaemon()
    try:
        d.start()
        d.docker("run", "--network", "none", "-d", "--name", "user", "-v", "restart-vol:/data",
                 "--mount",
                 "type=volume,src=tmp-vol,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
                 "busybox", "sh", "-c", "echo a > /data/f; echo b > /t/g; sleep 600")
        d.docker("create", "--network", "none", "--name", "stopped", "-v", "stopped-vol:/data",
                 "busybox", "true")
        d.stop()
        d.start()
        assert {"restart-vol", "tmp-vol", "stopped-vol"} <= _volumes(d)
        r = d.api("DELETE", "/volumes/stopped-vol")
        assert r.status == 409 and "volume is in use" in r.json()["message"], r
        p = d.docker("exec", "user", "cat", "/data/f", "/t/g")
        assert p.stdout == b"a\nb\n", p
        tmp_data = d.data_root / "volumes" / "tmp-vol" / "_data"
        assert (tmp_data / "g").exists()                # still mounted for its user
        d.docker("rm", "-f", "user")
        assert not (tmp_data / "g").exists()            # and unmounted after it
        assert d.api("DELETE", "/volumes/tmp-vol").status == 204
    finally:
        d.cleanup()


def test_shapes_match_debians_dockerd(vols, dockerd):  # noqa: F811 (the fixture)
    """The keys of a volume, of the volume list and of a volume mount point in inspect, and
    the in-use refusal, against Debian's dockerd."""
    peer = dockerd.daemon

    def both(*args: str) -> list[subprocess.CompletedProcess]:
        return [vols.docker(*args), dockerd.docker(*args)]
    try:
        for p in both("volume", "create", "--label", "a=b", "shape-vol"):
            assert p.returncode == 0, p
        ours, theirs = (json.loads(p.stdout)[0] for p in both("volume", "inspect", "shape-vol"))
        assert set(ours) == set(theirs) and ours["Labels"] == theirs["Labels"], (ours, theirs)
        assert ours["Options"] == theirs["Options"] and ours["Scope"] == theirs["Scope"]
        for p in both("create", "--network", "none", "--name", "shape-c", "-v",
                      "shape-vol:/data:ro", "busybox",
                      "true"):
            assert p.returncode == 0, p
        ours, theirs = (json.loads(p.stdout)[0]["Mounts"] for p in both("inspect", "shape-c"))
        for m in (*ours, *theirs):
            m.pop("Source")
            # dockerd 20.10 shows "z" for a mode the user left out; today's moby shows the
            # mode as given, as berthd does
            m["Mode"] = m["Mode"].replace("z", "").strip(",")
        assert ours == theirs, (ours, theirs)
        ours, theirs = (p for p in both("volume", "rm", "shape-vol"))
        assert ours.returncode == theirs.returncode == 1
        assert b"volume is in use" in ours.stderr and b"volume is in use" in theirs.stderr
    finally:
        for args in (("rm", "-f", "shape-c"), ("volume", "rm", "shape-vol")):
            vols.docker(*args)
            peer.docker(*args, check=False)
