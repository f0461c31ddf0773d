"""`docker diff`, `docker export` and `docker system df [-v]` against berthd with the unchanged
docker CLI: A/C/D after adding, changing and deleting files (a deleted and remade directory
too), the runtime's mount points left out as dockerd's init layer leaves them out; an export
holds the image's files and the container's changes, not what it deleted; sizes are measured
and follow a container writing 5 MB. Where Debian's dockerd is installed, the same changes
must give the same diff there."""
from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time

import pytest

from tests.helpers.peer_dockerd import (  # noqa: F401 (dockerd: a fixture)
    dockerd, skip_where_its_exec_sees_the_host)


CHANGES = ("echo new > /tmp/new && mkdir -p /tmp/dir/sub && echo x > /tmp/dir/sub/f && "
           "echo more >> /etc/passwd && chmod 600 /etc/group && rm /bin/vi && "
           "rm -rf /root && mkdir /root && touch /root/again && echo 1 > /etc/hosts")
EXPECTED = {"C /bin", "D /bin/vi", "C /etc", "C /etc/group", "C /etc/passwd", "C /root",
            "A /root/again", "C /tmp", "A /tmp/dir", "A /tmp/dir/sub", "A /tmp/dir/sub/f",
            "A /tmp/new"}


def docker_ok(engine, *args: str) -> bytes:
    p = engine.docker(*args)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def changed(engine, name: str, state: str) -> str:
    docker_ok(engine, "run", "-d", "--name", name, "busybox", "sh", "-c",
              CHANGES + " && touch /ready && exec sleep 300")
    for _ in range(100):
        if engine.docker("exec", name, "test", "-e", "/ready").returncode == 0:
            break
        time.sleep(0.05)
    docker_ok(engine, "exec", name, "rm", "/ready")
    if state == "stopped":
        docker_ok(engine, "stop", "-t", "0", name)
    return name


def diff_lines(engine, name: str) -> set[str]:
    return set(docker_ok(engine, "diff", name).decode().splitlines())


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_diff_adds_changes_and_deletes(daemon, state):
    name = changed(daemon, f"diff-{state}", state)
    assert diff_lines(daemon, name) == EXPECTED
    changes = daemon.api("GET", f"/containers/{name}/changes").json()
    assert {"Path": "/bin/vi", "Kind": 2} in changes and {"Path": "/tmp/new", "Kind": 1} \
        in changes and {"Path": "/etc/group", "Kind": 0} in changes
    # parents come before what they hold
    paths = [c["Path"] for c in changes]
    assert paths.index("/tmp") < paths.index("/tmp/dir") < paths.index("/tmp/dir/sub/f")


def test_diff_of_an_unchanged_container_is_empty(daemon):
    docker_ok(daemon, "create", "--name", "diff-none", "busybox", "true")
    assert daemon.api("GET", "/containers/diff-none/changes").json() is None
    assert docker_ok(daemon, "diff", "diff-none") == b""
    # run: the runtime's mount points (/etc/hosts and its siblings) are no changes
    docker_ok(daemon, "start", "-a", "diff-none")
    assert docker_ok(daemon, "diff", "diff-none") == b""
    p = daemon.docker("diff", "no-such-box")
    assert p.returncode == 1 and b"No such container: no-such-box" in p.stderr


def export_names(engine, name: str) -> set[str]:
    data = docker_ok(engine, "export", name)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name for m in tar.getmembers()}


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_export_holds_the_image_and_the_changes(daemon, tmp_path, state):
    name = changed(daemon, f"export-{state}", state)
    names = export_names(daemon, name)
    assert {"bin/busybox", "bin/sh", "etc/passwd", "tmp/new", "tmp/dir/sub/f",
            "root/again"} <= names
    assert "bin/vi" not in names and not any(n.startswith(("proc/", "sys/", "/")) for n in names)
    data = docker_ok(daemon, "export", name)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("etc/passwd").read().endswith(b"more\n")
        assert tar.getmember("etc/group").mode == 0o600
    # `docker export | tar t`, as a user types it
    p = daemon.docker("export", "-o", str(tmp_path / "out.tar"), name)
    assert p.returncode == 0, p.stderr
    listed = set(subprocess_tar_t(tmp_path / "out.tar"))
    assert listed == names


def subprocess_tar_t(path) -> list[str]:
    out = subprocess.run(["tar", "tf", str(path)], capture_output=True, check=True, text=True)
    return [line.rstrip("/") for line in out.stdout.splitlines()]


