"""--init (issue 9's item, done for the suite): a static init (docker-init, which is Debian's
tini-static, or tini-static itself) bound read-only at /sbin/docker-init runs as pid 1 in front
of the program, forwards signals to it and reaps; it was accepted and ignored before."""
from __future__ import annotations

import subprocess

import pytest

from tests.helpers.engine_daemon import VENV_BIN, BerthDaemon


@pytest.mark.parametrize("runtime", ["lowrt", "runc"])
def test_init_is_pid_1_and_passes_on_the_programs_exit_code(daemon, runtime):
    p = daemon.docker("run", "--rm", "--init", "--runtime", runtime, "busybox", "sh", "-c",
                      "tr '\\0' ' ' < /proc/1/cmdline; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.decode().startswith("/sbin/docker-init -- sh -c ")


def test_stop_of_a_sleep_under_init_ends_it_with_sigterm(daemon):
    # as pid 1, sleep has no default action for SIGTERM and waits for the SIGKILL after the
    # stop timeout (exit 137); under the init it is pid 2, and SIGTERM ends it (143)
    assert daemon.docker("run", "-d", "--init", "--name", "init-stop", "busybox", "sleep",
                         "60").returncode == 0
    assert daemon.docker("stop", "-t", "30", "init-stop").returncode == 0
    state = daemon.api("GET", "/containers/init-stop/json").json()
    assert state["State"]["ExitCode"] == 143
    assert state["HostConfig"]["Init"] is True


def test_berth_run_init(daemon):
    p = daemon.berth("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"/sbin/docker-init\0--\0cat\0")


def test_daemon_init_is_the_default_a_container_can_turn_off():
    d = BerthDaemon(extra_args=("--init",))
    try:
        d.start()
        p = d.docker("run", "--rm", "busybox", "cat", "/proc/1/cmdline")
        assert p.stdout.startswith(b"/sbin/docker-init\0"), p.stderr
        p = d.docker("run", "--rm", "--init=false", "busybox", "cat", "/proc/1/cmdline")
        assert p.stdout == b"cat\0/proc/1/cmdline\0", p.stderr
        assert "/" in d.api("GET", "/info").json()["InitBinary"]
    finally:
        d.cleanup()


def test_berthd_refuses_an_init_path_that_is_not_there(short_tmp):
    p = subprocess.run([str(VENV_BIN / "berthd"), "--init-path", "/no/such/init", "-H",
                        f"unix://{short_tmp}/s.sock", "--data-root", str(short_tmp / "d"),
                        "--exec-root", str(short_tmp / "x")], capture_output=True, timeout=30)
    assert p.returncode == 1   # as dockerd for a configuration it cannot use
    assert b"no init binary: /no/such/init is not an executable" in p.stderr
