"""Images: the seeded built-ins as real image records, list/inspect shapes, and a pull that has
no registry to go to."""
from __future__ import annotations

import json
import urllib.parse


def test_builtin_images_are_real_records(daemon):
    images = daemon.api("GET", "/images/json").json()
    by_tag = {t: i for i in images for t in i["RepoTags"]}
    assert {"busybox:latest", "hello-world:latest"} <= set(by_tag)
    for img in by_tag.values():
        assert img["Id"].startswith("sha256:") and len(img["Id"]) == 71
        assert img["Size"] > 0 and img["Created"] > 0
    busybox = daemon.api("GET", "/images/busybox/json").json()
    assert busybox["Id"] == by_tag["busybox:latest"]["Id"]
    assert busybox["Config"]["Cmd"] == ["sh"]
    assert busybox["Os"] == "linux" and busybox["RootFS"]["Type"] == "layers"
    assert len(busybox["RootFS"]["Layers"]) == 1
    # the config blob's digest is the image ID, the layer's blob digest its diff ID
    blobs = daemon.data_root / "content" / "blobs" / "sha256"
    config = json.loads((blobs / busybox["Id"][7:]).read_bytes())
    assert config["rootfs"]["diff_ids"] == busybox["RootFS"]["Layers"]
    assert (blobs / busybox["RootFS"]["Layers"][0][7:]).is_file()


def test_image_references(daemon):
    want = daemon.api("GET", "/images/busybox/json").json()["Id"]
    for ref in ("busybox:latest", "docker.io/library/busybox", want, want[7:19]):
        r = daemon.api("GET", f"/images/{urllib.parse.quote(ref)}/json")
        assert r.status == 200 and r.json()["Id"] == want
    r = daemon.api("GET", "/images/nosuch/json")
    assert r.status == 404 and r.json()["message"] == "No such image: nosuch:latest"


def test_images_filters(daemon):
    f = urllib.parse.quote(json.dumps({"reference": {"busybox": True}}))
    tags = [t for i in daemon.api("GET", f"/images/json?filters={f}").json()
            for t in i["RepoTags"]]
    assert tags == ["busybox:latest"]


def test_docker_images(daemon):
    p = daemon.docker("images")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in lines)
    assert any(line.split()[:2] == ["hello-world", "latest"] for line in lines)


def test_run_of_an_unknown_image_fails_cleanly(daemon):
    before = daemon.container_ids()
    p = daemon.docker("run", "--rm", "no-such-image")
    assert p.returncode == 125
    err = p.stderr.decode()
    assert "Unable to find image 'no-such-image:latest' locally" in err
    # the pull was asked of docker.io, through the tests' dead proxy (engine_daemon.py): the
    # tests never reach outside this machine
    assert "registry-1.docker.io" in err and "127.0.0.1:9" in err, err
    assert daemon.container_ids() == before


def test_docker_tag_and_rmi_of_a_tag(daemon):
    assert daemon.docker("tag", "busybox", "mybox:1").returncode == 0
    assert daemon.docker("tag", "busybox", "example.com/team/box").returncode == 0
    listed = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.decode()
    bb_id = next(line.split()[1] for line in listed.splitlines() if line.startswith("busybox:"))
    assert f"mybox:1 {bb_id}" in listed and f"example.com/team/box:latest {bb_id}" in listed
    p = daemon.docker("run", "--rm", "mybox:1", "echo", "through the tag")
    assert p.stdout == b"through the tag\n", p.stderr
    # an ID named by several repositories needs force; a tag is just untagged
    p = daemon.docker("rmi", bb_id)
    assert p.returncode == 1 and b"image is referenced in multiple repositories" in p.stderr
    p = daemon.docker("rmi", "mybox:1", "example.com/team/box")
    assert p.stdout == b"Untagged: mybox:1\nUntagged: example.com/team/box:latest\n", p.stderr
    assert daemon.docker("image", "inspect", "busybox").returncode == 0
    p = daemon.docker("tag", "no-such-image", "x")
    assert p.returncode == 1 and b"No such image: no-such-image:latest" in p.stderr


def test_rmi_deletes_an_image_nothing_uses_and_keeps_one_a_container_uses(tmp_path):
    from tests.helpers.engine_daemon import BerthDaemon
    private = BerthDaemon()
    try:
        private.start()
        assert private.docker("create", "--name", "user", "busybox", "true").returncode == 0
        p = private.docker("rmi", "busybox")
        assert p.returncode == 1
        assert b'unable to remove repository reference "busybox" (must force)' in p.stderr
        p = private.docker("rmi", "hello-world")
        hello_id = p.stdout.decode().split("Deleted: ")[-1].strip()
        assert p.stdout.startswith(b"Untagged: hello-world:latest\nDeleted: sha256:"), p.stderr
        assert private.docker("image", "inspect", hello_id).returncode == 1
        layers = list((private.data_root / "overlay" / "layers").iterdir())
        assert len(layers) == 1, layers        # busybox's alone: hello-world's layer is gone
        # forced, the name goes but the image stays for the container that uses it
        p = private.docker("rmi", "-f", "busybox")
        assert p.stdout == b"Untagged: busybox:latest\n", p.stderr
        assert private.docker("start", "-a", "user").returncode == 0
    finally:
        private.cleanup()
