"""Hostile and broken layers: every one is refused with an error naming the entry, and the image
store (blobs, unpacked layers, the image and tag index) is as it was before. Also the whiteout
conversion and the compressions that are accepted. These run the real unpacking (as root, on the
real filesystem) against a private ImageStore in a temporary data root."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from engine.images import layers
from engine.images.store import STAGING_PREFIX, ImageStore
from engine.store import Store


@pytest.fixture
def images(tmp_path):
    store = Store(tmp_path / "berth.db")
    yield ImageStore(tmp_path, store)
    store.close()


def _info(name: str, kind=tarfile.REGTYPE, data: bytes = b"", link: str = "", **kw):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, kw.pop("mode", 0o644)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in kw.items():
        setattr(info, key, value)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _tar(entries, pax: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, data)
    return buf.getvalue()


def _snapshot(images: ImageStore, root: Path) -> tuple:
    def tree(p: Path):
        return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []
    return (tree(images.blobs), tree(images.layers_dir), sorted(images.images),
            sorted(images.tags), images.store.load_images(), images.store.load_tags(),
            tree(root / "tmp"))


def _load(images: ImageStore, tmp_path: Path, *blobs: bytes, diff_ids=None):
    files = []
    (tmp_path / "tmp").mkdir(exist_ok=True)
    for i, blob in enumerate(blobs):
        f = tmp_path / "tmp" / f"layer{i}"
        f.write_bytes(blob)
        files.append(f)
    if diff_ids is None:
        diff_ids = [layers.diff_id_of(f) for f in files]
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    try:
        return images.import_image(config, files, ["hostile:latest"])
    finally:
        for f in files:
            f.unlink(missing_ok=True)


def _refused(images, tmp_path, *blobs, match: str, diff_ids=None):
    before = _snapshot(images, tmp_path)
    with pytest.raises(layers.LayerError, match=match):
        _load(images, tmp_path, *blobs, diff_ids=diff_ids)
    assert _snapshot(images, tmp_path) == before
    assert not any(p.name.startswith(STAGING_PREFIX) for p in images.layers_dir.iterdir())


GOOD = _tar([_info("etc", tarfile.DIRTYPE, mode=0o755), _info("etc/hostname", data=b"ok\n")])


def test_a_good_layer_is_stored(images, tmp_path):
    image = _load(images, tmp_path, GOOD)
    lower = Path(images.lower_dirs(image)[0])
    assert (lower / "etc/hostname").read_bytes() == b"ok\n"
    assert image.size == 3


def test_dotdot_entry(images, tmp_path):
    _refused(images, tmp_path, _tar([_info("etc/../../evil", data=b"x")]),
             match=r"layer entry 'etc/\.\./\.\./evil' has a '\.\.' component")


def test_absolute_entry(images, tmp_path):
    _refused(images, tmp_path, _tar([_info("/etc/evil", data=b"x")]),
             match=r"layer entry '/etc/evil' has an absolute path")


def test_entry_through_a_symlink(images, tmp_path):
    blob = _tar([_info("etc", tarfile.SYMTYPE, link="/etc"), _info("etc/evil", data=b"x")])
    _refused(images, tmp_path, blob, match=r"layer entry 'etc/evil' goes through the symlink etc")


def test_entry_under_a_file(images, tmp_path):
    blob = _tar([_info("etc", data=b"file"), _info("etc/evil", data=b"x")])
    _refused(images, tmp_path, blob, match=r"layer entry 'etc/evil': etc is not a directory")


def test_symlink_that_climbs_out(images, tmp_path):
    blob = _tar([_info("a", tarfile.DIRTYPE, mode=0o755),
                 _info("a/esc", tarfile.SYMTYPE, link="../../etc/shadow")])
    _refused(images, tmp_path, blob,
             match=r"layer entry 'a/esc' is a symlink to '\.\./\.\./etc/shadow', outside")


def test_absolute_and_inner_symlinks_are_kept(images, tmp_path):
    blob = _tar([_info("a", tarfile.DIRTYPE, mode=0o755),
                 _info("a/abs", tarfile.SYMTYPE, link="/etc/passwd"),
                 _info("a/up", tarfile.SYMTYPE, link="../a/abs")])
    lower = Path(images.lower_dirs(_load(images, tmp_path, blob))[0])
    assert os.readlink(lower / "a/abs") == "/etc/passwd"
    assert os.readlink(lower / "a/up") == "../a/abs"


def test_hardlink_outside(images, tmp_path):
    _refused(images, tmp_path, _tar([_info("pw", tarfile.LNKTYPE, link="../../etc/passwd")]),
             match=r"layer entry 'pw' is a hard link to '\.\./\.\./etc/passwd', outside")


def test_hardlink_absolute(images, tmp_path):
    _refused(images, tmp_path, _tar([_info("pw", tarfile.LNKTYPE, link="/etc/passwd")]),
             match=r"layer entry 'pw' is a hard link to '/etc/passwd', outside")


def test_hardlink_through_a_symlinked_parent(images, tmp_path):
    blob = _tar([_info("host", tarfile.SYMTYPE, link="/etc"),
                 _info("pw", tarfile.LNKTYPE, link="host/passwd")])
    _refused(images, tmp_path, blob, match=r"layer entry 'pw' goes through the symlink host")


def test_hardlink_to_nothing_in_the_layer(images, tmp_path):
    _refused(images, tmp_path, _tar([_info("pw", tarfile.LNKTYPE, link="etc/passwd")]),
             match=r"layer entry 'pw': etc is not in the layer")


def test_hardlink_inside_is_a_link(images, tmp_path):
    blob = _tar([_info("f", data=b"data"), _info("g", tarfile.LNKTYPE, link="./f")])
    lower = Path(images.lower_dirs(_load(images, tmp_path, blob))[0])
    assert os.stat(lower / "f").st_ino == os.stat(lower / "g").st_ino


def test_device_node_where_not_allowed(images, tmp_path):
    images.allow_devices = False
    blob = _tar([_info("dev", tarfile.DIRTYPE, mode=0o755),
                 _info("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)])
    _refused(images, tmp_path, blob, match=r"layer entry 'dev/sda' is a device node, and this "
                                           r"berthd may create none")


def test_device_node_as_root_in_the_host_namespace(images, tmp_path):
    assert images.allow_devices == layers.devices_allowed()
    if not images.allow_devices:
        pytest.skip("not root in the host's user namespace")
    blob = _tar([_info("null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)])
    st = os.lstat(Path(images.lower_dirs(_load(images, tmp_path, blob))[0]) / "null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_overlay_xattr_is_refused(images, tmp_path):
    info, data = _info("d", tarfile.DIRTYPE, mode=0o755)
    info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    _refused(images, tmp_path, _tar([(info, data)]),
             match=r"layer entry 'd' sets the overlayfs xattr trusted.overlay.redirect")


def test_diff_id_mismatch(images, tmp_path):
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    _refused(images, tmp_path, GOOD, diff_ids=[wrong],
             match=r"layer diff ID mismatch: the tar is sha256:[0-9a-f]{64}, the image says "
                   + wrong)


def test_truncated_gzip_layer(images, tmp_path):
    blob = gzip.compress(_tar([_info("big", data=os.urandom(200_000))]))[:50_000]
    digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
    _refused(images, tmp_path, blob, diff_ids=[digest],
             match=r"layer sha256:[0-9a-f]+ is not a valid tar stream|cannot be decompressed")


def test_not_a_tar(images, tmp_path):
    digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
    _refused(images, tmp_path, b"\x00garbage" * 100, diff_ids=[digest],
             match=r"is not a valid tar stream")


def test_later_layer_refused_removes_the_earlier_ones(images, tmp_path):
    _refused(images, tmp_path, GOOD, _tar([_info("/abs", data=b"x")]),
             match=r"layer entry '/abs' has an absolute path")


def test_gzip_layer_verified_against_the_plain_tar(images, tmp_path):
    image = _load(images, tmp_path, gzip.compress(GOOD))
    assert image.diff_ids == ["sha256:" + hashlib.sha256(GOOD).hexdigest()]
    assert (Path(images.lower_dirs(image)[0]) / "etc/hostname").read_bytes() == b"ok\n"


def test_zstd_layer(images, tmp_path):
    zstandard = pytest.importorskip("zstandard")
    image = _load(images, tmp_path, zstandard.ZstdCompressor().compress(GOOD))
    assert (Path(images.lower_dirs(image)[0]) / "etc/hostname").read_bytes() == b"ok\n"


def test_zstd_without_the_module_is_refused(images, tmp_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard")
    blob = zstandard.ZstdCompressor().compress(GOOD)
    monkeypatch.setitem(sys.modules, "zstandard", None)      # as if not installed
    digest = "sha256:" + hashlib.sha256(GOOD).hexdigest()
    _refused(images, tmp_path, blob, diff_ids=[digest],
             match=r"is zstd-compressed and this berthd cannot decompress zstd")


def test_whiteouts_become_overlay_whiteouts(images, tmp_path):
    blob = _tar([_info("etc", tarfile.DIRTYPE, mode=0o755), _info("etc/.wh.gone", data=b""),
                 _info("var", tarfile.DIRTYPE, mode=0o755), _info("var/.wh..wh..opq", data=b""),
                 _info(".wh..wh.plnk", tarfile.DIRTYPE, mode=0o700)])
    lower = Path(images.lower_dirs(_load(images, tmp_path, blob))[0])
    st = os.lstat(lower / "etc/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(lower / "var", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(lower)) == ["etc", "var"]
    assert os.listdir(lower / "var") == []


def test_a_killed_unpack_leaves_nothing(images, tmp_path):
    """A berthd killed mid-unpack leaves only its staging dir, and mid-load/import/commit its
    work dir, which the next start removes; the layer's own dir appears only by the final
    rename."""
    left = images.layers_dir / f"{STAGING_PREFIX}{'a' * 64}.123.456"
    (left / "diff/etc").mkdir(parents=True)
    work = [tmp_path / "tmp/load-x1/layer0", tmp_path / "tmp/commit-x2/layer.tar",
            tmp_path / "tmp/import-x3"]
    for path in work:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    kept = tmp_path / "tmp/other"
    kept.write_bytes(b"not ours")
    ImageStore(tmp_path, images.store)
    assert not left.exists()
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["other"]


def test_hardlink_to_itself_keeps_the_file(images, tmp_path):
    blob = _tar([_info("f", data=b"data"), _info("f", tarfile.LNKTYPE, link="f")])
    lower = Path(images.lower_dirs(_load(images, tmp_path, blob))[0])
    assert (lower / "f").read_bytes() == b"data"
