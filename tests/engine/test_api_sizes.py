"""Sizes are measured, and shown only when asked: `?size=1` on GET /containers/json and
GET /containers/{id}/json (`docker ps -s`, `docker inspect -s`), and what prune frees
(SpaceReclaimed of POST /containers/prune and POST /images/prune)."""
from __future__ import annotations

import json
import urllib.parse

from tests.helpers.engine_daemon import BerthDaemon

MIB = 1 << 20


def _run_to_exit(daemon, cmd: list[str], **config) -> str:
    r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd, **config})
    assert r.status == 201, r
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    wait = daemon.api("POST", f"/containers/{cid}/wait").json()
    assert wait["StatusCode"] == 0, wait
    return cid


def _image_size(daemon, ref: str) -> int:
    return daemon.api("GET", f"/images/{ref}/json").json()["Size"]


def test_sizes_of_list_and_inspect_only_when_asked(daemon):
    cid = _run_to_exit(daemon, ["sh", "-c", "head -c 3145728 /dev/zero > /big"],
                       Labels={"sizetest": "1"})
    idle = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "Labels": {"sizetest": "1"}}).json()["Id"]
    f = urllib.parse.quote(json.dumps({"label": {"sizetest": True}}))
    plain = {c["Id"]: c for c in daemon.api("GET", f"/containers/json?all=1&filters={f}").json()}
    assert "SizeRw" not in plain[cid] and "SizeRootFs" not in plain[cid]
    sized = {c["Id"]: c for c in
             daemon.api("GET", f"/containers/json?all=1&size=1&filters={f}").json()}
    busybox = _image_size(daemon, "busybox")
    assert sized[cid]["SizeRw"] == 3 * MIB
    assert sized[cid]["SizeRootFs"] == 3 * MIB + busybox
    # dockerd's Summary leaves a zero out (omitempty)
    assert "SizeRw" not in sized[idle] and sized[idle]["SizeRootFs"] == busybox
    inspected = daemon.api("GET", f"/containers/{cid}/json").json()
    assert "SizeRw" not in inspected and "SizeRootFs" not in inspected
    inspected = daemon.api("GET", f"/containers/{cid}/json?size=1").json()
    assert (inspected["SizeRw"], inspected["SizeRootFs"]) == (3 * MIB, 3 * MIB + busybox)
    # inspect shows both when asked, zero included
    assert daemon.api("GET", f"/containers/{idle}/json?size=true").json()["SizeRw"] == 0
    p = daemon.docker("ps", "-a", "-s", "--no-trunc", "--filter", f"id={cid}",
                      "--format", "{{.Size}}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("3.15MB")


def test_container_prune_reports_the_writable_layers_it_freed(daemon):
    big = _run_to_exit(daemon, ["sh", "-c", "head -c 2097152 /dev/zero > /a"],
                       Labels={"prunetest": "1"})
    small = _run_to_exit(daemon, ["sh", "-c", "head -c 5000 /dev/zero > /b"],
                         Labels={"prunetest": "1"})
    kept = _run_to_exit(daemon, ["sh", "-c", "head -c 7000 /dev/zero > /c"],
                        Labels={"prunetest": "2"})
    # created an hour before now or earlier: none of these
    f = urllib.parse.quote(json.dumps({"label": {"prunetest=1": True}, "until": {"1h": True}}))
    r = daemon.api("POST", f"/containers/prune?filters={f}")
    assert r.status == 200 and r.json() == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    f = urllib.parse.quote(json.dumps({"label": {"prunetest=1": True}}))
    r = daemon.api("POST", f"/containers/prune?filters={f}")
    assert r.status == 200, r
    body = r.json()
    assert sorted(body["ContainersDeleted"]) == sorted([big, small])
    assert body["SpaceReclaimed"] == 2 * MIB + 5000
    p = daemon.docker("container", "prune", "-f", "--filter", "label=prunetest=2")
    assert p.returncode == 0, p.stderr
    assert kept.encode() in p.stdout and b"Total reclaimed space: 7kB" in p.stdout
    f = urllib.parse.quote(json.dumps({"until": {"yesterday": True}}))
    r = daemon.api("POST", f"/containers/prune?filters={f}")
    assert r.status == 400
    assert r.json()["message"] == 'failed to parse value as time or duration: "yesterday"'


def test_image_prune_removes_unused_dangling_images_and_reports_their_layers():
    """On a private berthd: hello-world is untagged while a container uses it (so it stays,
    dangling), then pruned once that container is gone."""
    daemon = BerthDaemon()
    try:
        daemon.start()
        size = _image_size(daemon, "hello-world")
        image_id = daemon.api("GET", "/images/hello-world/json").json()["Id"]
        r = daemon.api("POST", "/containers/create", {"Image": "hello-world"})
        cid = r.json()["Id"]
        assert daemon.api("DELETE", "/images/hello-world?force=1").status == 200
        dangling = urllib.parse.quote(json.dumps({"dangling": {"true": True}}))
        assert [i["Id"] for i in daemon.api(
            "GET", f"/images/json?filters={dangling}").json()] == [image_id]
        r = daemon.api("POST", "/images/prune")
        assert r.status == 200 and r.json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
        assert daemon.api("DELETE", f"/containers/{cid}").status == 204
        r = daemon.api("POST", "/images/prune")
        assert r.status == 200, r
        assert r.json() == {"ImagesDeleted": [{"Deleted": image_id}], "SpaceReclaimed": size}
        assert size > 0
        assert daemon.api("GET", f"/images/{image_id}/json").status == 404
        # a tagged image goes only with dangling=false (`docker image prune -a`)
        p = daemon.docker("image", "prune", "-f")
        assert p.returncode == 0 and b"busybox" not in p.stdout, p
        assert daemon.api("GET", "/images/busybox/json").status == 200
        busybox_id = daemon.api("GET", "/images/busybox/json").json()["Id"]
        p = daemon.docker("image", "prune", "-a", "-f")
        assert p.returncode == 0, p.stderr
        assert b"untagged: busybox:latest" in p.stdout
        assert f"deleted: {busybox_id}".encode() in p.stdout
        assert b"Total reclaimed space: 0B" not in p.stdout
        assert daemon.api("GET", "/images/json").json() == []
    finally:
        daemon.cleanup()
