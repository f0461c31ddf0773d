"""The berth CLI against berthd: each verb, the daemon address options, and docker's exit codes."""
from __future__ import annotations

import re
import subprocess

from engine.version import VERSION
from tests.helpers.engine_daemon import VENV_BIN


def test_run_prints_output_and_exits_with_the_containers_code(daemon):
    p = daemon.berth("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")


def test_run_options_reach_the_container(daemon):
    p = daemon.berth("run", "--rm", "--name", "cli-opts", "-e", "A=1", "-m", "64m",
                     "--pids-limit", "50", "busybox", "sh", "-c",
                     'echo $A; cat /sys/fs/cgroup/memory/memory.limit_in_bytes '
                     '/sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max '
                     '/sys/fs/cgroup/pids.max')
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == ["1", str(64 << 20), "50"]


def test_run_interactive_sends_stdin(daemon):
    p = daemon.berth("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input=b"abc\n")
    assert (p.returncode, p.stdout) == (0, b"ABC\n")


def test_run_detached_then_ps_logs_rm(daemon):
    p = daemon.berth("run", "-d", "--name", "cli-bg", "busybox", "sh", "-c",
                     "echo hello; sleep 30")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    ps = daemon.berth("ps").stdout.decode().splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                             "NAMES"]
    row = next(line for line in ps if line.endswith("cli-bg"))
    assert row.startswith(cid[:12]) and "Up " in row
    assert '"sh -c echo hello; s…"' in row          # COMMAND cut at 20 as docker ps does
    for _ in range(50):
        logs = daemon.berth("logs", "cli-bg")
        if logs.stdout:
            break
    assert logs.stdout == b"hello\n"
    stamped = daemon.berth("logs", "-t", "--tail", "1", "cli-bg").stdout
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello\n", stamped)
    p = daemon.berth("rm", "cli-bg")
    assert p.returncode == 1 and b"container is running" in p.stderr
    assert daemon.berth("rm", "-f", "cli-bg").stdout == b"cli-bg\n"
    assert "cli-bg" not in daemon.berth("ps", "-a").stdout.decode()


def test_ps_all_shows_exited(daemon):
    daemon.berth("run", "--name", "cli-exited", "busybox", "sh", "-c", "exit 2")
    assert "cli-exited" not in daemon.berth("ps").stdout.decode()
    row = next(line for line in daemon.berth("ps", "-a").stdout.decode().splitlines()
               if line.endswith("cli-exited"))
    assert "Exited (2)" in row


def test_exit_codes_for_daemon_errors(daemon):
    p = daemon.berth("run", "--rm", "no-such-image")
    # the pull goes to docker.io through the tests' dead proxy (engine_daemon.py) and fails
    assert p.returncode == 125 and b"registry-1.docker.io" in p.stderr, p.stderr
    p = daemon.berth("run", "--rm", "busybox", "/no/such/command")
    assert p.returncode == 127, p.stderr
    p = daemon.berth("run", "--bogus-flag", "busybox")
    assert p.returncode == 125
    p = daemon.berth("logs", "nosuch")
    assert p.returncode == 1 and b"No such container: nosuch" in p.stderr


def test_images_version_info(daemon):
    images = daemon.berth("images").stdout.decode().splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in images)
    version = daemon.berth("version")
    assert version.returncode == 0
    assert f"Version:           {VERSION}" in version.stdout.decode()
    assert "Server: berth" in version.stdout.decode()
    info = daemon.berth("info")
    assert info.returncode == 0 and b"Logging Driver: json-file" in info.stdout


def test_host_selection(daemon, short_tmp):
    assert daemon.berth("ps").returncode == 0          # BERTH_HOST from the fixture
    env = daemon.env()
    del env["BERTH_HOST"]
    env["DOCKER_HOST"] = f"unix://{short_tmp}/nothing.sock"
    berth = str(VENV_BIN / "berth")
    p = subprocess.run([berth, "-H", daemon.host, "ps"], env=env, capture_output=True)
    assert p.returncode == 0, p.stderr                  # -H wins over DOCKER_HOST
    p = subprocess.run([berth, "ps"], env=env, capture_output=True)
    assert p.returncode == 1 and b"Cannot connect to the berth daemon" in p.stderr
    assert f"{short_tmp}/nothing.sock".encode() in p.stderr


def test_logs_follow_until_the_container_exits(daemon):
    assert daemon.berth("run", "-d", "--name", "cli-follow", "busybox", "sh", "-c",
                        "echo a; sleep 1; echo b").returncode == 0
    p = daemon.berth("logs", "-f", "cli-follow", timeout=30)
    assert (p.returncode, p.stdout) == (0, b"a\nb\n")
