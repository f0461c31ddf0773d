"""engine/volumes: the local driver's volumes on disk (names, labels, options, metadata kept
for the next berthd), their users, and the --opt mounts made for a volume's first running user
and taken down after its last. Real directories and real mounts (root), no berthd."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.volumes import Volumes, mounts as sys_mounts, names


@pytest.fixture
def root():
    path = Path(tempfile.mkdtemp(prefix="bt-volsvc-", dir="/tmp"))
    yield path
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if line.split()[4].startswith(str(path))]
    for point in sorted(left, key=len, reverse=True):
        sys_mounts.unmount(point)
    shutil.rmtree(path)


def test_a_named_volume_is_a_directory_under_the_data_root_and_survives_a_restart(root):
    volume, made = Volumes(root).create("data1", "", None, {"a": "b"})
    assert made and volume.path == root / "volumes" / "data1" / "_data" and volume.path.is_dir()
    view = volume.view()
    assert view["Name"] == "data1" and view["Driver"] == "local" and view["Scope"] == "local"
    assert view["Labels"] == {"a": "b"} and view["Options"] is None
    assert view["Mountpoint"] == str(volume.path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", view["CreatedAt"])
    again = Volumes(root)
    assert again.get("data1").view() == view
    same, made = again.create("data1", "local", {"type": "tmpfs"}, {})
    assert not made and same.labels == {"a": "b"}       # dockerd: the existing one, as it is


@pytest.mark.parametrize("name", ["a", "-x", "a/b", "a b", "x@y", ".."])
def test_a_name_the_local_driver_refuses(root, name):
    with pytest.raises(InvalidParameter) as e:
        Volumes(root).create(name)
    assert f'"{name}" includes invalid characters for a local volume name' in e.value.message
    assert os.listdir(root / "volumes") == []


def test_an_anonymous_volume_has_a_64_hex_name_and_dockerds_label(root):
    volume, _ = Volumes(root).create(anonymous=True)
    assert re.fullmatch(r"[0-9a-f]{64}", volume.name)
    assert volume.labels == {names.ANONYMOUS_LABEL: ""} and volume.anonymous


@pytest.mark.parametrize("opts, message", [
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"o": "size=1m", "device": "tmpfs"}, 'missing required option: "type"'),
    ({"type": "tmpfs", "device": "tmpfs", "size": "10m"},
     "quota size requested but no quota support"),
    ({"type": "none", "device": "/tmp"}, "type=none without o=bind"),
    ({"type": "nfs", "device": ":/export", "o": "addr=nfs.example"},
     "naming the host nfs.example"),
])
def test_options_berth_cannot_apply_are_refused_leaving_nothing(root, opts, message):
    with pytest.raises(InvalidParameter) as e:
        Volumes(root).create("opty", "", opts)
    assert message in e.value.message and e.value.message.startswith("create opty: ")
    assert os.listdir(root / "volumes") == []


def test_another_driver_is_not_found(root):
    with pytest.raises(NotFound) as e:
        Volumes(root).create("v1", "flocker")
    assert 'plugin "flocker" not found' in e.value.message


def test_a_volume_in_use_is_not_removed_and_names_its_users(root):
    vols = Volumes(root)
    vols.create("busy")
    vols.use("busy", "c1" * 32)
    with pytest.raises(Conflict) as e:
        vols.remove("busy", force=True)
    assert e.value.message == f"remove busy: volume is in use - [{'c1' * 32}]"
    assert vols.get("busy").path.is_dir()
    vols.release("c1" * 32)
    vols.remove("busy")
    assert not (root / "volumes" / "busy").exists()
    with pytest.raises(NotFound) as e:
        vols.remove("busy")
    assert e.value.message == "get busy: no such volume"
    vols.remove("busy", force=True)


def test_a_tmpfs_volume_is_mounted_for_its_first_user_and_unmounted_after_its_last(root):
    vols = Volumes(root)
    volume, _ = vols.create("tmp1", "", {"type": "tmpfs", "device": "tmpfs",
                                         "o": "size=1m,uid=1000"})
    path = str(volume.path)
    assert not sys_mounts.is_mount_point(path)
    assert vols.mount("tmp1", "a") == path and sys_mounts.is_mount_point(path)
    assert os.stat(path).st_uid == 1000
    vols.mount("tmp1", "b")
    vols.unmount_all("a")
    assert sys_mounts.is_mount_point(path)
    vols.unmount_all("b")
    assert not sys_mounts.is_mount_point(path)


def test_a_bind_volume_shows_its_device_and_removal_never_reaches_into_it(root):
    device = root / "device"
    device.mkdir()
    (device / "keep").write_text("x")
    vols = Volumes(root)
    volume, _ = vols.create("bound", "", {"type": "none", "o": "bind,ro", "device": str(device)})
    vols.mount("bound", "a")
    assert (volume.path / "keep").read_text() == "x"
    with pytest.raises(OSError):
        (volume.path / "new").write_text("")          # o=ro applied to the bind
    with pytest.raises(Conflict):
        vols.remove("bound")
    vols.unmount_all("a")
    vols.remove("bound")
    assert (device / "keep").read_text() == "x"


def test_a_mount_left_by_a_crash_is_found_again(root):
    vols = Volumes(root)
    volume, _ = vols.create("tmp2", "", {"type": "tmpfs", "device": "tmpfs"})
    vols.mount("tmp2", "a")
    (volume.path / "f").write_text("kept")
    again = Volumes(root)               # a new berthd: the running user is handed back
    again.held("tmp2", "a")
    assert again.mount("tmp2", "b") and (volume.path / "f").read_text() == "kept"
    again.unmount_all("a")
    again.unmount_all("b")
    assert not sys_mounts.is_mount_point(str(volume.path))
