"""Healthchecks through the docker CLI, run by berthd as dockerd runs them: --health-cmd and its
durations, probes as execs (exec_create/exec_start/exec_die events), State.Health in inspect,
"(healthy)" in docker ps, health_status events, the health filter, --no-healthcheck, a probe
killed at its timeout, the start period and start interval, no probes while paused or stopped
("unhealthy" then, as dockerd), and probes that go on after berthd restarts.

Intervals are fractions of a second (dockerd's minimum is 1ms) to keep each test short."""
from __future__ import annotations

import json
import signal
import time

import pytest

from tests.helpers.engine_daemon import BerthDaemon

FAST = ("--health-interval", "100ms")


def run(daemon, name: str, *flags: str, cmd: tuple[str, ...] = ("sleep", "60")) -> str:
    p = daemon.docker("run", "-d", "--name", name, *flags, "busybox", *cmd)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def state(daemon, name: str) -> dict:
    r = daemon.api("GET", f"/containers/{name}/json")
    assert r.status == 200, r
    return r.json()["State"]


def wait_health(daemon, name: str, status: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = state(daemon, name).get("Health")
        if health and health["Status"] == status:
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: health {health}, not {status}")
        time.sleep(0.05)


def ps_names(daemon, *flags: str) -> set[str]:
    p = daemon.docker("ps", "--format", "{{.Names}}", *flags)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.decode().split())


def events(daemon, since: float, *flags: str) -> list[dict]:
    p = daemon.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}",
                      "--format", "{{json .}}", *flags)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.decode().splitlines()]


def test_healthy_and_unhealthy_containers(daemon):
    t0 = time.time()
    good = run(daemon, "hc-good", "--health-cmd", "echo fine", *FAST)
    bad = run(daemon, "hc-bad", "--health-cmd", "echo broken >&2; exit 1", *FAST,
              "--health-retries", "2")
    health = wait_health(daemon, "hc-good", "healthy")
    assert health["FailingStreak"] == 0
    entry = health["Log"][-1]
    assert entry["ExitCode"] == 0 and entry["Output"] == "fine\n"
    assert entry["Start"] <= entry["End"]
    health = wait_health(daemon, "hc-bad", "unhealthy")
    assert health["FailingStreak"] >= 2
    assert health["Log"][-1]["ExitCode"] == 1 and health["Log"][-1]["Output"] == "broken\n"
    time.sleep(0.8)     # more probes: the log keeps the last five
    assert len(state(daemon, "hc-bad")["Health"]["Log"]) == 5
    # docker ps shows it after "Up ..."
    p = daemon.docker("ps", "--format", "{{.Names}} {{.Status}}", "--filter", "name=hc-")
    rows = dict(line.split(" ", 1) for line in p.stdout.decode().splitlines())
    assert rows["hc-good"].startswith("Up ") and rows["hc-good"].endswith(" (healthy)")
    assert rows["hc-bad"].endswith(" (unhealthy)")
    # health_status events, once per change, bounded with --since/--until
    evs = events(daemon, t0, "--filter", "event=health_status")
    assert [(e["id"], e["Action"]) for e in evs if e["id"] == good] == [
        (good, "health_status: healthy")]
    assert [(e["id"], e["Action"]) for e in evs if e["id"] == bad] == [
        (bad, "health_status: unhealthy")]
    # each probe is an exec, as dockerd logs it
    actions = [e["Action"] for e in events(daemon, t0, "--filter", f"container={good}")]
    assert "exec_create: /bin/sh -c echo fine" in actions
    assert "exec_start: /bin/sh -c echo fine" in actions
    assert "exec_die" in actions


def test_health_filter(daemon):
    run(daemon, "hf-good", "--health-cmd", "true", *FAST)
    run(daemon, "hf-bad", "--health-cmd", "false", *FAST, "--health-retries", "1")
    run(daemon, "hf-slow", "--health-cmd", "true", "--health-interval", "1h")
    run(daemon, "hf-none")
    run(daemon, "hf-off", "--no-healthcheck")
    wait_health(daemon, "hf-good", "healthy")
    wait_health(daemon, "hf-bad", "unhealthy")
    names = {"hf-good", "hf-bad", "hf-slow", "hf-none", "hf-off"}
    assert ps_names(daemon, "--filter", "health=healthy") & names == {"hf-good"}
    assert ps_names(daemon, "--filter", "health=unhealthy") & names == {"hf-bad"}
    assert ps_names(daemon, "--filter", "health=starting") & names == {"hf-slow"}
    assert ps_names(daemon, "--filter", "health=none") & names == {"hf-none", "hf-off"}
    assert ps_names(daemon, "--filter", "health=healthy", "--filter",
                    "health=starting") & names == {"hf-good", "hf-slow"}
    slow = state(daemon, "hf-slow")["Health"]
    assert slow == {"Status": "starting", "FailingStreak": 0, "Log": []}     # as dockerd
    p = daemon.docker("ps", "--filter", "health=sick")
    assert p.returncode != 0
    assert b"Unrecognised filter value for health: sick" in p.stderr


