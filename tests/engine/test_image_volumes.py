"""An image's VOLUMEs (its config's Volumes): dockerd makes an anonymous volume at each such
path, filled from the image's content there (ownership and modes kept), unless the user mounts
something at that very path; `--rm` and `rm -v` take those volumes away again. berthd does the
same; the same commands run under Debian's dockerd show what it does."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.helpers.engine_daemon import BerthDaemon
from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)

IMAGE = "berth-volimage:latest"


def _layer() -> bytes:
    """A layer with /data/seed (1234:5678, 0640) and /data/sub (0711), over busybox's."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, mode, data in (("data", 0o755, None), ("data/sub", 0o711, None),
                                 ("data/seed", 0o640, b"from the image\n")):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size, info.uid, info.gid = len(data), 1234, 5678
            t.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


@pytest.fixture(scope="module")
def volimage_berthd():
    """A private berthd whose store has, besides busybox, an image declaring VOLUME /data
    with content there (busybox's layer and one more, Volumes in its config)."""
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
        layer = _layer()
        digest = images.put_blob(layer)
        assert digest == "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.loads(json.dumps(busybox.record["ImageConfig"]))
        config["config"] = dict(config["config"], Volumes={"/data": {}})
        config["rootfs"]["diff_ids"].append(digest)
        config["history"] = config.get("history", []) + [{"created_by": "berth test layer"}]
        images.add_image(config, list(config["rootfs"]["diff_ids"]), [IMAGE])
    finally:
        store.close()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()


def _volumes(d: BerthDaemon) -> set[str]:
    return {v["Name"] for v in d.api("GET", "/volumes").json()["Volumes"]}


@pytest.fixture
def host_dir():
    path = tempfile.mkdtemp(prefix="bt-volimage-", dir="/tmp")
    Path(path, "on-host").write_text("")
    yield path
    shutil.rmtree(path)


STAT = "stat -c '%u:%g %a %n' /data /data/seed /data/sub; cat /data/seed; " \
       "grep -c ' /data ' /proc/self/mountinfo"


def test_the_image_volume_is_an_anonymous_volume_filled_from_the_image(volimage_berthd):
    d = volimage_berthd
    before = _volumes(d)
    p = d.docker("run", "--network", "none", "--rm", IMAGE, "sh", "-c", STAT)
    assert p.returncode == 0, p
    assert p.stdout.decode() == ("0:0 755 /data\n1234:5678 640 /data/seed\n0:0 711 /data/sub\n"
                                 "from the image\n1\n"), p.stdout
    assert _volumes(d) == before                        # --rm took it away


def test_create_shows_it_and_rm_v_removes_it(volimage_berthd):
    d = volimage_berthd
    before = _volumes(d)
    cid = d.docker("create", "--network", "none", IMAGE, "true").stdout.decode().strip()
    mounts = json.loads(d.docker("inspect", cid).stdout)[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume", mounts
    name = mounts[0]["Name"]
    assert len(name) == 64 and _volumes(d) - before == {name}
    assert mounts[0]["Destination"] == "/data" and mounts[0]["RW"] is True
    info = d.api("GET", f"/volumes/{name}").json()
    assert info["Labels"] == {"com.docker.volume.anonymous": ""}
    assert d.docker("start", "-a", cid).returncode == 0
    assert os.path.exists(os.path.join(info["Mountpoint"], "seed"))    # filled at start
    assert d.docker("rm", "-v", cid).returncode == 0
    assert _volumes(d) == before and not os.path.exists(info["Mountpoint"])


def test_a_new_named_volume_is_filled_too_unless_nocopy(volimage_berthd):
    d = volimage_berthd
    p = d.docker("run", "--network", "none", "--rm", "-v", "imgvol-copied:/data", IMAGE, "cat",
                 "/data/seed")
    assert p.stdout == b"from the image\n", p
    p = d.docker("run", "--network", "none", "--rm", "-v", "imgvol-nocopy:/data:nocopy", IMAGE,
                 "ls", "-A", "/data")
    assert p.returncode == 0 and p.stdout == b"", p
    for name in ("imgvol-copied", "imgvol-nocopy"):
        assert d.api("DELETE", f"/volumes/{name}").status == 204


@pytest.mark.parametrize("flags", [["-v", "{dir}:/data"], ["--tmpfs", "/data"],
                                   ["--mount", "type=bind,src={dir},dst=/data/"]])
def test_where_the_user_mounts_there_no_volume_is_made(volimage_berthd, host_dir, flags):
    flags = [f.replace("{dir}", host_dir) for f in flags]
    before = _volumes(volimage_berthd)
    p = volimage_berthd.docker("create", "--network", "none", *flags, IMAGE, "true")
    assert p.returncode == 0, p
    cid = p.stdout.decode().strip()
    assert _volumes(volimage_berthd) == before
    mounts = json.loads(volimage_berthd.docker("inspect", cid).stdout)[0]["Mounts"]
    assert all(m["Type"] == "bind" for m in mounts), mounts
    volimage_berthd.docker("rm", cid)
    assert os.listdir(host_dir) == ["on-host"]          # nothing copied onto the user's dir


def test_dockerd_makes_a_volume_only_where_nothing_is_mounted(dockerd, host_dir):  # noqa: F811
    """What berthd matches: dockerd makes an anonymous volume at the image's VOLUME path,
    and none where the user mounts something there."""
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
