"""A symlink swapped in while lowrt mounts must never send a mount to the host (CVE-2021-30465).

A volume shared with another container (here: the test) holds a directory "d" that a flipper
process exchanges, as fast as it can (renameat2 RENAME_EXCHANGE), with a symlink to a host
directory. Containers start over and over with the volume bound at /vol and a tmpfs mounted at
/vol/d/t, a destination that goes through "d". Each container must either start with its tmpfs
inside its rootfs, or fail with an error and leave nothing behind; the host directory must stay
empty and unmounted. Run with openat2 and with the component walk (LOWRT_TEST_RESOLVE=walk).
A path resolved to a string and mounted on afterwards loses this race within a few runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lowrt.linux import openat2
from tests.helpers.lowrt_env import make_bundle, unique_id

RUNS = 25

FLIPPER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
sys.stdout.write("go\n"); sys.stdout.flush()
while True:
    libc.renameat2(-100, a, -100, b, 2)  # RENAME_EXCHANGE
"""


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@pytest.fixture
def host_target():
    path = Path(tempfile.mkdtemp(prefix="lowrt-race-host-target-", dir="/tmp"))
    yield path
    for point in reversed(_mount_points()):  # should there be any, not left behind
        if point.startswith(str(path)):
            subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("resolve", ["openat2", "walk"])
def test_symlink_swap_never_mounts_on_the_host(rt, short_tmp, busybox_rootfs_template,
                                               host_target, resolve):
    if resolve == "openat2" and not openat2.available():
        pytest.skip("no openat2 on this kernel")
    rootfs = short_tmp / "rootfs"
    shutil.copytree(busybox_rootfs_template, rootfs, symlinks=True)
    volume = short_tmp / "volume"
    (volume / "d").mkdir(parents=True)
    os.symlink(str(host_target), volume / "alt")
    mounts = [
        {"destination": "/vol", "type": "bind", "source": str(volume), "options": ["bind"]},
        {"destination": "/vol/d/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
    ]
    bundle = short_tmp / "bundle"
    config = make_bundle(bundle, rootfs, ["cat", "/proc/self/mountinfo"])
    config["mounts"] = config["mounts"] + mounts
    (bundle / "config.json").write_text(__import__("json").dumps(config))
    env = dict(os.environ)
    if resolve == "walk":
        env["LOWRT_TEST_RESOLVE"] = "walk"
    # where the tmpfs may land: the directory (named "d" or, once exchanged, "alt"), or where
    # the symlink leads when taken inside the rootfs (its absolute target read below the rootfs)
    inside = {"/vol/d/t", "/vol/alt/t", f"{host_target}/t"}

    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(volume / "d"),
                                str(volume / "alt")], stdout=subprocess.PIPE)
    started = failed = 0
    try:
        assert flipper.stdout.readline() == b"go\n"
        for _ in range(RUNS):
            cid = unique_id()
            out = rt.run("run", "--bundle", str(bundle), cid, check=False, env=env)
            err = out.stderr.decode(errors="replace")
            if out.returncode == 0:
                started += 1
                seen = {line.split()[4]: line.split(" - ")[1].split()[0]
                        for line in out.stdout.decode().splitlines()}
                assert any(seen.get(p) == "tmpfs" for p in inside), out.stdout.decode()
            else:
                failed += 1
                assert "error mounting" in err or "rootfs changed" in err, err
            assert not (rt.root / cid).exists()
            assert list(host_target.iterdir()) == []
            assert not [p for p in _mount_points() if p.startswith(str(host_target))]
    finally:
        flipper.kill()
        flipper.wait()
    assert list(host_target.iterdir()) == []
    print(f"{resolve}: {started} started, {failed} refused")
    assert started + failed == RUNS
