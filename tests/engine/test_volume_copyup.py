"""copy-up (engine/volumes/copyup.py): what a new volume is filled with is the container's
filesystem at the mount point as overlayfs would show it, read from the layers: upper layers
win, whiteouts and opaque directories hide what is below, and ownership, modes, links, times
and devices come along. Real directories, real whiteouts (root)."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from engine.volumes import copyup


@pytest.fixture
def tree():
    path = Path(tempfile.mkdtemp(prefix="bt-copyup-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def _layer(root: Path, name: str, files: dict) -> Path:
    top = root / name
    for rel, what in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if what == "whiteout":
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        elif what == "opaque-dir":
            path.mkdir(exist_ok=True)
            os.setxattr(path, "trusted.overlay.opaque", b"y")
        elif what == "dir":
            path.mkdir(exist_ok=True)
        else:
            path.write_text(what)
    return top


def test_the_merged_view_is_copied(tree):
    lower = _layer(tree, "lower", {"data/a": "lower-a", "data/b": "lower-b",
                                   "data/sub/c": "lower-c", "data/gone/d": "d",
                                   "data/opq/old": "old"})
    upper = _layer(tree, "upper", {"data/a": "upper-a", "data/b": "whiteout",
                                   "data/gone": "whiteout", "data/opq": "opaque-dir",
                                   "data/opq/new": "new", "data/sub/e": "upper-e"})
    dest = tree / "vol"
    dest.mkdir()
    assert copyup.copy_up([upper, lower], "/data", dest)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == ["a", "opq", "opq/new", "sub", "sub/c", "sub/e"], found
    assert (dest / "a").read_text() == "upper-a"
    assert (dest / "sub" / "c").read_text() == "lower-c"
    assert not os.listxattr(dest / "opq")          # overlayfs's own attributes stay behind


def test_ownership_modes_links_and_times_come_along(tree):
    layer = _layer(tree, "l", {"data/f": "x", "data/d/g": "y"})
    os.chown(layer / "data", 1000, 1001)
    os.chmod(layer / "data", 0o750)
    os.chown(layer / "data/f", 123, 456)
    os.chmod(layer / "data/f", 0o4751)
    os.chmod(layer / "data/d", 0o711)
    os.utime(layer / "data/f", ns=(1, 1_000_000_000_000))
    os.symlink("/etc/passwd", layer / "data/link")
    os.lchown(layer / "data/link", 7, 8)
    os.mkfifo(layer / "data/fifo", 0o620)
    os.setxattr(layer / "data/f", "user.note", b"kept")
    dest = tree / "vol"
    dest.mkdir()
    copyup.copy_up([layer], "data", dest)
    st = os.stat(dest)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o750)
    st = os.stat(dest / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (123, 456, 0o4751)
    assert st.st_mtime_ns == 1_000_000_000_000
    assert os.getxattr(dest / "f", "user.note") == b"kept"
    assert stat.S_IMODE(os.stat(dest / "d").st_mode) == 0o711
    assert os.readlink(dest / "link") == "/etc/passwd"
    assert os.lstat(dest / "link").st_uid == 7
    assert stat.S_ISFIFO(os.stat(dest / "fifo").st_mode)


@pytest.mark.parametrize("upper_files", [{"data": "a file now"}, {"data": "whiteout"},
                                         {"": "opaque-dir"}])
def test_nothing_is_copied_where_the_image_has_no_directory(tree, upper_files):
    lower = _layer(tree, "lower", {"data/a": "a"})
    upper = _layer(tree, "upper", upper_files)
    if "" in upper_files:       # an opaque parent: the lower /data is hidden
        upper = _layer(tree, "upper2", {"x/y": "z"})
        os.setxattr(upper / "x", "trusted.overlay.opaque", b"y")
        lower = _layer(tree, "lower2", {"x/data/a": "a"})
        rel = "/x/data"
    else:
        rel = "/data"
    dest = tree / "vol"
    dest.mkdir()
    assert not copyup.copy_up([upper, lower], rel, dest)
    assert os.listdir(dest) == []


def test_a_link_on_the_way_is_not_followed_out_of_the_layer(tree):
    """VOLUME /lib/x where the image's /lib is a link to /etc: nothing of the host's /etc
    (where the link would lead from berthd) is copied."""
    layer = tree / "l"
    layer.mkdir()
    os.symlink("/etc", layer / "lib")
    dest = tree / "vol"
    dest.mkdir()
    assert not copyup.copy_up([layer], "/lib/ssl", dest)
    assert os.listdir(dest) == []
