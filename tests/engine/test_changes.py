"""docker diff's reading of a writable layer against image layers, on layers made by hand as
overlayfs leaves them (whiteouts are 0:0 character devices, opaque directories carry
trusted.overlay.opaque=y), and the sizes system df measures."""
from __future__ import annotations

import os
from pathlib import Path

from engine import changes, disk_usage


def whiteout(path: Path) -> None:
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def layers(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Two image layers and an upper: the image has /bin/{sh,vi}, /etc/{passwd,group},
    /var/{a,b}, /gone, /opt/keep (the top layer deletes /opt/old and replaces /opt/mode)."""
    base, top, upper = tmp_path / "base", tmp_path / "top", tmp_path / "upper"
    for d in ("bin", "etc", "var", "opt", "proc", "dev", "sys"):
        (base / d).mkdir(parents=True)
    for f in ("bin/sh", "bin/vi", "etc/passwd", "etc/group", "var/a", "var/b", "gone",
              "opt/old", "opt/keep"):
        (base / f).write_text(f)
    (top / "opt").mkdir(parents=True)
    whiteout(top / "opt" / "old")
    (top / "opt" / "keep").write_text("kept")
    upper.mkdir()
    return upper, [top, base]


def diff(upper: Path, image: list[Path]) -> list[tuple[str, str]]:
    names = {0: "C", 1: "A", 2: "D"}
    return [(names[c.kind], c.path) for c in changes.changes(upper, image)]


def test_add_change_delete(tmp_path):
    upper, image = layers(tmp_path)
    (upper / "bin").mkdir()
    whiteout(upper / "bin" / "vi")                          # rm /bin/vi
    (upper / "etc").mkdir()
    (upper / "etc" / "passwd").write_text("changed")        # modified
    (upper / "tmp" / "new" / "deep").mkdir(parents=True)     # a new tree
    (upper / "tmp" / "new" / "deep" / "f").write_text("f")
    whiteout(upper / "gone")
    assert diff(upper, image) == [
        ("C", "/bin"), ("D", "/bin/vi"), ("C", "/etc"), ("C", "/etc/passwd"),
        ("D", "/gone"), ("A", "/tmp"), ("A", "/tmp/new"), ("A", "/tmp/new/deep"),
        ("A", "/tmp/new/deep/f")]


def test_copied_up_but_unchanged_is_no_change(tmp_path):
    upper, image = layers(tmp_path)
    (upper / "etc").mkdir()
    base = image[1]
    os.link(base / "etc" / "group", upper / "etc" / "group")   # same inode: same stat
    assert diff(upper, image) == []


def test_a_mode_change_is_a_change(tmp_path):
    upper, image = layers(tmp_path)
    (upper / "etc").mkdir()
    (upper / "etc" / "group").write_text("etc/group")
    st = os.stat(image[1] / "etc" / "group")
    os.utime(upper / "etc" / "group", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert diff(upper, image) == []
    os.chmod(upper / "etc" / "group", 0o600)
    assert diff(upper, image) == [("C", "/etc"), ("C", "/etc/group")]


def test_an_opaque_directory_deletes_what_it_does_not_have_again(tmp_path):
    upper, image = layers(tmp_path)
    (upper / "var").mkdir()
    opaque(upper / "var")                   # rm -rf /var; mkdir /var; echo > /var/a
    (upper / "var" / "a").write_text("new a")
    assert diff(upper, image) == [("C", "/var"), ("D", "/var/b"), ("C", "/var/a")]


def test_the_image_layers_whiteouts_and_replacements_count(tmp_path):
    upper, image = layers(tmp_path)
    (upper / "opt").mkdir()
    (upper / "opt" / "old").write_text("again")     # deleted in the image's top layer: new
    whiteout(upper / "opt" / "keep")
    assert diff(upper, image) == [("C", "/opt"), ("D", "/opt/keep"), ("A", "/opt/old")]


def test_the_runtimes_mount_points_are_not_changes(tmp_path):
    upper, image = tmp_path / "upper", [tmp_path / "img"]
    (tmp_path / "img" / "bin").mkdir(parents=True)
    # an image without /etc, /proc, /dev, /sys: lowrt makes them, and the files berthd binds
    for d in ("etc", "proc", "dev", "sys"):
        (upper / d).mkdir(parents=True)
    for f in ("hostname", "hosts", "resolv.conf"):
        (upper / "etc" / f).write_text("")
    assert diff(upper, image) == []
    (upper / "etc" / "mine").write_text("x")
    assert diff(upper, image) == [("C", "/etc"), ("A", "/etc/mine")]


def test_a_symlink_in_the_upper_layer_is_not_followed(tmp_path):
    upper, image = layers(tmp_path)
    os.symlink("/", upper / "escape")
    assert diff(upper, image) == [("A", "/escape")]


def test_sizes_count_regular_files_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 5000)
    os.link(tmp_path / "d" / "f", tmp_path / "d" / "hard")
    (tmp_path / "g").write_bytes(b"y" * 300)
    os.symlink("/usr", tmp_path / "link")          # not followed, not counted
    whiteout(tmp_path / "wh")
    assert disk_usage.tree_size(tmp_path) == 5300
    assert disk_usage.tree_size(tmp_path / "missing") == 0
    sizes = disk_usage.LayerSizes()
    assert sizes.size(tmp_path) == 5300
    (tmp_path / "more").write_bytes(b"z" * 10)
    assert sizes.size(tmp_path) == 5300        # a layer is measured once
