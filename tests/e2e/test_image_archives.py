"""Images as files, through the docker CLI (20.10 and 28) against berthd: save and load (both
layouts, several images in one archive), umoci reading the OCI layout berth writes, archives
travelling between berthd and Debian's dockerd both ways, export | import and commit
round-tripping a changed filesystem, and history."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (fixture)

CLIS = [c for c in ("/usr/bin/docker", "/usr/local/bin/docker") if Path(c).exists()]


def cli(daemon, binary: str, *args: str, input: bytes | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], input=input, capture_output=True,
                          env=daemon.env(), timeout=timeout)


def ok(p: subprocess.CompletedProcess) -> bytes:
    assert p.returncode == 0, (p.args, p.stdout, p.stderr)
    return p.stdout


@pytest.fixture
def names(daemon):
    """Unique image names for a test; whatever they name is removed after it."""
    made: list[str] = []

    def new(prefix: str = "rb") -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return made[-1]
    yield new
    for name in made:      # by tag: an ID may be busybox's own
        for image in daemon.api("GET", "/images/json").json():
            for tag in image["RepoTags"]:
                if tag.startswith(name + ":"):
                    daemon.api("DELETE", f"/images/{tag}?force=1")


@pytest.mark.parametrize("binary", CLIS)
def test_save_writes_both_layouts_and_load_reads_it_back(daemon, names, binary, tmp_path):
    first, second = names(), names()
    ok(cli(daemon, binary, "tag", "busybox", f"{first}:1"))
    ok(cli(daemon, binary, "tag", "hello-world", f"{second}:2"))
    archive = tmp_path / "two.tar"
    ok(cli(daemon, binary, "save", "-o", str(archive), f"{first}:1", f"{second}:2"))
    with tarfile.open(archive) as tar:
        names_in = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        repositories = json.load(tar.extractfile("repositories"))
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names_in
    assert sorted(m["RepoTags"][0] for m in manifest) == sorted([f"{first}:1", f"{second}:2"])
    assert all(f"blobs/sha256/{p.split('/')[-1]}" in names_in
               for m in manifest for p in [m["Config"], *m["Layers"]])
    assert sorted(d["annotations"]["io.containerd.image.name"] for d in index["manifests"]) \
        == sorted([f"docker.io/library/{first}:1", f"docker.io/library/{second}:2"])
    assert set(repositories) == {first, second}
    ids = {n: json.loads(ok(cli(daemon, binary, "inspect", n)))[0]["Id"]
           for n in (f"{first}:1", f"{second}:2")}
    ok(cli(daemon, binary, "rmi", f"{first}:1", f"{second}:2"))
    out = ok(cli(daemon, binary, "load", "-i", str(archive))).decode()
    assert f"Loaded image: {first}:1" in out and f"Loaded image: {second}:2" in out
    for name, image_id in ids.items():     # the config kept byte for byte: the same ID
        assert json.loads(ok(cli(daemon, binary, "inspect", name)))[0]["Id"] == image_id
    assert ok(cli(daemon, binary, "run", "--rm", f"{first}:1", "echo", "loaded")) == b"loaded\n"


def test_save_by_id_and_load_untagged(daemon, tmp_path):
    image_id = daemon.api("GET", "/images/busybox/json").json()["Id"]
    r = daemon.api("GET", f"/images/{image_id}/get")
    assert r.status == 200
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] is None
        assert "annotations" not in json.load(tar.extractfile("index.json"))["manifests"][0]
    p = daemon.docker("load", input=_body_of(daemon, f"/images/{image_id}/get"))
    assert p.returncode == 0 and p.stdout.decode() == f"Loaded image ID: {image_id}\n", p


def _body_of(daemon, path: str) -> bytes:
    return daemon.api("GET", path).body


def test_umoci_reads_the_oci_layout(daemon, names, tmp_path):
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed")
    name = names()
    ok(daemon.docker("tag", "busybox", f"{name}:v1"))
    layout = tmp_path / "layout"
    with tarfile.open(fileobj=io.BytesIO(_body_of(daemon, f"/images/{name}:v1/get"))) as tar:
        tar.extractall(layout)
    (layout / "manifest.json").unlink()
    (layout / "repositories").unlink()
    assert subprocess.run(["umoci", "ls", "--layout", str(layout)], capture_output=True,
                          check=True).stdout.split() == [b"v1"]
    stat = subprocess.run(["umoci", "stat", "--image", f"{layout}:v1"], capture_output=True)
    assert stat.returncode == 0, stat.stderr
    bundle = tmp_path / "bundle"
    p = subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:v1",
                        str(bundle)], capture_output=True)
    assert p.returncode == 0, p.stderr
    assert (bundle / "rootfs/bin/busybox").is_file()
    assert (bundle / "rootfs/bin/sh").is_symlink()


def test_skopeo_reads_both_layouts(daemon, names, tmp_path):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    name = names()
    ok(daemon.docker("tag", "busybox", f"{name}:sk"))
    archive = tmp_path / "sk.tar"
    archive.write_bytes(_body_of(daemon, f"/images/{name}:sk/get"))
    with tarfile.open(archive) as tar:
        manifest_digest = json.load(tar.extractfile("index.json"))["manifests"][0]["digest"]
    layers = json.loads(ok(daemon.docker("inspect", f"{name}:sk")))[0]["RootFS"]["Layers"]
    oci = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:sk"],
                                    capture_output=True, check=True).stdout)
    assert oci["Digest"] == manifest_digest and oci["Layers"] == layers
    legacy = json.loads(subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"],
                                       capture_output=True, check=True).stdout)
    assert legacy["Layers"] == layers


def test_oci_only_archive_loads(daemon, names, tmp_path):
    """An archive with index.json and blobs alone (as skopeo's or umoci's oci archives)."""
    name = names()
    ok(daemon.docker("tag", "busybox", f"{name}:oci"))
    src = tarfile.open(fileobj=io.BytesIO(_body_of(daemon, f"/images/{name}:oci/get")))
    buf = io.BytesIO()
    with src, tarfile.open(fileobj=buf, mode="w") as out:
        for member in src.getmembers():
            if member.name not in ("manifest.json", "repositories"):
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    ok(daemon.docker("rmi", f"{name}:oci"))
    p = daemon.docker("load", input=buf.getvalue())
    assert p.returncode == 0 and p.stdout.decode() == f"Loaded image: {name}:oci\n", p
    assert ok(daemon.docker("run", "--rm", f"{name}:oci", "echo", "oci")) == b"oci\n"


def test_load_refuses_a_broken_archive_and_keeps_nothing(daemon, names, tmp_path):
    name = names()
    ok(daemon.docker("tag", "busybox", f"{name}:x"))
    body = _body_of(daemon, f"/images/{name}:x/get")
    ok(daemon.docker("rmi", f"{name}:x"))
    src = tarfile.open(fileobj=io.BytesIO(body))
    manifest = json.load(src.extractfile("manifest.json"))
    config = json.load(src.extractfile(manifest[0]["Config"]))
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]    # the layer does not hash to it
    config["created"] = "2001-01-01T00:00:00Z"
    raw = json.dumps(config).encode()
    buf = io.BytesIO()
    with src, tarfile.open(fileobj=buf, mode="w") as out:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == manifest[0]["Config"]:
                member.size, data = len(raw), io.BytesIO(raw)
            out.addfile(member, data)
    blobs = set((daemon.data_root / "content/blobs/sha256").iterdir())
    layers_before = set((daemon.data_root / "overlay/layers").iterdir())
    p = daemon.docker("load", input=buf.getvalue())
    assert p.returncode != 0 and b"layer diff ID mismatch" in p.stderr, p
    assert set((daemon.data_root / "content/blobs/sha256").iterdir()) == blobs
    assert set((daemon.data_root / "overlay/layers").iterdir()) == layers_before
    assert daemon.api("GET", f"/images/{name}:x/json").status == 404


def test_archives_travel_between_dockerd_and_berthd(daemon, names, dockerd, tmp_path):
    # dockerd 20.10's save (the legacy layout alone) loads into berthd and runs
    archive = tmp_path / "from-dockerd.tar"
    name = names()
    p = dockerd.docker("tag", "busybox", f"{name}:peer")
    assert p.returncode == 0, p.stderr
    p = dockerd.docker("save", "-o", str(archive), f"{name}:peer")
    assert p.returncode == 0, p.stderr
    out = ok(daemon.docker("load", "-i", str(archive))).decode()
    assert f"Loaded image: {name}:peer" in out
    assert ok(daemon.docker("run", "--rm", f"{name}:peer", "echo", "from dockerd")) \
        == b"from dockerd\n"
    # berthd's save (both layouts) loads into dockerd 20.10 and runs
    back = tmp_path / "from-berthd.tar"
    other = names()
    ok(daemon.docker("tag", "busybox", f"{other}:berth"))
    ok(daemon.docker("save", "-o", str(back), f"{other}:berth"))
    p = dockerd.docker("load", "-i", str(back))
    assert p.returncode == 0 and f"Loaded image: {other}:berth" in p.stdout.decode(), p
    p = dockerd.docker("run", "--rm", f"{other}:berth", "echo", "from berthd")
    assert p.returncode == 0 and p.stdout == b"from berthd\n", p.stderr
    dockerd.docker("rmi", f"{other}:berth", f"{name}:peer")


def _changed_container(daemon, binary: str) -> str:
    cid = ok(cli(daemon, binary, "run", "-d", "busybox", "sh", "-c",
                 "echo added > /added && echo changed > /etc/group && rm /bin/vi "
                 "&& mkdir -p /opq && rm -rf /home && mkdir /home && touch /home/new "
                 "&& sleep 300")).decode().strip()
    for _ in range(100):
        if ok(cli(daemon, binary, "exec", cid, "ls", "/home")).strip() == b"new":
            break
    return cid


def _check_changed(daemon, binary: str, image: str) -> None:
    script = ("cat /added /etc/group; test -e /bin/vi && echo vi-is-back; "
              "ls -A /home; echo done")
    out = ok(cli(daemon, binary, "run", "--rm", image, "sh", "-c", script))
    assert out == b"added\nchanged\nnew\ndone\n", out


@pytest.mark.parametrize("binary", CLIS)
def test_commit_round_trips_a_changed_filesystem(daemon, names, binary):
    cid = _changed_container(daemon, binary)
    name = names()
    try:
        out = ok(cli(daemon, binary, "commit", "-c", "ENV COMMITTED=yes", "-c", "CMD [\"env\"]",
                     "-m", "a commit message", "-a", "Berth Tester <t@example.com>", cid,
                     f"{name}:c"))
        assert out.strip().startswith(b"sha256:")
        state = json.loads(ok(cli(daemon, binary, "inspect", cid)))[0]["State"]
        assert state["Running"] and not state["Paused"]     # paused for the commit only
    finally:
        cli(daemon, binary, "rm", "-f", cid)
    _check_changed(daemon, binary, f"{name}:c")
    env = ok(cli(daemon, binary, "run", "--rm", f"{name}:c")).decode()
    assert "COMMITTED=yes" in env.split()
    info = json.loads(ok(cli(daemon, binary, "inspect", f"{name}:c")))[0]
    assert info["Author"] == "Berth Tester <t@example.com>"
    assert info["Comment"] == "a commit message"
    base = json.loads(ok(cli(daemon, binary, "inspect", "busybox")))[0]
    assert info["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert info["Parent"] == base["Id"]     # as dockerd records a commit's
    history = json.loads(daemon.api("GET", f"/images/{name}:c/history").body)
    assert history[0]["Id"] == info["Id"] and history[0]["Tags"] == [f"{name}:c"]
    assert history[0]["Comment"] == "a commit message" and history[0]["Size"] > 0
    assert history[1]["Id"] == base["Id"] and "busybox:latest" in history[1]["Tags"]
    assert all(h["Id"] == "<missing>" for h in history[2:])
    out = ok(cli(daemon, binary, "history", "--no-trunc", f"{name}:c")).decode()
    assert "a commit message" in out


@pytest.mark.parametrize("binary", CLIS)
def test_export_import_round_trips_a_changed_filesystem(daemon, names, binary, tmp_path):
    cid = _changed_container(daemon, binary)
    try:
        exported = ok(cli(daemon, binary, "export", cid))
    finally:
        cli(daemon, binary, "rm", "-f", cid)
    name = names()
    out = ok(cli(daemon, binary, "import", "-c", "CMD [\"sh\"]", "-c", "WORKDIR /home",
                 "-m", "imported by a test", "-", f"{name}:i", input=exported))
    assert out.strip().startswith(b"sha256:")
    _check_changed(daemon, binary, f"{name}:i")
    info = json.loads(ok(cli(daemon, binary, "inspect", f"{name}:i")))[0]
    assert info["Config"]["Cmd"] == ["sh"] and info["Config"]["WorkingDir"] == "/home"
    assert info["Comment"] == "imported by a test" and len(info["RootFS"]["Layers"]) == 1
    out = ok(cli(daemon, binary, "history", f"{name}:i")).decode()
    assert "imported by a test" in out


def test_import_refuses_a_url_and_bad_changes(daemon):
    p = daemon.docker("import", "http://127.0.0.1:9/rootfs.tar")
    assert p.returncode != 0 and b"berth does not download import sources" in p.stderr, p
    p = daemon.docker("import", "-c", "RUN true", "-", input=b"")
    assert p.returncode != 0 and b"run is not a valid change command" in p.stderr, p


def _big_archive(path: Path, files: int = 4000, size: int = 12_000) -> None:
    """A legacy-layout archive of one image whose layer takes a while to unpack."""
    import hashlib
    import os
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for i in range(files):
            info = tarfile.TarInfo(f"data/{i // 100}/{i}")
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    raw = layer.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}
                         }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["rb-killed:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("config.json", config), ("l/layer.tar", raw),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_berthd_killed_mid_load_leaves_nothing_half_made(tmp_path):
    """SIGKILL while a layer is being unpacked: after a restart there is no image, no staging
    or work dir, and the same load then completes."""
    from tests.helpers.engine_daemon import DOCKER, BerthDaemon
    archive = tmp_path / "big.tar"
    _big_archive(archive)
    d = BerthDaemon()
    try:
        d.start()
        layers_dir = d.data_root / "overlay" / "layers"
        with open(archive, "rb") as body:
            loader = subprocess.Popen([DOCKER, "load"], stdin=body, env=d.env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not any(p.name.startswith(".unpacking-") for p in layers_dir.iterdir()):
                assert time.monotonic() < deadline and loader.poll() is None, \
                    loader.communicate()
                time.sleep(0.005)
            d.kill()
        finally:
            loader.wait(30)
        d.start()
        assert not [p.name for p in layers_dir.iterdir() if p.name.startswith(".")]
        assert not [p.name for p in (d.data_root / "tmp").iterdir()
                    if p.name.startswith(("load-", "import-", "commit-"))]
        assert d.api("GET", "/images/rb-killed:1/json").status == 404
        p = d.docker("load", "-i", str(archive))
        assert p.returncode == 0 and p.stdout == b"Loaded image: rb-killed:1\n", p
        upper = d.api("GET", "/images/rb-killed:1/json").json()["GraphDriver"]["Data"]["UpperDir"]
        assert len(list(Path(upper, "data").iterdir())) == 40
    finally:
        d.cleanup()


def test_load_says_what_it_loaded_before_an_error(daemon, names):
    """Two images, the second refused: the first stays loaded, said in the stream with the
    error after it (as dockerd), and a load event names it."""
    good, bad = names(), names()
    ok(daemon.docker("tag", "busybox", f"{good}:1"))
    src = tarfile.open(fileobj=io.BytesIO(_body_of(daemon, f"/images/{good}:1/get")))
    ok(daemon.docker("rmi", f"{good}:1"))
    manifest = json.load(src.extractfile("manifest.json"))
    manifest.append({**manifest[0], "RepoTags": [f"{bad}:1"], "Layers": []})
    raw = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with src, tarfile.open(fileobj=buf, mode="w") as out:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == "manifest.json":
                member.size, data = len(raw), io.BytesIO(raw)
            out.addfile(member, data)
    since = int(time.time())
    p = daemon.docker("load", input=buf.getvalue())
    assert p.returncode != 0, p
    assert p.stdout.decode() == f"Loaded image: {good}:1\n"
    assert b"invalid manifest, layers length mismatch: expected 1, got 0" in p.stderr
    image_id = daemon.api("GET", f"/images/{good}:1/json").json()["Id"]
    assert daemon.api("GET", f"/images/{bad}:1/json").status == 404
    f = urllib.parse.quote(json.dumps({"type": ["image"], "event": ["load"]}))
    events = daemon.api("GET", f"/events?since={since}&until={int(time.time()) + 1}"
                               f"&filters={f}").body.splitlines()
    assert [json.loads(e)["Actor"]["ID"] for e in events] == [image_id]


def test_save_and_load_platform(daemon, tmp_path):
    """save/load --platform (API 1.48): the host's platform is the image's; another is
    refused, not ignored."""
    info = daemon.api("GET", "/images/busybox/json").json()
    host = {"os": "linux", "architecture": info["Architecture"]}
    other = {"os": "linux", "architecture": "s390x" if info["Architecture"] != "s390x"
             else "arm64"}
    q = urllib.parse.quote(json.dumps(host))
    r = daemon.api("GET", f"/images/busybox/get?platform={q}")
    assert r.status == 200 and len(r.body) > 1024
    q = urllib.parse.quote(json.dumps(other))
    r = daemon.api("GET", f"/images/get?names=busybox&platform={q}")
    assert r.status == 404 and "does not provide the platform linux/" in r.json()["message"]
    p = daemon.docker("load", "--platform", f"linux/{other['architecture']}",
                      input=daemon.api("GET", "/images/busybox/get").body)
    if b"unknown flag" in p.stderr:
        pytest.skip("this docker CLI has no load --platform")
    assert p.returncode != 0 and f"not the linux/{other['architecture']} asked for".encode() \
        in p.stderr, p
