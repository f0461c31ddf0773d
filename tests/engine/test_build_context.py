"""engine/build/context.py: build context tars (made, unpacked safely) and cache checksums."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile

import pytest

from engine.build.context import (ContextError, checksum_path, compression, make_context_tar,
                                  open_context, remove_ignored_build_files)
from engine.build.dockerignore import IgnoreMatcher, parse_dockerignore


def tar_of(*entries: tuple) -> bytes:
    """A tar from (name, kind, data_or_target[, mode]) tuples."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind, payload = entry[:3]
            info = tarfile.TarInfo(name)
            info.mode = entry[3] if len(entry) > 3 else 0o644
            info.mtime = 1_000_000
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tar.addfile(info)
    return buf.getvalue()


def tree(root) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = "dir"
            else:
                with open(path, "rb") as f:
                    out[rel] = f.read().decode()
    return out


# Unpacking -------------------------------------------------------------------------------------

BASIC = tar_of(("Dockerfile", "file", b"FROM scratch\n"), ("src/", "dir", None, 0o750),
               ("src/a.txt", "file", b"hello", 0o600), ("src/link", "symlink", "a.txt"),
               ("src/hard", "hardlink", "src/a.txt", 0o600), ("/abs.txt", "file", b"abs"))


@pytest.mark.parametrize("wrap", [
    lambda b: b, gzip.compress, bz2.compress, lambda b: lzma.compress(b)])
def test_open_context_plain_and_compressed(tmp_path, wrap):
    n = open_context(io.BytesIO(wrap(BASIC)), str(tmp_path))
    assert n == 6
    assert tree(tmp_path) == {"Dockerfile": "FROM scratch\n", "src": "dir",
                              "src/a.txt": "hello", "src/link": "-> a.txt",
                              "src/hard": "hello", "abs.txt": "abs"}
    assert os.stat(tmp_path / "src").st_mode & 0o7777 == 0o750
    assert os.stat(tmp_path / "src/a.txt").st_mode & 0o7777 == 0o600
    assert os.stat(tmp_path / "src/a.txt").st_mtime == 1_000_000
    assert os.stat(tmp_path / "src/a.txt").st_ino == os.stat(tmp_path / "src/hard").st_ino


def test_open_context_from_a_path(tmp_path):
    path = tmp_path / "ctx.tar"
    path.write_bytes(BASIC)
    dest = tmp_path / "out"
    dest.mkdir()
    assert open_context(str(path), str(dest)) == 6


def test_compression_magic():
    assert compression(b"\x1f\x8b\x08\x00") == "gzip"
    assert compression(b"BZh9") == "bzip2"
    assert compression(b"\xfd7zXZ\x00") == "xz"
    assert compression(b"\x28\xb5\x2f\xfd") == "zstd"
    assert compression(b"Dockerfile\x00") == "none"


def test_empty_body_is_an_empty_context(tmp_path):
    assert open_context(io.BytesIO(b""), str(tmp_path)) == 0
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("entries,message", [
    ((("../evil", "file", b"x"),), "is outside the context"),
    ((("a/../../evil", "file", b"x"),), "is outside the context"),
    ((("up", "symlink", "../.."),), "invalid symlink"),
    ((("sub/", "dir", None), ("sub/up", "symlink", "../../x")), "invalid symlink"),
    ((("l", "symlink", "/etc"), ("l/passwd", "file", b"x")), "goes through the symlink 'l'"),
    ((("f", "file", b"x"), ("f/g", "file", b"y")), "is not a directory"),
    ((("h", "hardlink", "/etc/passwd"),), "hard link"),
    ((("h", "hardlink", "../x"),), "hard link"),
])
def test_hostile_entries_are_refused(tmp_path, entries, message):
    dest = tmp_path / "ctx"
    dest.mkdir()
    with pytest.raises(ContextError, match=message):
        open_context(io.BytesIO(tar_of(*entries)), str(dest))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


def test_absolute_symlinks_are_kept(tmp_path):
    open_context(io.BytesIO(tar_of(("etc", "symlink", "/etc"))), str(tmp_path))
    assert os.readlink(tmp_path / "etc") == "/etc"