def test_no_healthcheck(daemon):
    run(daemon, "hn-off", "--no-healthcheck")
    info = daemon.api("GET", "/containers/hn-off/json").json()
    assert info["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert "Health" not in info["State"]
    p = daemon.docker("ps", "--format", "{{.Status}}", "--filter", "name=hn-off")
    assert "(" not in p.stdout.decode()


def test_probe_past_its_timeout_is_killed_and_fails(daemon):
    run(daemon, "ht-slow", "--health-cmd", "echo started; sleep 30", *FAST,
        "--health-timeout", "200ms", "--health-retries", "1")
    health = wait_health(daemon, "ht-slow", "unhealthy")
    entry = health["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (200ms): started\n"
    # the killed probes do not pile up: at most the one in flight runs
    p = daemon.docker("top", "ht-slow", "-o", "pid,args")
    assert p.stdout.decode().count("sleep 30") <= 1, p.stdout


def test_start_period_and_start_interval(daemon):
    if b"--health-start-interval" not in daemon.docker("run", "--help").stdout:
        pytest.skip("this docker CLI has no --health-start-interval (20.10)")
    # failures inside the start period do not count while it is starting
    run(daemon, "hs-grace", "--health-cmd", "false", *FAST, "--health-retries", "1",
        "--health-start-period", "2s", "--health-start-interval", "100ms")
    time.sleep(1.0)
    health = state(daemon, "hs-grace")["Health"]
    assert health["Status"] == "starting" and health["FailingStreak"] == 0
    assert health["Log"] and all(e["ExitCode"] == 1 for e in health["Log"])
    wait_health(daemon, "hs-grace", "unhealthy")
    # during the start period the start interval is used, not the (long) interval
    run(daemon, "hs-quick", "--health-cmd", "true", "--health-interval", "1h",
        "--health-start-period", "1h", "--health-start-interval", "100ms")
    wait_health(daemon, "hs-quick", "healthy", timeout=5)


def test_no_probes_while_paused_or_stopped(daemon):
    run(daemon, "hp-box", "--health-cmd", "true", *FAST)
    wait_health(daemon, "hp-box", "healthy")
    assert daemon.docker("pause", "hp-box").returncode == 0
    # as dockerd: a monitor stopped says unhealthy (no event for it)
    health = state(daemon, "hp-box")["Health"]
    assert health["Status"] == "unhealthy"
    time.sleep(0.5)
    assert state(daemon, "hp-box")["Health"]["Log"] == health["Log"]
    t0 = time.time()
    assert daemon.docker("unpause", "hp-box").returncode == 0
    wait_health(daemon, "hp-box", "healthy")
    assert [e["Action"] for e in events(daemon, t0, "--filter", "container=hp-box",
                                        "--filter", "event=health_status")] == [
        "health_status: healthy"]
    assert daemon.docker("stop", "-t", "0", "hp-box").returncode == 0
    health = state(daemon, "hp-box")["Health"]
    assert health["Status"] == "unhealthy"
    time.sleep(0.4)
    assert state(daemon, "hp-box")["Health"]["Log"] == health["Log"]
    assert "hp-box" in ps_names(daemon, "-a", "--filter", "health=unhealthy")
    # a start begins afresh: starting, then healthy
    assert daemon.docker("start", "hp-box").returncode == 0
    assert state(daemon, "hp-box")["Health"]["Status"] in ("starting", "healthy")
    wait_health(daemon, "hp-box", "healthy")


@pytest.fixture
def private():
    d = BerthDaemon()
    try:
        yield d.start()
    finally:
        d.cleanup()


def test_probes_go_on_after_berthd_restarts(private):
    run(private, "hr-live", "--health-cmd", "true", *FAST)
    wait_health(private, "hr-live", "healthy")
    private.kill(signal.SIGKILL)
    private.start()
    first = state(private, "hr-live")["Health"]
    assert first["Status"] == "healthy"
    deadline = time.monotonic() + 10
    while state(private, "hr-live")["Health"]["Log"][-1]["Start"] == first["Log"][-1]["Start"]:
        assert time.monotonic() < deadline, "no probe ran after berthd's restart"
        time.sleep(0.05)
    assert state(private, "hr-live")["Health"]["Status"] == "healthy"
