"""The classic builder's pure parts that berth's builder keeps: metadata instructions on the
run config (steps), the cache's comparison, COPY/ADD's layer layout (layers_from_context)
and the layered rootfs view it reads the image through."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from engine.build import cache, steps
from engine.build.layers_from_context import Source, list_host, write_copy, write_dirs
from engine.build.rootfs_view import RootfsView
from engine.errors import InvalidParameter


def state(**config) -> steps.StageState:
    return steps.StageState(config={"Env": ["PATH=/bin"], **config})


def test_env_replaces_in_place_and_comments_as_the_classic_builder():
    s = state(Env=["PATH=/bin", "A=1"])
    assert steps.apply_env(s, [("PATH", "/usr/bin"), ("B", "2")]) == "ENV PATH=/usr/bin B=2"
    assert s.config["Env"] == ["PATH=/usr/bin", "A=1", "B=2"]
    assert steps.nop_cmd(s, "ENV B=2") == ["/bin/sh", "-c", "#(nop) ", "ENV B=2"]


def test_cmd_shell_form_goes_through_shell_and_entrypoint_resets_inherited_cmd():
    s = state(Cmd=["sh"])
    steps.apply_shell(s, ["/bin/bash", "-c"], True)
    assert steps.apply_entrypoint(s, ["echo hi"], False) == \
        'ENTRYPOINT ["/bin/bash" "-c" "echo hi"]'
    assert s.config["Cmd"] is None
    steps.apply_cmd(s, ["a", "b"], True)
    steps.apply_entrypoint(s, ["x"], True)
    assert s.config["Cmd"] == ["a", "b"]        # CMD of this stage stays


def test_expose_healthcheck_and_errors():
    s = state()
    assert steps.apply_expose(s, ["80", "53/udp", "1000-1001"]) == \
        "EXPOSE 1000-1001 53/udp 80"
    assert set(s.config["ExposedPorts"]) == {"1000/tcp", "1001/tcp", "53/udp", "80/tcp"}
    assert steps.apply_healthcheck(s, ["CMD", "true"], False,
                                   {"interval": "1m30s", "retries": "3"}) == \
        'HEALTHCHECK &{["CMD-SHELL" "true"] "1m30s" "0s" "0s" \'\\x03\'}'
    assert s.config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"],
                                       "Interval": 90 * 10**9, "Retries": 3}
    with pytest.raises(InvalidParameter, match="invalid containerPort"):
        steps.apply_expose(s, ["eighty"])
    with pytest.raises(InvalidParameter, match="JSON form"):
        steps.apply_shell(s, ["bash"], False)
    with pytest.raises(InvalidParameter, match="ONBUILD ONBUILD"):
        steps.apply_onbuild(s, "ONBUILD RUN x")


def test_cache_compares_the_step_config():
    a = {"Cmd": ["/bin/sh", "-c", "true"], "Env": ["A=1"], "Labels": {}}
    assert cache.same_config(a, {**a, "Labels": None, "Image": "other"})
    assert not cache.same_config(a, {**a, "Env": ["A=2"]})


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar}


def test_copy_layout_dir_contents_files_into_dir_and_chown(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "d" / "sub").mkdir(parents=True)
    (ctx / "d" / "sub" / "f").write_text("x")
    (ctx / "a").write_text("a")
    (ctx / "a").chmod(0o751)
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    view = RootfsView([str(lower)])
    out = tmp_path / "l.tar"
    write_copy(out, view, [Source(ctx / "d", "d", list_host)], "/opt/app/", (5, 6), unpack=False)
    m = _members(out)
    assert set(m) == {"opt", "opt/app", "opt/app/sub", "opt/app/sub/f"}
    assert (m["opt"].uid, m["opt/app"].uid, m["opt/app/sub/f"].uid) == (0, 5, 5)
    write_copy(out, view, [Source(ctx / "a", "a", list_host)], "/etc/b", None, unpack=False)
    m = _members(out)
    assert set(m) == {"etc/b"} and m["etc/b"].mode == 0o751 and m["etc/b"].uid == 0
    write_copy(out, view, [Source(ctx / "a", "a", list_host)], "/etc", None, unpack=False)
    assert set(_members(out)) == {"etc/a"}      # an existing directory: into it


def test_add_unpacks_a_local_archive_and_workdir_layer(tmp_path):
    arc = tmp_path / "a.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        info = tarfile.TarInfo("top/f")
        info.size, info.uid = 2, 7
        tar.addfile(info, io.BytesIO(b"hi"))
    view = RootfsView([])
    out = tmp_path / "l.tar"
    write_copy(out, view, [Source(arc, "a.tar.gz", list_host)], "/x", None, unpack=True)
    m = _members(out)
    assert m["x/top/f"].uid == 7 and "x" in m
    write_copy(out, view, [Source(arc, "a.tar.gz", list_host)], "/y/", None, unpack=False)
    assert set(_members(out)) == {"y", "y/a.tar.gz"}
    assert write_dirs(out, RootfsView([str(tmp_path)]), "/", None) == 0


def test_rootfs_view_whiteouts(tmp_path):
    top, low = tmp_path / "top", tmp_path / "low"
    (low / "d").mkdir(parents=True)
    (low / "d" / "gone").write_text("")
    (low / "d" / "kept").write_text("")
    (top / "d").mkdir(parents=True)
    (top / "d" / ".wh.gone").write_text("")
    view = RootfsView([str(top), str(low)])
    assert set(view.listdir("d")) == {"kept"}
    assert view.find("d/gone") is None and view.find("d/kept") == low / "d" / "kept"


def _builder(**opts):
    from types import SimpleNamespace

    from engine.build.builder import BuildOptions, Builder
    fake = SimpleNamespace(images=None, containers=None, cfg=SimpleNamespace(data_root="/nowhere"))
    return Builder(fake, Path("/nowhere"), BuildOptions(**opts), None, None)


def test_stages_the_target_needs_by_from_and_copy_from():
    from engine.build.dockerfile import parse
    df = parse("ARG B=base\nFROM busybox AS base\nFROM busybox AS unused\nRUN x\n"
               "FROM busybox AS tools\nFROM $B AS app\nCOPY --from=tools /a /a\n"
               "FROM app\nCOPY --from=0 /b /b\n")
    b = _builder()
    b._meta_values(df.meta_args)
    assert [s.index for s in b._needed(df.stages, 4)] == [0, 2, 3, 4]
    assert [s.index for s in b._needed(df.stages, 1)] == [1]
    b = _builder(buildargs={"B": "tools"})
    b._meta_values(df.meta_args)
    assert [s.index for s in b._needed(df.stages, 3)] == [2, 3]


def test_rootfs_view_glob(tmp_path):
    top, low = tmp_path / "top", tmp_path / "low"
    (low / "etc").mkdir(parents=True)
    for name in ("a.conf", "b.conf", ".hidden.conf", "x.txt"):
        (low / "etc" / name).write_text("")
    (top / "etc").mkdir(parents=True)
    (top / "etc" / ".wh.b.conf").write_text("")
    (top / "etc" / "c.conf").write_text("")
    view = RootfsView([str(top), str(low)])
    assert view.glob("/etc/*.conf") == ["etc/.hidden.conf", "etc/a.conf", "etc/c.conf"]
    assert view.glob("e?c/x.txt") == ["etc/x.txt"] and view.glob("nope/*") == []
