"""An image's VOLUMEs (its config's Volumes): dockerd makes an anonymous volume at each such
path unless the user mounts something at that very path. berth has no volumes yet, so create
refuses a path nothing of the user's covers, naming the image and the paths, and creates the
container where a bind or tmpfs covers each: never a container inspect would show with a
volume it does not have. The same commands run under Debian's dockerd show what it does."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from engine import host_config
from engine.errors import InvalidParameter
from tests.helpers.engine_daemon import BerthDaemon
from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)

IMAGE = "berth-volimage:latest"


def _merged(volumes: dict) -> dict:
    config = {"Image": IMAGE, "Cmd": ["true"]}
    host_config.merge_image_config(config, {"Cmd": ["sh"], "Volumes": volumes})
    return config


def test_an_uncovered_image_volume_is_refused_naming_the_image_and_paths():
    with pytest.raises(InvalidParameter) as e:
        host_config.check_merged(_merged({"/data": {}, "/var/log/": {}}), {})
    assert str(e.value).startswith(
        f"berth cannot create the anonymous volumes image {IMAGE} declares (Config.Volumes): "
        "/data, /var/log: berth has no volumes yet; mount something there with "
        "-v /host/dir:/data"), str(e.value)


@pytest.mark.parametrize("hc, left", [
    ({"Binds": ["/tmp:/data:ro"]}, "/var/log"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/var/log/"}]}, "/data"),
    ({"Tmpfs": {"/data/sub": ""}}, "/data, /var/log"),       # only the very path covers it
    ({"Binds": ["/tmp:/"]}, "/data, /var/log"),
])
def test_only_what_a_mount_covers_is_left_out(hc, left):
    with pytest.raises(InvalidParameter) as e:
        host_config.check_merged(_merged({"/data": {}, "/var/log": {}}), hc)
    assert f"(Config.Volumes): {left}: " in str(e.value), str(e.value)


def test_volumes_each_covered_by_a_mount_need_none():
    hc = {"Binds": ["/tmp:/data"], "Mounts": [{"Type": "bind", "Source": "/tmp",
                                                 "Target": "/var/log"}], "Tmpfs": {"/run": ""}}
    host_config.check_merged(_merged({"/data": {}, "/var/log": {}, "/run/": {}}), hc)
    host_config.check_merged(_merged({}), {})


@pytest.fixture(scope="module")
def volimage_berthd():
    """A private berthd whose store has, besides busybox, an image declaring VOLUME /data
    (busybox's layer with Volumes in its config): berth has no import or build to make one."""
    from engine.images import builtin
    from engine.images.store import ImageStore
    from engine.store import Store
    daemon = BerthDaemon()
    daemon.data_root.mkdir(parents=True)
    store = Store(daemon.data_root / "engine.db")
    try:
        images = ImageStore(daemon.data_root, store)
        builtin.seed_busybox(images, daemon.data_root / "tmp")
        busybox = images.resolve(builtin.BUSYBOX_REF)
        config = dict(busybox.record["ImageConfig"])
        config["config"] = dict(config["config"], Volumes={"/data": {}})
        images.add_image(config, list(config["rootfs"]["diff_ids"]), [IMAGE])
    finally:
        store.close()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()


@pytest.fixture
def host_dir():
    path = tempfile.mkdtemp(prefix="bt-volimage-", dir="/tmp")
    Path(path, "on-host").write_text("")
    yield path
    shutil.rmtree(path)


def test_berthd_refuses_the_image_without_a_mount_there(volimage_berthd):
    before = volimage_berthd.container_ids()
    p = volimage_berthd.docker("run", "--rm", IMAGE, "true")
    assert p.returncode == 125 and (
        f"berth cannot create the anonymous volumes image {IMAGE} declares (Config.Volumes): "
        "/data" in p.stderr.decode()), p
    assert volimage_berthd.container_ids() == before


@pytest.mark.parametrize("flags", [["-v", "{dir}:/data"], ["--tmpfs", "/data"],
                                   ["--mount", "type=bind,src={dir},dst=/data/"]])
def test_berthd_runs_the_image_where_the_user_mounts_there(volimage_berthd, host_dir, flags):
    flags = [f.replace("{dir}", host_dir) for f in flags]
    p = volimage_berthd.docker("run", "--rm", *flags, IMAGE, "sh", "-c",
                               "grep -c ' /data ' /proc/self/mountinfo")
    assert p.returncode == 0 and p.stdout == b"1\n", p


def test_dockerd_makes_a_volume_only_where_nothing_is_mounted(dockerd, host_dir):  # noqa: F811
    """What berth's refusal stands for: dockerd makes an anonymous volume at the image's
    VOLUME path, and none where the user mounts something there."""
    peer = dockerd.daemon
    cid = peer.docker("create", "--network", "none", "busybox", "true").stdout.decode().strip()
    try:
        peer.docker("commit", "--change", "VOLUME /data", cid, IMAGE)
    finally:
        peer.docker("rm", cid, check=False)
    try:
        before = set(peer.docker("volume", "ls", "-q").stdout.split())
        peer.docker("run", "--rm", "--network", "none", "-v", f"{host_dir}:/data", IMAGE,
                    "ls", "/data")
        assert set(peer.docker("volume", "ls", "-q").stdout.split()) == before
        cid = peer.docker("create", "--network", "none", IMAGE, "true").stdout.decode().strip()
        try:
            made = peer.docker("inspect", "--format", "{{range .Mounts}}{{.Type}} "
                               "{{.Destination}}{{end}}", cid).stdout.decode().strip()
            assert made == "volume /data", made
        finally:
            peer.docker("rm", "-v", cid, check=False)
    finally:
        peer.docker("rmi", IMAGE, check=False)
    assert os.path.isdir(host_dir)
