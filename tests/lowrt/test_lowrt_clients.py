"""Real clients drive lowrt in place of runc: containerd's ctr and Debian's dockerd.

Each daemon is private (its own sockets, state, runtime root) and is stopped, with everything
it made (cgroup parents included), by its fixture at the end of the test that used it.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tarfile
import time

import pytest

from tests.helpers.engine_daemon import DOCKER
from tests.helpers.lowrt_clients import PrivateContainerd, PrivateDockerd
from tests.helpers.lowrt_env import LOWRT, unique_id

pytestmark = pytest.mark.slow


@pytest.fixture
def containerd():
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd is not installed")
    daemon = PrivateContainerd(namespace="lowrt-test")
    yield daemon
    daemon.stop()


def test_ctr_runs_execs_kills_and_deletes_a_busybox_container(containerd, busybox_rootfs_template):
    cid = unique_id("ctr")
    runtime_root = containerd.dir / "lowrt"
    run = ["run", "--runc-binary", LOWRT, "--runc-root", str(runtime_root)]
    out = containerd.ctr(*run, "--rm", "--rootfs", str(busybox_rootfs_template), cid + "-fg",
                         "/bin/sh", "-c", "echo hello from ctr; cat /proc/1/cmdline")
    assert out.stdout.startswith(b"hello from ctr\n")

    containerd.ctr(*run, "-d", "--rootfs", str(busybox_rootfs_template), cid, "/bin/sleep", "300")
    tasks = containerd.ctr("tasks", "ls").stdout.decode()
    assert cid in tasks and "RUNNING" in tasks
    # the task really is lowrt's: its state is under the runtime root we gave
    assert (runtime_root / "lowrt-test" / cid / "state.json").exists()
    ex = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "/bin/sh", "-c",
                        "echo in-exec; cat /proc/1/cmdline")
    assert ex.stdout == b"in-exec\n/bin/sleep\x00300\x00"
    pids = containerd.ctr("tasks", "ps", cid).stdout.decode().split()
    assert len(pids) >= 3  # header, the init
    containerd.ctr("tasks", "pause", cid)
    assert "PAUSED" in containerd.ctr("tasks", "ls").stdout.decode()
    containerd.ctr("tasks", "resume", cid)
    containerd.ctr("tasks", "kill", "-s", "SIGKILL", cid)
    deadline = time.monotonic() + 10
    while "STOPPED" not in containerd.ctr("tasks", "ls").stdout.decode():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    containerd.ctr("tasks", "delete", cid)
    containerd.ctr("containers", "delete", cid)
    assert not (runtime_root / "lowrt-test" / cid).exists()


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory, busybox_rootfs_template):
    tar = tmp_path_factory.mktemp("image") / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs_template, arcname=".")
    return tar


@pytest.fixture
def dockerd(busybox_tar):
    if not shutil.which("dockerd") or not shutil.which(DOCKER):
        pytest.skip("dockerd is not installed")
    daemon = PrivateDockerd(LOWRT)
    try:
        daemon.docker("import", str(busybox_tar), "lowrt-busybox:test")
        yield daemon
    finally:
        daemon.stop()


def _run(dockerd, *args, **kw):
    return dockerd.docker("run", "--runtime", "lowrt", "--network", "none", *args, **kw)


def test_docker_run_with_limits_oom_and_privileged(dockerd):
    out = _run(dockerd, "--rm", "-m", "64m", "--pids-limit", "33", "lowrt-busybox:test", "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
               "grep Seccomp: /proc/self/status")
    lines = out.stdout.decode().split()
    assert lines[:2] == [str(64 << 20), "33"]
    assert lines[-1] == "2"  # docker's default seccomp profile is loaded

    oom = _run(dockerd, "--rm", "-m", "16m", "--memory-swap", "16m", "lowrt-busybox:test",
               "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", check=False)
    assert oom.returncode == 137

    # --privileged asks for every capability; lowrt grants what the host allows it
    with open("/proc/self/status") as f:
        host_bounding = int(next(l for l in f if l.startswith("CapBnd:")).split()[1], 16)
    out = _run(dockerd, "--rm", "--privileged", "lowrt-busybox:test", "grep", "CapEff", "/proc/self/status")
    inside = int(out.stdout.split()[1], 16)
    assert inside & ~host_bounding == 0 and inside & (1 << 21)  # CAP_SYS_ADMIN kept


def _pty_session(argv: list[str], env: dict, send: bytes, expect: bytes) -> tuple[bytes, int]:
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        sent = False
        while expect not in out and time.monotonic() < deadline:
            if not sent and (b"# " in out or b"$ " in out):
                os.write(master, send)
                sent = True
            if select.select([master], [], [], 0.5)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
        return out, proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_docker_run_it_and_exec_it_pause_stats_update_rm(dockerd):
    name = unique_id("dk")
    out, code = _pty_session([DOCKER, "run", "-it", "--rm", "--runtime", "lowrt", "--network", "none",
                              "lowrt-busybox:test", "sh"], dockerd.env,
                             b"tty; echo it-$((40+2)); exit 5\r", b"it-42")
    assert b"it-42" in out and b"/dev/pts/0" in out and code == 5

    _run(dockerd, "-d", "--name", name, "-m", "64m", "lowrt-busybox:test", "sleep", "300")
    out, code = _pty_session([DOCKER, "exec", "-it", name, "sh"], dockerd.env,
                             b"echo exec-$((3*3)); exit 0\r", b"exec-9")
    assert b"exec-9" in out and code == 0

    dockerd.docker("pause", name)
    assert "Paused" in dockerd.docker("ps", "--format", "{{.Status}}", "-f", f"name={name}").stdout.decode()
    dockerd.docker("unpause", name)
    stats = json.loads(dockerd.docker("stats", "--no-stream", "--format", "{{json .}}", name).stdout)
    assert stats["MemUsage"].endswith("64MiB") and stats["PIDs"] == "1"
    dockerd.docker("update", "-m", "128m", "--memory-swap", "256m", name)
    limit = dockerd.docker("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
    assert int(limit) == 128 << 20
    dockerd.docker("rm", "-f", name)
    assert name not in dockerd.docker("ps", "-a").stdout.decode()
