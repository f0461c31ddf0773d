"""A config without a mount namespace runs in the caller's, as under runc and crun.

runc (libcontainer's prepareRootfs) makes the config's mounts all the same, in the caller's
mount namespace where they stay, and jails the process with chroot in place of pivot_root; it
refuses maskedPaths and readonlyPaths ("unable to restrict sys entries without a private MNT
namespace"), which crun 1.8 applies. lowrt does as runc. Each runtime here runs inside a
private mount namespace of the test's (`unshare -m`), which is "the caller's" and takes the
mounts with it when it goes; crun also needs the host's empty cgroup2 mount gone from it
(see bench/lowrt_run.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.helpers.lowrt_env import LOWRT, make_bundle, unique_id
from tests.helpers.supervisor_env import caller_is_chrooted

pytestmark = pytest.mark.skipif(not (shutil.which("runc") and shutil.which("crun")),
                                reason="needs runc and crun as the peers")

PROGRAM = ("echo pid=$$; echo cwd=$(pwd); ls /; readlink /proc/self/ns/mnt; "
           "test -c /dev/null && echo devnull; ls /sys/fs/cgroup/pids >/dev/null && echo cgroup; "
           "hostname; id -u")


def _run(binary: list[str], bundle, cid: str) -> tuple[int, list[str], str]:
    """(exit code, the program's lines after the caller's mount namespace, stderr); the first
    line of the caller's namespace is checked against the program's own."""
    script = ('readlink /proc/self/ns/mnt; umount /sys/fs/cgroup/unified 2>/dev/null; '
              'exec "$@" run --bundle "$B" "$C"')
    env = {"B": str(bundle), "C": cid, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                          *binary], env=env, capture_output=True, timeout=60)
    lines = out.stdout.decode().splitlines()
    if out.returncode == 0:
        caller, ns = lines[0], next(line for line in lines if line.startswith("mnt:"))
        assert ns == caller, "the container is not in the caller's mount namespace"
        lines = [line for line in lines[1:] if not line.startswith("mnt:")]
    return out.returncode, lines, out.stderr.decode(errors="replace")


@pytest.fixture
def runtimes(short_tmp):
    made = {"lowrt": [LOWRT, "--root", str(short_tmp / "lowrt")],
            "runc": ["runc", "--root", str(short_tmp / "runc")],
            "crun": ["crun", "--root", str(short_tmp / "crun")]}
    yield made
    for argv in made.values():
        root = argv[2]
        for cid in (os.listdir(root) if os.path.isdir(root) else []):
            subprocess.run([*argv, "delete", "--force", cid], capture_output=True)


def _bundle(short_tmp, busybox_rootfs, **linux):
    path = short_tmp / "bundle"
    config = make_bundle(path, busybox_rootfs, ["sh", "-c", PROGRAM], hostname="nomnt")
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "mount"]
    config["linux"].pop("maskedPaths", None)
    config["linux"].pop("readonlyPaths", None)
    config["linux"].update(linux)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_runs_in_the_callers_mount_namespace_as_runc_and_crun(short_tmp, busybox_rootfs,
                                                              runtimes):
    bundle = _bundle(short_tmp, busybox_rootfs)
    seen = {name: _run(argv, bundle, unique_id()) for name, argv in runtimes.items()}
    assert seen["runc"][0] == 0, seen["runc"][2]
    assert seen["lowrt"][:2] == seen["runc"][:2], seen
    # crun 1.8 from a chrooted caller (the fresh-root harness) fails its remount of the rootfs
    # with EINVAL; lowrt and runc run there as anywhere
    if not caller_is_chrooted():
        assert seen["crun"][:2] == seen["runc"][:2], seen
    # the rootfs, as "/" (a chroot), with the config's mounts and devices in it
    assert {"pid=1", "cwd=/", "bin", "proc", "devnull", "cgroup", "nomnt"} <= set(seen["lowrt"][1])


def test_masked_paths_refused_without_a_mount_namespace_as_runc(short_tmp, busybox_rootfs,
                                                                 runtimes):
    bundle = _bundle(short_tmp, busybox_rootfs, maskedPaths=["/proc/kcore"])
    lowrt = _run(runtimes["lowrt"], bundle, unique_id())
    runc = _run(runtimes["runc"], bundle, unique_id())
    assert lowrt[0] == runc[0] == 1
    message = "unable to restrict sys entries without a private MNT namespace"
    assert message in runc[2] and message in lowrt[2], (lowrt, runc)