def df(daemon, *query: str) -> dict:
    r = daemon.api("GET", "/system/df" + ("?" + "&".join(query) if query else ""))
    assert r.status == 200, r
    return r.json()


def test_system_df_measures_and_follows_a_write(daemon):
    docker_ok(daemon, "run", "-d", "--name", "df-writer", "busybox", "sleep", "300")
    before = df(daemon)
    mine = next(c for c in before["Containers"] if c["Names"] == ["/df-writer"])
    busybox = next(i for i in before["Images"] if "busybox:latest" in i["RepoTags"])
    listed = next(i for i in daemon.api("GET", "/images/json").json()
                  if "busybox:latest" in i["RepoTags"])
    # the image's measure is the image store's: `docker images` and `system df` agree
    assert busybox["Size"] == listed["Size"] > 1_000_000
    # SharedSize: its one layer's size when another image (a commit, a build step the
    # session's other tests left as build cache) holds that layer too, else 0
    layers = daemon.api("GET", f"/images/{busybox['Id']}/json").json()["RootFS"]["Layers"]
    assert len(layers) == 1
    shared = any(layers[0] in daemon.api("GET", f"/images/{i['Id']}/json").json()
                 ["RootFS"]["Layers"] for i in before["Images"] if i["Id"] != busybox["Id"])
    assert busybox["Containers"] >= 1
    assert busybox["SharedSize"] == (busybox["Size"] if shared else 0)
    # LayersSize counts a shared layer once
    sizes = sum(i["Size"] for i in before["Images"])
    if any(i["SharedSize"] for i in before["Images"]):
        assert before["LayersSize"] < sizes
    else:
        assert before["LayersSize"] == sizes
    assert mine["SizeRootFs"] == mine["SizeRw"] + busybox["Size"]
    assert (before["Volumes"], before["BuildCache"]) == ([], [])
    docker_ok(daemon, "exec", "df-writer", "dd", "if=/dev/zero", "of=/fivemb", "bs=1M",
              "count=5")
    after = df(daemon)
    now = next(c for c in after["Containers"] if c["Names"] == ["/df-writer"])
    assert now["SizeRw"] - mine["SizeRw"] == 5 * 1024 * 1024
    assert now["SizeRootFs"] - mine["SizeRootFs"] == 5 * 1024 * 1024
    # the CLI's tables
    out = docker_ok(daemon, "system", "df").decode()
    assert re.search(r"^Containers\s+\d+\s+\d+\s+5\.\d+MB", out, re.M), out
    verbose = docker_ok(daemon, "system", "df", "-v").decode()
    line = next(ln for ln in verbose.splitlines() if ln.endswith("df-writer"))
    assert "5.24MB" in line, verbose
    busybox_line = next(ln for ln in verbose.splitlines() if ln.startswith("busybox "))
    assert busybox_line.split()[-1] != "0", verbose       # CONTAINERS: it is used


def test_system_df_by_type(daemon):
    only = df(daemon, "type=container")
    assert only["Images"] is None and isinstance(only["Containers"], list)
    assert only["LayersSize"] == 0
    both = df(daemon, "type=image", "type=volume")
    assert isinstance(both["Images"], list) and both["Volumes"] == [] \
        and both["Containers"] is None
    r = daemon.api("GET", "/system/df?type=nonsense")
    assert (r.status, r.json()) == (400, {"message": "unknown object type: nonsense"})
    # before API 1.42 the type is not read
    assert isinstance(daemon.api("GET", "/v1.41/system/df?type=volume").json()["Images"], list)


def test_diff_same_as_debians_dockerd(daemon, dockerd):
    skip_where_its_exec_sees_the_host()
    # dockerd's busybox here is not berth's (it has /sbin and /run, no /home): the changes
    # touch only what both have
    assert diff_lines(daemon, changed(daemon, "diff-cmp", "running")) == \
        diff_lines(dockerd, changed(dockerd, "diff-cmp", "running"))
    names = export_names(dockerd, "diff-cmp")
    assert "bin/vi" not in names and "tmp/dir/sub/f" in names


def test_export_of_a_missing_container(daemon):
    r = daemon.api("GET", "/containers/no-such-box/export")
    assert (r.status, r.json()) == (404, {"message": "No such container: no-such-box"})
    assert json.loads(daemon.api("GET", "/containers/no-such-box/changes").body) == \
        {"message": "No such container: no-such-box"}
