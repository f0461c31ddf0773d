"""The pieces of `docker cp` that need no container: paths as dockerd cleans them, Go's FileMode,
the path-stat header, and tars written and extracted as dockerd's archive package does (here in
a plain directory; in berthd the child runs them chrooted into the container)."""
from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile

import pytest

from engine import archive, fs_tar


@pytest.mark.parametrize("given, cleaned, base", [
    ("/", "/", "/"),
    (".", "/.", "."),
    ("/.", "/.", "."),
    ("./", "/./", "."),
    ("bar/quux", "/bar/quux", "quux"),
    ("bar/quux/", "/bar/quux/", "quux"),
    ("bar/quux/.", "/bar/quux/.", "."),
    ("/bar/root/", "/bar/root/", "root"),
    ("../../etc/passwd", "/etc/passwd", "passwd"),      # `..` stops at the root
    ("/a/../../../b", "/b", "b"),
    ("//a//b", "/a/b", "b"),
])
def test_paths_are_cleaned_as_dockerd_cleans_them(given, cleaned, base):
    path = fs_tar.preserve_trailing(fs_tar.clean_abs(given), given)
    assert (path, fs_tar.go_base(path)) == (cleaned, base)


@pytest.mark.parametrize("name, expected", [
    ("a/b", "a/b"), ("/a/b", "a/b"), ("./a/./b/", "a/b"), (".", ""), ("a/../b", "b"),
])
def test_entry_names_stay_below_the_destination(name, expected):
    assert fs_tar.entry_name(name) == expected


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/../x"])
def test_entry_names_that_leave_are_refused(name):
    with pytest.raises(fs_tar.ExtractError, match="invalid entry name"):
        fs_tar.entry_name(name)


def test_go_file_mode():
    assert archive.go_file_mode(0o040755) == (1 << 31) | 0o755
    assert archive.go_file_mode(0o120777) == (1 << 27) | 0o777
    assert archive.go_file_mode(0o104755) == (1 << 23) | 0o755      # setuid
    assert archive.go_file_mode(0o042775) == (1 << 31) | (1 << 22) | 0o775
    assert archive.go_file_mode(0o041777) == (1 << 31) | (1 << 20) | 0o777   # sticky
    assert archive.go_file_mode(0o020620) == (1 << 26) | (1 << 21) | 0o620   # char device
    assert archive.go_file_mode(0o060660) == (1 << 26) | 0o660
    assert archive.go_file_mode(0o010644) == (1 << 25) | 0o644
    assert archive.go_file_mode(0o100644) == 0o644


def test_path_stat_header_is_dockerds():
    raw = {"name": "passwd", "size": 12, "mode": 0o100644, "mtime_ns": 1_700_000_000_500_000_000,
           "link_target": ""}
    decoded = json.loads(base64.b64decode(archive.path_stat_header(archive.path_stat(raw))))
    assert decoded == {"name": "passwd", "size": 12, "mode": 0o644,
                       "mtime": "2023-11-14T22:13:20.5Z", "linkTarget": ""}


def _tree(root):
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"hello\n")
    os.chown(root / "d" / "f", 1234, 5678, follow_symlinks=False)
    os.chmod(root / "d" / "f", 0o4750)        # after chown, which clears set-id bits
    os.link(root / "d" / "f", root / "d" / "hard")
    (root / "d" / "sub" / "g").write_bytes(b"x" * 70000)
    os.symlink("/etc/passwd", root / "d" / "link")
    os.mkfifo(root / "d" / "fifo")


def _names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


@pytest.mark.parametrize("given, expected", [
    ("/d", {"d", "d/f", "d/hard", "d/sub", "d/sub/g", "d/link", "d/fifo"}),
    ("/d/", {"d", "d/f", "d/hard", "d/sub", "d/sub/g", "d/link", "d/fifo"}),
    ("/d/.", {".", "./f", "./hard", "./sub", "./sub/g", "./link", "./fifo"}),
    ("/d/f", {"f"}),
    ("/d/link", {"link"}),
])
def test_archive_names_as_dockerd(tmp_path, monkeypatch, given, expected):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    # the child runs chrooted; here the paths are made relative to the tree instead
    out = io.BytesIO()
    fs_tar.write_resource(out, "." + fs_tar.preserve_trailing(fs_tar.clean_abs(given), given),
                          lambda *a: True)
    members = _names(out.getvalue())
    assert {n.rstrip("/") or "." for n in members} == expected
    data = out.getvalue()
    assert len(data) % 512 == 0 and data.endswith(bytes(1024))


