"""Issue 2, done-when 4: containers outlive berthd and berth-supervisor (SIGKILL or SIGTERM);
a restarted berthd lists them again, follows their logs and records exits it missed."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.helpers.engine_daemon import BerthDaemon

COUNTER = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture
def private():
    daemon = BerthDaemon()
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def log_lines(daemon, name: str) -> list[str]:
    return daemon.docker("logs", name).stdout.decode().splitlines()


def wait_for_lines(daemon, name: str, count: int) -> list[str]:
    for _ in range(200):
        lines = log_lines(daemon, name)
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{name} logged {lines}, not {count} lines")


def wait_until_gone(pid: int) -> None:
    for _ in range(300):
        if not alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def test_sigkill_of_berthd_and_supervisor_leaves_the_container_running(private):
    assert private.docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                          COUNTER).returncode == 0
    pid = private.api("GET", "/containers/survivor/json").json()["State"]["Pid"]
    before = wait_for_lines(private, "survivor", 2)
    assert before and before[0] == "line 0"
    supervisor = private.supervisor_pid()
    private.kill(signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    time.sleep(1.0)                          # it keeps running (and logging) meanwhile
    assert alive(pid)
    private.start()
    assert private.supervisor_pid() != supervisor
    ps = private.docker("ps").stdout.decode()
    assert "survivor" in ps and "Up " in ps
    assert private.api("GET", "/containers/survivor/json").json()["State"]["Pid"] == pid
    time.sleep(0.5)
    after = log_lines(private, "survivor")
    numbers = [int(line.split()[1]) for line in after]
    assert numbers == list(range(len(numbers)))          # nothing lost, nothing twice
    assert len(after) > len(before) + 5                  # written while berthd was down, and after
    # the restarted berthd watches it again: a stop is seen and recorded
    assert private.api("POST", "/containers/survivor/stop?t=1").status == 204
    state = private.api("GET", "/containers/survivor/json").json()["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    assert not alive(pid)


def test_sigterm_of_berthd_does_not_stop_containers(private):
    assert private.docker("run", "-d", "--name", "live", "busybox", "sleep", "30").returncode == 0
    pid = private.api("GET", "/containers/live/json").json()["State"]["Pid"]
    assert private.stop() == 0
    assert private.supervisor_pid() is None or not alive(private.supervisor_pid())
    assert alive(pid)
    private.start()
    state = private.api("GET", "/containers/live/json").json()["State"]
    assert state["Running"] and state["Pid"] == pid


def test_exit_while_berthd_is_down_is_recorded(private):
    assert private.docker("run", "-d", "--name", "brief", "busybox", "sh", "-c",
                          "sleep 1; exit 5").returncode == 0
    pid = private.api("GET", "/containers/brief/json").json()["State"]["Pid"]
    private.kill(signal.SIGKILL)
    os.kill(private.supervisor_pid(), signal.SIGKILL)
    wait_until_gone(pid)                     # it exits while nothing above its shim runs
    private.start()
    for _ in range(50):
        state = private.api("GET", "/containers/brief/json").json()["State"]
        if not state["Running"]:
            break
        time.sleep(0.1)
    assert state["Status"] == "exited" and state["ExitCode"] == 5


def test_berthd_restarts_a_supervisor_that_dies(private):
    assert private.docker("run", "-d", "--name", "steady", "busybox", "sleep", "30").returncode == 0
    old = private.supervisor_pid()
    os.kill(old, signal.SIGKILL)
    for _ in range(100):
        new = private.supervisor_pid()
        if new and new != old and alive(new):
            break
        time.sleep(0.1)
    assert new != old
    p = private.docker("rm", "-f", "steady")
    assert p.returncode == 0, p.stderr
    assert private.docker("run", "--rm", "busybox", "echo", "ok").stdout == b"ok\n"


def test_restarted_berthd_adopts_the_supervisor_still_running(private):
    assert private.docker("run", "-d", "--name", "adopted", "busybox", "sleep", "30").returncode == 0
    supervisor = private.supervisor_pid()
    pidfile = private.exec_root / "berthd.pid"
    assert int(pidfile.read_text()) == private.pid()
    private.kill(signal.SIGKILL)
    private.start()
    assert int(pidfile.read_text()) == private.pid()
    assert private.supervisor_pid() == supervisor and alive(supervisor)   # not a second one
    assert "adopted" in private.docker("ps").stdout.decode()
    assert private.docker("rm", "-f", "adopted").returncode == 0
    assert private.stop() == 0
    wait_until_gone(supervisor)            # berthd stops the supervisor it adopted, too


def test_restart_policies_when_berthd_starts(private):
    # stopped by the user: `always` is started again with berthd, `unless-stopped` is not
    for name, policy in (("always-stopped", "always"), ("unless", "unless-stopped")):
        assert private.docker("run", "-d", "--name", name, "--restart", policy, "busybox",
                              "sleep", "30").returncode == 0
        assert private.docker("stop", "-t", "0", name).returncode == 0
    # exits while berthd is down, with `on-failure`: started again when berthd is back
    assert private.docker("run", "-d", "--name", "failing", "--restart", "on-failure",
                          "busybox", "sh", "-c", "sleep 1; exit 3").returncode == 0
    pid = private.api("GET", "/containers/failing/json").json()["State"]["Pid"]
    private.kill(signal.SIGKILL)
    os.kill(private.supervisor_pid(), signal.SIGKILL)
    wait_until_gone(pid)
    private.start()

    def status(name):
        return private.api("GET", f"/containers/{name}/json").json()["State"]["Status"]

    for _ in range(100):
        if status("always-stopped") == "running" and \
                private.api("GET", "/containers/failing/json").json()["RestartCount"] >= 1:
            break
        time.sleep(0.1)
    assert status("always-stopped") == "running"
    assert status("unless") == "exited"
    assert private.api("GET", "/containers/failing/json").json()["RestartCount"] >= 1
    private.docker("rm", "-f", "always-stopped", "unless", "failing")
