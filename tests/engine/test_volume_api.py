"""The volume endpoints against berthd, raw: shapes as dockerd answers them, 404 and 409
messages, prune's API-version rule (from 1.42 only anonymous volumes unless all=true) and its
measured SpaceReclaimed, and the events a volume gives."""
from __future__ import annotations

import json
import urllib.parse

import pytest


@pytest.fixture
def api(daemon):
    before = {v["Name"] for v in daemon.api("GET", "/volumes").json()["Volumes"]}
    yield daemon
    for v in daemon.api("GET", "/volumes").json()["Volumes"]:
        if v["Name"] not in before:
            daemon.api("DELETE", f"/volumes/{v['Name']}?force=1")


def test_create_answers_201_with_the_volume_and_again_the_same_one(api):
    r = api.api("POST", "/volumes/create", {"Name": "api-v1", "Labels": {"x": "1"},
                                           "Driver": "local"})
    assert r.status == 201, r
    body = r.json()
    assert set(body) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                         "Scope"}
    assert body["Name"] == "api-v1" and body["Labels"] == {"x": "1"}
    again = api.api("POST", "/volumes/create", {"Name": "api-v1"})
    assert again.status == 201 and again.json() == body
    assert api.api("GET", "/volumes/api-v1").json() == body
    listed = api.api("GET", "/volumes").json()
    assert set(listed) == {"Volumes", "Warnings"} and body in listed["Volumes"]


def test_no_name_makes_a_64_hex_name(api):
    body = api.api("POST", "/volumes/create", {}).json()
    assert len(body["Name"]) == 64 and int(body["Name"], 16) >= 0


@pytest.mark.parametrize("body, status, text", [
    ({"Name": 5}, 400, "Name"),
    ({"Name": "v", "Labels": {"a": 1}}, 400, "Labels"),
    ({"Name": "vx", "Driver": "nfs-plugin"}, 404, 'plugin "nfs-plugin" not found'),
    ({"Name": "vx", "DriverOpts": {"type": "tmpfs"}}, 400, 'missing required option: "device"'),
])
def test_bad_bodies(api, body, status, text):
    r = api.api("POST", "/volumes/create", body)
    assert r.status == status and text in r.json()["message"], r
    assert api.api("GET", "/volumes/vx").status == 404


def test_unknown_volume_is_a_404_and_force_forgives_it(api):
    r = api.api("GET", "/volumes/nosuchvol")
    assert r.status == 404 and r.json()["message"] == "get nosuchvol: no such volume"
    assert api.api("DELETE", "/volumes/nosuchvol").status == 404
    assert api.api("DELETE", "/volumes/nosuchvol?force=1").status == 204


def _prune(api, version: str, filters: dict | None = None):
    query = "?filters=" + urllib.parse.quote(json.dumps(filters)) if filters else ""
    return api.api("POST", f"/v{version}/volumes/prune{query}").json()


def test_prune_from_api_1_42_takes_only_anonymous_volumes_unless_all(api):
    api.api("POST", "/volumes/create", {"Name": "prune-named"})
    anon = api.api("POST", "/v1.50/containers/create",
                   {"Image": "busybox", "Cmd": ["true"], "Volumes": {"/anon": {}},
                    "HostConfig": {"NetworkMode": "none"}})
    assert anon.status == 201, anon
    cid = anon.json()["Id"]
    mounts = api.api("GET", f"/containers/{cid}/json").json()["Mounts"]
    anon_name = [m["Name"] for m in mounts if m["Destination"] == "/anon"][0]
    assert _prune(api, "1.50")["VolumesDeleted"] is None       # in use
    api.api("DELETE", f"/containers/{cid}")
    with open(f"{api.data_root}/volumes/{anon_name}/_data/f", "wb") as f:
        f.write(b"y" * 5000)
    report = _prune(api, "1.50")
    assert report == {"VolumesDeleted": [anon_name], "SpaceReclaimed": 5000}, report
    assert api.api("GET", "/volumes/prune-named").status == 200
    assert _prune(api, "1.50", {"all": ["true"], "label": ["nosuch"]})["VolumesDeleted"] is None
    assert "prune-named" in _prune(api, "1.50", {"all": ["true"]})["VolumesDeleted"]


def test_prune_before_api_1_42_takes_every_unused_volume(api):
    api.api("POST", "/volumes/create", {"Name": "prune-old", "Labels": {"keep": "no"}})
    report = _prune(api, "1.41", {"label": ["keep=no"]})
    assert report["VolumesDeleted"] == ["prune-old"], report


def test_volume_events_as_dockerd_gives_them(api):
    import time
    since = time.time()
    p = api.docker("run", "--rm", "--network", "none", "-v", "/evt", "busybox", "true")
    assert p.returncode == 0, p
    until = time.time() + 1
    filters = urllib.parse.quote(json.dumps({"type": ["volume"]}))
    r = api.api("GET", f"/events?since={since:.3f}&until={until:.3f}&filters={filters}")
    events = [json.loads(line) for line in r.body.decode().splitlines() if line.strip()]
    actions = [e["Action"] for e in events]
    assert actions == ["create", "mount", "unmount", "destroy"], events
    assert len({e["Actor"]["ID"] for e in events}) == 1
    mount = events[1]["Actor"]["Attributes"]
    assert mount["destination"] == "/evt" and mount["read/write"] == "true"
    assert mount["driver"] == "local" and len(mount["container"]) == 64


def test_docker_py_volumes(api):
    client = api.docker_py()
    volume = client.volumes.create("py-vol", driver="local", labels={"by": "py"})
    assert volume.name == "py-vol" and volume.attrs["Labels"] == {"by": "py"}
    assert client.volumes.get("py-vol").attrs["Mountpoint"].endswith("/py-vol/_data")
    assert [v.name for v in client.volumes.list(filters={"label": "by=py"})] == ["py-vol"]
    volume.remove()
    assert "py-vol" not in [v.name for v in client.volumes.list()]


def test_labels_and_options_show_as_the_body_gave_them_null_or_empty(api):
    """As dockerd: absent is null, {} stays {} (the docker CLI 20.10 sends {}, 28 nothing),
    and so after a restart of the store's reading (the metadata keeps which)."""
    absent = api.api("POST", "/volumes/create", {"Name": "shape-absent"}).json()
    empty = api.api("POST", "/volumes/create",
                    {"Name": "shape-empty", "Labels": {}, "DriverOpts": {}}).json()
    assert (absent["Labels"], absent["Options"]) == (None, None)
    assert (empty["Labels"], empty["Options"]) == ({}, {})
    from engine.volumes.service import Volumes
    reread = Volumes(api.data_root).by_name
    assert reread["shape-absent"].view()["Options"] is None
    assert reread["shape-empty"].view()["Options"] == {}