def test_archive_keeps_owners_modes_links_and_data(tmp_path):
    _tree(tmp_path)
    out = io.BytesIO()
    fs_tar.write_resource(out, str(tmp_path / "d"), lambda *a: True)
    members = _names(out.getvalue())
    f = members["d/f"]
    assert (f.uid, f.gid, f.mode, f.uname, f.gname) == (1234, 5678, 0o4750, "", "")
    assert f.mtime == int(os.stat(tmp_path / "d" / "f").st_mtime)
    assert members["d/hard"].islnk() and members["d/hard"].linkname == "d/f"
    assert members["d/link"].issym() and members["d/link"].linkname == "/etc/passwd"
    assert members["d/fifo"].isfifo()
    assert members["d"].isdir()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile("d/sub/g").read() == b"x" * 70000


def test_extract_round_trip_with_the_archives_owners(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    _tree(src)
    out = io.BytesIO()
    fs_tar.write_resource(out, str(src / "d"), lambda *a: True)
    n = fs_tar.extract(io.BytesIO(out.getvalue()), str(dest), owner=None,
                       no_overwrite_dir_non_dir=False)
    assert n == 7
    st = os.stat(dest / "d" / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
    assert st.st_nlink == 2 and os.path.samefile(dest / "d" / "f", dest / "d" / "hard")
    assert os.readlink(dest / "d" / "link") == "/etc/passwd"
    assert (dest / "d" / "sub" / "g").read_bytes() == b"x" * 70000
    assert stat.S_ISFIFO(os.lstat(dest / "d" / "fifo").st_mode)
    assert int(os.stat(dest / "d").st_mtime) == int(os.stat(src / "d").st_mtime)


def test_extract_with_an_owner_and_implied_parents(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:    # compressed, as dockerd takes them
        info = tarfile.TarInfo("a/b/c")
        info.size, info.uid, info.gid, info.mode = 2, 7, 8, 0o600
        tar.addfile(info, io.BytesIO(b"hi"))
    fs_tar.extract(io.BytesIO(buf.getvalue()), str(tmp_path), owner=(65534, 65534),
                   no_overwrite_dir_non_dir=False)
    st = os.stat(tmp_path / "a" / "b" / "c")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o600)
    parent = os.stat(tmp_path / "a" / "b")
    assert (parent.st_uid, stat.S_IMODE(parent.st_mode)) == (0, 0o755)


def _tar(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_extract_replaces_unless_told_not_to(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "in").write_text("")
    with pytest.raises(fs_tar.ExtractError, match='cannot overwrite directory ".*/d" with '
                                                  'non-directory'):
        fs_tar.extract(io.BytesIO(_tar(("d", "file"))), str(tmp_path), owner=None,
                       no_overwrite_dir_non_dir=True)
    assert (tmp_path / "d" / "in").exists()
    fs_tar.extract(io.BytesIO(_tar(("d", "file"))), str(tmp_path), owner=None,
                   no_overwrite_dir_non_dir=False)
    assert (tmp_path / "d").read_bytes() == b"x"


@pytest.mark.parametrize("body, message", [
    (b"garbage" * 100, "invalid tar archive"),
    (_tar(("../escape", "file")), "invalid entry name"),
    (_tar(("ok", "file"))[:700], "invalid tar archive"),     # cut inside the data
])
def test_bad_archives_are_the_clients_fault(tmp_path, body, message):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(fs_tar.ExtractError, match=message):
        fs_tar.extract(io.BytesIO(body), str(dest), owner=None, no_overwrite_dir_non_dir=False)
    assert not (tmp_path / "escape").exists()


def test_an_empty_body_extracts_nothing(tmp_path):
    assert fs_tar.extract(io.BytesIO(b""), str(tmp_path), owner=None,
                          no_overwrite_dir_non_dir=False) == 0
    assert os.listdir(tmp_path) == []