def test_later_entry_replaces_earlier(tmp_path):
    data = tar_of(("x", "file", b"one"), ("x", "symlink", "y"), ("d/", "dir", None),
                  ("d", "file", b"now a file"))
    open_context(io.BytesIO(data), str(tmp_path))
    assert tree(tmp_path) == {"x": "-> y", "d": "now a file"}


def test_garbage_is_refused(tmp_path):
    with pytest.raises(ContextError, match="invalid build context"):
        open_context(io.BytesIO(b"\x1f\x8b\x08 this is not gzip" * 40), str(tmp_path))
    (tmp_path / "cut").mkdir()
    with pytest.raises(ContextError, match="invalid build context"):
        open_context(io.BytesIO(BASIC[:700]), str(tmp_path / "cut"))


def test_remove_ignored_build_files(tmp_path):
    (tmp_path / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    (tmp_path / "keep").write_text("k")
    remove_ignored_build_files(str(tmp_path), "Dockerfile")
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_remove_ignored_build_files_keeps_unmatched(tmp_path):
    (tmp_path / ".dockerignore").write_text("*.log\n")
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    remove_ignored_build_files(str(tmp_path), "Dockerfile")
    assert sorted(os.listdir(tmp_path)) == [".dockerignore", "Dockerfile"]


# Making ----------------------------------------------------------------------------------------

@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    (root / "app").mkdir(parents=True)
    (root / "node_modules/pkg").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / ".dockerignore").write_text("node_modules\ndocs\n!docs/README.md\n*.log\n"
                                        "Dockerfile\n.dockerignore\n")
    (root / "app/main.py").write_text("print(1)\n")
    (root / "app/debug.log").write_text("log")
    (root / "node_modules/pkg/index.js").write_text("x")
    (root / "docs/README.md").write_text("readme")
    (root / "docs/other.md").write_text("other")
    os.chmod(root / "app/main.py", 0o755)
    os.link(root / "app/main.py", root / "app/again.py")
    os.symlink("main.py", root / "app/link")
    return root


def context_members(root, dockerfile="Dockerfile", ignore=True):
    matcher = None
    if ignore:
        matcher = IgnoreMatcher(parse_dockerignore((root / ".dockerignore").read_text()))
    data = b"".join(make_context_tar(str(root), dockerfile, matcher))
    return {m.name: m for m in tarfile.open(fileobj=io.BytesIO(data))}, data


def test_make_context_tar_applies_dockerignore(src):
    members, data = context_members(src)
    # "*.log" matches at the top only, as in docker: app/debug.log is sent
    assert list(members) == [".dockerignore", "Dockerfile", "app", "app/again.py",
                             "app/debug.log", "app/link", "app/main.py", "docs/README.md"]
    assert members["app"].isdir()
    assert b"app/\x00" in data                 # directories named with a trailing "/"
    again, main = members["app/again.py"], members["app/main.py"]
    assert again.isreg() and main.islnk() and main.linkname == "app/again.py"
    assert members["app/link"].issym() and members["app/link"].linkname == "main.py"
    assert again.mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in members.values())


def test_make_context_tar_without_ignore(src):
    members, _ = context_members(src, ignore=False)
    assert "node_modules/pkg/index.js" in members and "app/debug.log" in members


def test_make_context_tar_round_trip(src, tmp_path):
    _, data = context_members(src)
    dest = tmp_path / "out"
    dest.mkdir()
    open_context(io.BytesIO(data), str(dest))
    assert (dest / "docs/README.md").read_text() == "readme"
    assert (dest / "app/main.py").read_text() == "print(1)\n"
    assert not (dest / "node_modules").exists()
    assert checksum_path(str(src), "app/main.py") == checksum_path(str(dest), "app/main.py")


def test_missing_dockerfile(src):
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: nope"):
        make_context_tar(str(src), "nope", None)


