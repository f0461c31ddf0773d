"""A container's volume mount points from its create request (engine/volumes/mountpoints.py):
-v NAME:/path and -v /path, --mount type=volume, Config.Volumes (the image's VOLUMEs), and
--volumes-from, each where dockerd puts it; a user's bind or tmpfs at a path wins over a
VOLUME there; bad specs refused before any volume is made."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from engine.errors import InvalidParameter, NotFound
from engine.volumes import Volumes, mountpoints


@pytest.fixture
def vols():
    root = Path(tempfile.mkdtemp(prefix="bt-volmp-", dir="/tmp"))
    yield Volumes(root)
    shutil.rmtree(root)


def _none(ref):
    raise NotFound(f"No such container: {ref}")


def _by_dest(mps):
    return {mp["Destination"]: mp for mp in mps}


def test_named_anonymous_and_image_volumes(vols):
    config = {"Volumes": {"/img": {}, "/covered/": {}, "/tmpfs": {}, "/anon": {}}}
    hc = {"Binds": ["named:/data:ro,nocopy", "/tmp:/covered"], "Tmpfs": {"/tmpfs": ""},
          "Mounts": [{"Type": "volume", "Source": "", "Target": "/m", "ReadOnly": True,
                      "VolumeOptions": {"Labels": {"l": "1"}, "NoCopy": True}}]}
    mps, made = mountpoints.build(config, hc, vols, _none)
    got = _by_dest(mps)
    assert set(got) == {"/data", "/img", "/anon", "/m"}
    data = got["/data"]
    assert (data["Name"], data["RW"], data["Mode"], data["CopyData"], data["Anonymous"]) == \
        ("named", False, "ro,nocopy", False, False)
    assert data["Source"] == str(vols.get("named").path)
    assert got["/img"]["Anonymous"] and got["/img"]["CopyData"] and len(got["/img"]["Name"]) == 64
    assert vols.get(got["/m"]["Name"]).labels["l"] == "1" and not got["/m"]["RW"]
    assert sorted(made) == sorted(mp["Name"] for mp in mps)
    assert mountpoints.view(data) == {"Type": "volume", "Name": "named", "Source": data["Source"],
                                      "Destination": "/data", "Driver": "local",
                                      "Mode": "ro,nocopy", "RW": False, "Propagation": ""}


def test_an_existing_named_volume_is_used_not_made(vols):
    vols.create("had")
    mps, made = mountpoints.build({}, {"Binds": ["had:/x"]}, vols, _none)
    assert made == [] and mps[0]["Name"] == "had"


@pytest.mark.parametrize("hc, words", [
    ({"Binds": ["bad@name:/x"]}, "includes invalid characters"),
    ({"Binds": ["good:/x:bogus"]}, "invalid mode: bogus"),
    ({"Binds": ["good:/x:rshared"]}, "propagation"),
    ({"Binds": ["good:x"]}, "mount path must be absolute"),
    ({"Binds": ["good:/"]}, "destination can't be '/'"),
    ({"Binds": ["good:/x", "other:/x"]}, "Duplicate mount point: /x"),
    ({"Mounts": [{"Type": "volume", "Target": "/x",
                  "VolumeOptions": {"DriverConfig": {"Name": "rexray"}}}]}, "volume-driver"),
    ({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/x",
                  "VolumeOptions": {"Subpath": "a"}}]}, "volume-subpath"),
    ({"Mounts": [{"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "shared"}}]},
     "bind options"),
    ({"Mounts": [{"Type": "volume", "Source": "ok1", "Target": "/x",
                  "VolumeOptions": {"DriverConfig": {"Options": {"size": "1m"}}}}]},
     "quota size requested but no quota support"),
    ({"VolumesFrom": ["src:nocopy"]}, "invalid mode: nocopy"),
])
def test_bad_specs_are_refused_and_make_nothing(vols, hc, words):
    hc = dict(hc, Binds=["first-ok:/first"] + hc.get("Binds", []))
    with pytest.raises(InvalidParameter) as e:
        mountpoints.build({}, hc, vols, _none)
    assert words in e.value.message, e.value.message
    assert vols.all() == []


def test_volumes_from_brings_volumes_and_binds_with_its_mode(vols):
    theirs, _ = mountpoints.build({"Volumes": {"/anon": {}}}, {"Binds": ["shared:/s"]}, vols,
                                  _none)
    their_hc = {"Binds": ["/tmp:/hostdir:ro", "shared:/s"]}

    def source(ref):
        assert ref == "src"
        return theirs, their_hc
    mps, made = mountpoints.build({}, {"VolumesFrom": ["src:ro"], "Binds": ["mine:/s"]}, vols,
                                  source)
    got = _by_dest(mps)
    assert made == ["mine"] and got["/s"]["Name"] == "mine"     # the user's own wins
    assert got["/anon"]["Name"] == _by_dest(theirs)["/anon"]["Name"] and not got["/anon"]["RW"]
    assert got["/hostdir"]["Type"] == "bind" and got["/hostdir"]["Source"] == "/tmp"
    assert "Name" not in mountpoints.view(got["/hostdir"])
    with pytest.raises(NotFound):
        mountpoints.build({}, {"VolumesFrom": ["nosuch"]}, vols, _none)
