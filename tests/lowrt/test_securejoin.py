"""lowrt.securejoin against symlink traps, with openat2 and with the component walk.

Each trap would lead a plain path join to the host; resolved inside the root it must stay in
the root: the fd returned is checked to be the expected file below it (by device and inode).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lowrt import securejoin
from lowrt.linux import mount as mnt
from lowrt.linux import openat2


@pytest.fixture(params=["openat2", "walk"])
def mode(request, monkeypatch):
    if request.param == "openat2" and not openat2.available():
        pytest.skip("no openat2 on this kernel")
    monkeypatch.setattr(securejoin, "use_openat2", request.param == "openat2")
    return request.param


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "file").write_text("x")
    os.symlink("/a", r / "abs")                         # absolute: means root/a
    os.symlink("../../../../../etc", r / "a" / "up")    # '..' past the top: clamped at root
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("/nowhere/x", r / "dangle")
    os.symlink("/proc/self/root", r / "procroot")
    os.symlink("/", r / "slash")
    fd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    yield r, fd
    os.close(fd)


def _resolves_to(fd: int, expected: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(expected)
    finally:
        os.close(fd)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@pytest.mark.parametrize("path, expected", [
    ("/a/b", "a/b"),
    ("abs/b", "a/b"),
    ("/a/up", "etc"),
    ("../../../a/../a/./b", "a/b"),
    ("slash/slash/a/b", "a/b"),
    ("/", "."),
    ("abs/../../../..", "."),
])
def test_symlinks_and_dotdot_stay_in_root(mode, root, path, expected):
    r, fd = root
    assert _resolves_to(securejoin.open_in_root(fd, path), r / expected)


def test_symlink_loop_is_eloop(mode, root):
    _, fd = root
    with pytest.raises(OSError) as e:
        securejoin.open_in_root(fd, "/loop1/x", make="dir")
    assert e.value.errno == errno.ELOOP


def test_dangling_symlink_is_created_inside(mode, root):
    r, fd = root
    with pytest.raises(FileNotFoundError):
        securejoin.open_in_root(fd, "/dangle")
    assert _resolves_to(securejoin.open_in_root(fd, "/dangle", make="file"), r / "nowhere" / "x")
    assert (r / "nowhere" / "x").is_file()
    assert not Path("/nowhere").exists()


def test_missing_directories_are_made_below_the_root(mode, root):
    r, fd = root
    assert _resolves_to(securejoin.open_in_root(fd, "/abs/new/deeper", make="dir"),
                        r / "a" / "new" / "deeper")


def test_file_as_a_directory_is_enotdir(mode, root):
    _, fd = root
    with pytest.raises(NotADirectoryError):
        securejoin.open_in_root(fd, "/file/x", make="dir")


def test_symlink_to_proc_self_root_without_proc_stays_inside(mode, root):
    r, fd = root
    with pytest.raises(FileNotFoundError):
        securejoin.open_in_root(fd, "/procroot/etc")
    new = securejoin.open_in_root(fd, "/procroot/etc", make="dir")
    try:
        assert securejoin.path_of(new) == str(r / "proc" / "self" / "root" / "etc")
    finally:
        os.close(new)


def test_symlink_to_proc_self_root_with_proc_never_reaches_host(mode, root):
    """A procfs inside the root: /proc/self/root is a magic link to the host's "/". openat2
    refuses it (RESOLVE_NO_MAGICLINKS); the walk reads its text ("/") and stays in the root."""
    r, fd = root
    (r / "proc").mkdir()
    mnt.mount("/proc", str(r / "proc"), "bind", mnt.MS_BIND)
    try:
        try:
            new = securejoin.open_in_root(fd, "/procroot/etc")
        except OSError as e:
            assert mode == "openat2" and e.errno == errno.ELOOP
        else:
            assert mode == "walk"
            assert _resolves_to(new, r / "etc")
    finally:
        mnt.umount(str(r / "proc"), mnt.MNT_DETACH)


def test_no_follow_opens_the_link_itself(root):
    r, fd = root
    new = securejoin.open_in_root(fd, "/abs", follow=False)
    try:
        assert os.readlink("", dir_fd=new) == "/a"
    finally:
        os.close(new)


def test_walk_leaks_no_fds(root):
    _, fd = root
    before = set(os.listdir("/proc/self/fd"))
    for path in ("/abs/b", "/a/up", "/slash/slash/a"):
        os.close(securejoin._walk(fd, path, "", True))
    for path in ("/loop1", "/file/x"):
        with pytest.raises(OSError):
            securejoin._walk(fd, path, "", True)
    assert set(os.listdir("/proc/self/fd")) == before