def test_unreadable_file_is_an_error(src, monkeypatch):
    import engine.build.context as context
    real_open = os.open

    def refusing_open(path, flags, *args):
        if str(path).endswith("app/again.py"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(context.os, "open", refusing_open)
    with pytest.raises(ContextError, match="error checking context: can't open "
                                           "'app/again.py': Permission denied"):
        b"".join(make_context_tar(str(src), "Dockerfile", None))


# Checksums -------------------------------------------------------------------------------------

def test_checksum_changes_with_content_and_mode_not_mtime(tmp_path):
    f = tmp_path / "f"
    f.write_text("one")
    first = checksum_path(str(tmp_path), "f")
    assert first.startswith("file:") and len(first) == 5 + 64
    os.utime(f, (1, 1))
    assert checksum_path(str(tmp_path), "f") == first
    f.write_text("two")
    second = checksum_path(str(tmp_path), "f")
    assert second != first
    os.chmod(f, 0o600)
    assert checksum_path(str(tmp_path), "f") != second
    os.chown(f, 1234, 1234)
    assert checksum_path(str(tmp_path), "f") != second


def test_checksum_of_directories(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub/x").write_text("x")
    first = checksum_path(str(tmp_path), "d")
    assert first.startswith("dir:")
    os.utime(d / "sub/x", (5, 5))
    os.utime(d / "sub", (5, 5))
    assert checksum_path(str(tmp_path), "d") == first
    (d / "sub/x").write_text("y")
    assert checksum_path(str(tmp_path), "d") != first
    (d / "sub/x").write_text("x")
    assert checksum_path(str(tmp_path), "d") == first
    (d / "sub/x").rename(d / "sub/z")
    assert checksum_path(str(tmp_path), "d") != first


def test_checksum_of_symlink_is_its_target_text(tmp_path):
    os.symlink("a", tmp_path / "l")
    first = checksum_path(str(tmp_path), "l")
    os.unlink(tmp_path / "l")
    os.symlink("b", tmp_path / "l")
    assert checksum_path(str(tmp_path), "l") != first


def test_checksum_missing(tmp_path):
    with pytest.raises(ContextError, match="'nope' not found in the build context"):
        checksum_path(str(tmp_path), "nope")


def test_resolve_in_scope(tmp_path):
    from engine.build.context import resolve_in_scope
    (tmp_path / "real/dir").mkdir(parents=True)
    (tmp_path / "real/dir/f").write_text("f")
    os.symlink("real/dir", tmp_path / "rel")
    os.symlink("/real", tmp_path / "abs")          # absolute: from the context's root
    os.symlink("../../../..", tmp_path / "real/up")  # cannot climb above the root
    os.symlink("loop", tmp_path / "loop")
    root = str(tmp_path)
    assert resolve_in_scope(root, "rel/f") == "real/dir/f"
    assert resolve_in_scope(root, "abs/dir/f") == "real/dir/f"
    assert resolve_in_scope(root, "real/up/real/dir") == "real/dir"
    assert resolve_in_scope(root, "../../x") == "x"
    assert resolve_in_scope(root, "missing/a") == "missing/a"
    assert resolve_in_scope(root, ".") == ""
    with pytest.raises(ContextError, match="too many links"):
        resolve_in_scope(root, "loop")


def test_checksum_following_a_symlink_hashes_the_target(tmp_path):
    (tmp_path / "t").write_text("one")
    os.symlink("/t", tmp_path / "l")
    root = str(tmp_path)
    first = checksum_path(root, "l", follow=True)
    link_only = checksum_path(root, "l")
    (tmp_path / "t").write_text("two")
    assert checksum_path(root, "l", follow=True) != first
    assert checksum_path(root, "l") == link_only
    assert checksum_path(root, "l", follow=True) == checksum_path(root, "t")


def test_owners_are_kept(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("owned")
        info.uid, info.gid, info.size, info.mode = 1234, 5678, 1, 0o4755
        tar.addfile(info, io.BytesIO(b"x"))
    open_context(io.BytesIO(buf.getvalue()), str(tmp_path))
    st = os.lstat(tmp_path / "owned")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o4755)


def test_overlay_xattrs_are_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y"}
        tar.addfile(info)
    with pytest.raises(ContextError, match="overlayfs attribute trusted.overlay.opaque"):
        open_context(io.BytesIO(buf.getvalue()), str(tmp_path))


def test_zstd_context(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    data = zstandard.ZstdCompressor().compress(BASIC)
    assert open_context(io.BytesIO(data), str(tmp_path)) == 6
    assert (tmp_path / "src/a.txt").read_text() == "hello"
