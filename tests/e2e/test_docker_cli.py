"""Issue 2, done-when 2: the unchanged docker CLI and docker-py against berthd."""
from __future__ import annotations

import time

import pytest


def test_docker_run_detached_ps_logs_rm(daemon):
    # the issue's own sequence, word for word
    p = daemon.docker("run", "-d", "--name", "x", "busybox", "sleep", "30")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.decode().strip()
    ps = daemon.docker("ps").stdout.decode().splitlines()
    row = next(line for line in ps if line.endswith(" x"))
    assert row.startswith(cid[:12]) and "busybox" in row and '"sleep 30"' in row and "Up " in row
    logs = daemon.docker("logs", "x")
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"", b"")
    p = daemon.docker("rm", "-f", "x")
    assert p.returncode == 0 and p.stdout == b"x\n"
    assert not any(line.endswith(" x") for line in daemon.docker("ps", "-a").stdout.decode()
                   .splitlines())
    # and logs with something in them, out and err
    assert daemon.docker("run", "-d", "--name", "talker", "busybox", "sh", "-c",
                         "echo ready; echo oops >&2; sleep 30").returncode == 0
    for _ in range(100):
        logs = daemon.docker("logs", "talker")
        if logs.stdout and logs.stderr:
            break
        time.sleep(0.05)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"ready\n", b"oops\n")


def test_docker_run_attached_exit_code_and_stdin(daemon):
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 9")
    assert (p.returncode, p.stdout, p.stderr) == (9, b"out\n", b"err\n")
    p = daemon.docker("run", "--rm", "-i", "busybox", "cat", input=b"piped\n")
    assert (p.returncode, p.stdout) == (0, b"piped\n")
    p = daemon.docker("run", "--name", "kept", "busybox", "true")
    assert p.returncode == 0
    assert "Exited (0)" in daemon.docker("ps", "-a", "--filter", "name=kept").stdout.decode()


def test_docker_run_missing_command_exits_127(daemon):
    p = daemon.docker("run", "--rm", "busybox", "no-such-command")
    assert p.returncode == 127, p.stderr
    assert b"Error response from daemon" in p.stderr


def test_a_failed_start_under_rm_gives_its_waiter_no_error(daemon):
    # dockerd clears the start error when the container is removed (SetRemoved), so the CLI's
    # wait for removal ends quietly; with the error it printed "Error waiting for container"
    p = daemon.docker("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert p.returncode != 0 and b"nosuchuser" in p.stderr, p.stderr
    assert b"Error waiting for container" not in p.stderr, p.stderr


def test_docker_version_and_info(daemon):
    assert daemon.docker("version").returncode == 0
    info = daemon.docker("info")
    assert info.returncode == 0 and b"Server Version: " in info.stdout


def test_docker_py_run_returns_output(daemon):
    client = daemon.docker_py()
    assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_runtime_per_container(daemon):
    p = daemon.docker("run", "--rm", "--runtime", "runc", "busybox", "echo", "through runc")
    assert (p.returncode, p.stdout) == (0, b"through runc\n"), p.stderr
    p = daemon.docker("run", "--rm", "--runtime", "nosuch", "busybox", "true")
    assert p.returncode == 125 and b"unknown or invalid runtime name: nosuch" in p.stderr


def test_parallel_runs_each_get_their_own_output(daemon):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(
            lambda i: daemon.docker("run", "--rm", "busybox", "echo", f"run {i}"), range(6)))
    assert [(r.returncode, r.stdout) for r in results] == [
        (0, f"run {i}\n".encode()) for i in range(6)], [r.stderr for r in results]


@pytest.mark.parametrize("runtime", ["lowrt", "runc"])
@pytest.mark.parametrize("program, code, says", [
    ("/etc/passwd", 126, 'exec: "/etc/passwd": permission denied'),
    ("/etc", 126, 'exec: "/etc": permission denied'),
    ("no-such-command", 127, 'exec: "no-such-command": executable file not found in $PATH'),
    ("/no/such/file", 127, 'exec: "/no/such/file": stat /no/such/file: no such file'),
])
def test_docker_run_exit_code_says_why_the_program_could_not_start(daemon, runtime, program,
                                                                   code, says):
    # both runtimes refuse it at create with the exec error, which berthd maps as dockerd does:
    # 126 cannot be executed, 127 not found
    p = daemon.docker("run", "--rm", "--runtime", runtime, "busybox", program)
    assert p.returncode == code, p.stderr
    assert says.encode() in p.stderr
