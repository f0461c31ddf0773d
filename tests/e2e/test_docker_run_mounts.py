"""What docker run puts into a container besides its image: -v, --mount, --tmpfs, --device; and
what berthd cannot give yet (-p, named volumes) refused at create, leaving no container."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers.engine_daemon import docker_cli_major


def run_ok(daemon, *args: str) -> str:
    p = daemon.docker("run", "--rm", *args)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout.decode()


def test_bind_mounts_by_v_and_by_mount(daemon, tmp_path):
    (tmp_path / "f").write_text("from the host\n")
    assert run_ok(daemon, "-v", f"{tmp_path}:/v", "busybox", "sh", "-c",
                  "cat /v/f; echo back > /v/g") == "from the host\n"
    assert (tmp_path / "g").read_text() == "back\n"
    p = daemon.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/m,readonly",
                      "busybox", "sh", "-c", "cat /m/f; touch /m/h")
    assert p.stdout == b"from the host\n" and p.returncode == 1
    assert b"Read-only file system" in p.stderr and not (tmp_path / "h").exists()


def test_mount_shows_in_inspect(daemon, tmp_path):
    p = daemon.docker("create", "--name", "mnt", "--mount", f"type=bind,src={tmp_path},dst=/m",
                      "busybox", "true")
    assert p.returncode == 0, p.stderr
    mounts = json.loads(daemon.docker("inspect", "mnt").stdout)[0]["Mounts"]
    assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/m", "Mode": "",
                       "RW": True, "Propagation": "rprivate"}]
    daemon.docker("rm", "mnt")


def test_tmpfs_by_flag_and_by_mount(daemon):
    out = run_ok(daemon, "--tmpfs", "/run:size=2m,exec", "--mount",
                 "type=tmpfs,dst=/t,tmpfs-size=1048576", "busybox", "sh", "-c",
                 "grep -E ' /(run|t) ' /proc/mounts")
    run, t = sorted(out.splitlines())
    assert run.startswith("tmpfs /run tmpfs") and "size=2048k" in run and "noexec" not in run
    assert t.startswith("tmpfs /t tmpfs") and "size=1024k" in t and "noexec" in t


@pytest.mark.skipif(not os.path.exists("/dev/loop-control"), reason="needs /dev/loop-control")
def test_device_is_created_with_the_access_asked_for(daemon):
    # /dev/loop-control (10:237) is none of the default devices
    out = run_ok(daemon, "--device", "/dev/loop-control:/dev/lc", "busybox", "sh", "-c",
                 "ls -l /dev/lc; exec 3</dev/lc && echo opened")
    assert out.startswith("crw") and "10, 237" in out and out.endswith("opened\n"), out
    p = daemon.docker("run", "--rm", "--device", "/dev/loop-control:/dev/lc:w", "busybox",
                      "sh", "-c", "exec 3>/dev/lc && echo write-ok; exec 4</dev/lc && echo read")
    assert p.stdout == b"write-ok\n" and b"Operation not permitted" in p.stderr, p


@pytest.mark.parametrize("args, message", [
    (["--mac-address", "02:42:ac:11:00:02"], b"berth cannot apply --mac-address yet"),
    (["-v", "bad@name:/data"], b'"bad@name" includes invalid characters for a local volume name'),
    pytest.param(["--mount", "type=volume,src=data,dst=/data,volume-subpath=x"],
                 b"berth cannot apply --mount volume-subpath=x yet",
                 marks=pytest.mark.skipif(docker_cli_major() < 26,
                                          reason="volume-subpath came with docker CLI 26")),
    (["--mount", "type=bind,src=/no/such/dir,dst=/x"],
     b"bind source path does not exist: /no/such/dir"),
    (["--device", "/dev/no-such-device"], b'adding custom device "/dev/no-such-device"'),
])
def test_what_berthd_cannot_give_is_refused_at_create(daemon, args, message):
    p = daemon.docker("run", "--rm", *args, "busybox", "true")
    assert p.returncode in (125, 127) and message in p.stderr, p.stderr
    assert daemon.docker("ps", "-aq").stdout == b""
