"""docker image inspect's shape for images berth made from files: a commit's two layers in
GraphDriver (top as UpperDir, the base as LowerDir, no work dir invented), Size measured from
the unpacked layers, RootFS, Comment/Author, LastTagTime of an untagged image."""
from __future__ import annotations

import os


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


def test_inspect_of_a_committed_image(daemon):
    base = daemon.api("GET", "/images/busybox/json").json()
    cid = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}).json()
    cid = cid["Id"]
    try:
        r = daemon.api("POST", f"/commit?container={cid}&comment=c1&author=a1")
        assert r.status == 201, r
        image_id = r.json()["Id"]
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
    try:
        info = daemon.api("GET", f"/images/{image_id}/json").json()
        assert info["RepoTags"] == [] and info["Metadata"]["LastTagTime"] == \
            "0001-01-01T00:00:00Z"
        assert info["Comment"] == "c1" and info["Author"] == "a1"
        assert info["RootFS"] == {"Type": "layers",
                                  "Layers": [*base["RootFS"]["Layers"],
                                             info["RootFS"]["Layers"][-1]]}
        data = info["GraphDriver"]["Data"]
        assert set(data) == {"UpperDir", "LowerDir"}
        assert data["LowerDir"] == base["GraphDriver"]["Data"]["UpperDir"]
        assert info["Size"] == sum(_tree_size(d) for d in (data["UpperDir"], data["LowerDir"]))
        history = daemon.api("GET", f"/images/{image_id}/history").json()
        assert [h["Size"] for h in history] == [_tree_size(data["UpperDir"]),
                                                _tree_size(data["LowerDir"])]
        assert history[0]["CreatedBy"] == "true" and history[0]["Tags"] is None
    finally:
        daemon.api("DELETE", f"/images/{image_id}")
