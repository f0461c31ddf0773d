"""Bad input and failures half-way: a clear error naming what is wrong, a non-zero exit, and
nothing left behind (state directory, cgroup, process, mount)."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers import leaks
from tests.helpers.lowrt_env import make_bundle, write_config


@pytest.fixture
def nothing_left(rt):
    """check(cid): no state, cgroup, process or mount of cid's is left."""
    before = leaks.snapshot()

    def check(cid: str) -> None:
        assert not (rt.root / cid).exists()
        assert [c for c in leaks.cgroups() if cid in c] == []
        after = leaks.snapshot()
        new_procs = [cmd for pid, cmd in after.processes.items()
                     if pid not in before.processes and cid in cmd and leaks._alive(pid)]
        assert new_procs == []
        # (other test runs may share the host: only mounts of this test's files count)
        assert {m for m in after.mounts - before.mounts if str(rt.root.parent) in m} == set()
    return check


def _run(rt, b, cid):
    return rt.run("run", "-b", str(b), cid, check=False)


def test_bad_json(rt, bundle, cid, nothing_left):
    b = bundle(["true"])
    (b / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    out = _run(rt, b, cid)
    assert out.returncode == 1 and b"parse" in out.stderr and b"config.json" in out.stderr
    nothing_left(cid)


def test_missing_config(rt, short_tmp, cid, nothing_left):
    out = _run(rt, short_tmp, cid)
    assert out.returncode == 1 and b"config.json: no such file or directory" in out.stderr
    nothing_left(cid)


def test_missing_rootfs(rt, bundle, cid, nothing_left):
    b = bundle(["true"])
    config = json.loads((b / "config.json").read_text())
    config["root"]["path"] = "no-such-rootfs"
    write_config(b, config)
    out = _run(rt, b, cid)
    assert out.returncode == 1 and b"invalid rootfs" in out.stderr and b"no-such-rootfs" in out.stderr
    nothing_left(cid)


@pytest.mark.parametrize("namespaces, message", [
    ([{"type": "pid"}, {"type": "mount"}, {"type": "bogus"}], b"namespace type 'bogus' does not exist"),
    ([{"type": "mount"}, {"type": "mount"}], b"duplicate namespace type 'mount'"),
    ([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/nope"}], b"no such file"),
    ([{"type": "pid"}], b"unable to restrict sys entries without a private MNT namespace"),
])
def test_bad_namespaces(rt, bundle, cid, nothing_left, namespaces, message):
    b = bundle(["true"], linux={"namespaces": namespaces})
    out = _run(rt, b, cid)
    assert out.returncode == 1 and message in out.stderr
    nothing_left(cid)


@pytest.mark.parametrize("process, message", [
    ({"args": []}, b"args must not be empty"),
    ({"cwd": "relative"}, b"must be an absolute path"),
    ({"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, b"RLIMIT_BOGUS"),
    ({"user": {"uid": -1}}, b"uid"),
])
def test_bad_process(rt, bundle, cid, nothing_left, process, message):
    b = bundle(["true"], process=process)
    out = _run(rt, b, cid)
    assert out.returncode == 1 and message in out.stderr
    nothing_left(cid)


def test_user_namespace_without_maps(rt, bundle, cid, nothing_left):
    b = bundle(["true"], linux={"namespaces": [{"type": "mount"}, {"type": "user"}]})
    out = _run(rt, b, cid)
    assert out.returncode == 1 and b"uidMappings" in out.stderr
    nothing_left(cid)


def test_program_not_found(rt, bundle, cid, nothing_left):
    b = bundle(["no-such-program"])
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1
    assert b'exec: "no-such-program": executable file not found in $PATH' in out.stderr
    nothing_left(cid)


@pytest.mark.parametrize("program", ["/etc/passwd", "/etc"])
def test_program_that_cannot_be_executed_fails_create_as_runc(rt, bundle, cid, nothing_left,
                                                              program):
    b = bundle([program])
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1
    assert f'exec: "{program}": permission denied'.encode() in out.stderr
    nothing_left(cid)


def test_failing_mount_undoes_everything(rt, bundle, cid, nothing_left, short_tmp):
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/data", "type": "bind", "source": str(short_tmp / "absent"),
               "options": ["rbind"]}]
    b = bundle(["true"], mounts=mounts)
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"/data" in out.stderr and b"absent" in out.stderr
    nothing_left(cid)


def test_mount_destination_escaping_the_rootfs_stays_inside(rt, probe_rootfs, short_tmp, cid):
    """A symlink in the image pointing out of the rootfs is resolved inside it."""
    import shutil
    root = short_tmp / "rootfs"
    for d in ("proc", "dev", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy2(probe_rootfs / "probe", root / "probe")
    os.symlink("/../../../../../../tmp", root / "evil")
    from tests.helpers.lowrt_env import make_bundle
    b = short_tmp / "b"
    make_bundle(b, root, ["/probe"], root={"readonly": False}, mounts=[
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/evil/inside", "type": "tmpfs", "source": "tmpfs"}])
    rt.run("run", "-b", str(b), cid)
    assert (root / "tmp" / "inside").is_dir()          # made inside the rootfs
    assert not os.path.exists("/tmp/inside")


def test_bad_cgroup_limit_undoes_everything(rt, bundle, cid, nothing_left):
    b = bundle(["true"], linux={"resources": {"memory": {"limit": "lots"}}})
    out = _run(rt, b, cid)
    assert out.returncode == 1 and b"memory" in out.stderr
    nothing_left(cid)


def test_console_socket_without_terminal_is_refused(rt, bundle, cid, nothing_left, short_tmp):
    b = bundle(["true"])
    out = rt.run("create", "--console-socket", str(short_tmp / "s"), "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"cannot use console socket" in out.stderr
    nothing_left(cid)


def test_terminal_without_console_socket_is_refused(rt, bundle, cid, nothing_left):
    b = bundle(["true"], process={"terminal": True})
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"cannot allocate tty" in out.stderr
    nothing_left(cid)


def test_unreachable_console_socket(rt, bundle, cid, nothing_left, short_tmp):
    b = bundle(["true"], process={"terminal": True})
    out = rt.run("create", "--console-socket", str(short_tmp / "nobody"), "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"console socket" in out.stderr
    nothing_left(cid)


@pytest.mark.parametrize("target", ["proc", "sys"])
def test_proc_or_sys_that_is_a_symlink_in_the_image_is_refused(rt, busybox_rootfs, short_tmp,
                                                                cid, nothing_left, target):
    # followed, the link would put proc or sysfs elsewhere, out of reach of maskedPaths
    (busybox_rootfs / target).rmdir()
    (busybox_rootfs / target).symlink_to("/elsewhere")
    b = short_tmp / "b"
    make_bundle(b, busybox_rootfs, ["true"])
    out = _run(rt, b, cid)
    assert out.returncode == 1 and b"must be mounted on ordinary directory" in out.stderr
    assert not (busybox_rootfs / "elsewhere").exists()
    nothing_left(cid)

