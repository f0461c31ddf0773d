"""The berth CLI's image file verbs against berthd: save and load (a file and a pipe), import
with -c and -m, commit with -c/-m/-a and --no-pause, history."""
from __future__ import annotations

import io
import json
import tarfile


def berth_ok(daemon, *args, input=None) -> bytes:
    p = daemon.berth(*args, input=input)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def test_save_load_import_commit_history(daemon, tmp_path):
    archive = tmp_path / "bb.tar"
    berth_ok(daemon, "save", "-o", str(archive), "busybox")
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["busybox:latest"]
    assert berth_ok(daemon, "load", "-i", str(archive)) == b"Loaded image: busybox:latest\n"
    assert berth_ok(daemon, "load", "-q", input=archive.read_bytes()) == b""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    out = berth_ok(daemon, "import", "-c", "LABEL a=b", "-m", "cli import", "-",
                   "cli-imported:1", input=buf.getvalue())
    imported = out.decode().strip()
    assert imported.startswith("sha256:")
    try:
        info = daemon.api("GET", "/images/cli-imported:1/json").json()
        assert info["Id"] == imported and info["Config"]["Labels"] == {"a": "b"}
        history = berth_ok(daemon, "history", "cli-imported:1").decode().splitlines()
        assert history[0].split()[:2] == ["IMAGE", "CREATED"] and "cli import" in history[1]
        cid = berth_ok(daemon, "run", "-d", "busybox", "sh", "-c",
                       "echo x > /x; sleep 60").decode().strip()
        try:
            for _ in range(50):
                if daemon.berth("exec", cid, "cat", "/x").stdout == b"x\n":
                    break
            out = berth_ok(daemon, "commit", "--no-pause", "-c", "USER nobody", "-m", "m",
                           "-a", "me", cid, "cli-committed")
            committed = out.decode().strip()
            info = daemon.api("GET", "/images/cli-committed/json").json()
            assert info["Id"] == committed and info["Config"]["User"] == "nobody"
            assert info["Author"] == "me" and info["Comment"] == "m"
            # its parent is the container's image, named in the row below (dockerd's walk)
            base = daemon.api("GET", "/images/busybox/json").json()["Id"]
            assert info["Parent"] == base
            assert berth_ok(daemon, "history", "-q", "cli-committed").decode().split()[:2] \
                == [committed[7:19], base[7:19]]
        finally:
            daemon.berth("rm", "-f", cid)
    finally:
        daemon.api("DELETE", "/images/cli-imported:1")
        daemon.api("DELETE", "/images/cli-committed")


def test_load_error_is_docker_s(daemon):
    p = daemon.berth("load", input=b"not a tar" * 100)
    assert p.returncode != 0 and b"the archive is not a valid tar" in p.stderr, p
