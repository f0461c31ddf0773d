"""The healthcheck state machine of engine/health.py as pure logic (no daemon): dockerd's
transitions (starting -> healthy/unhealthy, FailingStreak, the start period's grace), the wait
before each probe (interval, start interval, never past the start period), the probe command of
CMD / CMD-SHELL / NONE, the image's HEALTHCHECK merged, output cut at 4096 bytes, and Go's
duration text in the timeout message."""
from __future__ import annotations

import pytest

from engine import health

S = 1_000_000_000


def result(start: int, code: int) -> health.ProbeResult:
    return health.ProbeResult(start=start, end=start + 1, exit_code=code, output="")


def settings(**hc) -> health.Settings:
    return health.Settings({"Healthcheck": {"Test": ["CMD", "true"], **hc}})


def test_defaults_are_dockerds():
    s = health.Settings({"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Retries": 0}})
    assert (s.interval, s.timeout, s.start_period, s.start_interval, s.retries) == (
        30 * S, 30 * S, 0, 5 * S, 3)


def test_healthy_then_unhealthy_after_retries_then_healthy_again():
    s = settings(Retries=2)
    h = {"Status": health.STARTING, "FailingStreak": 0, "Log": None}
    assert health.apply_result(h, result(1, 0), s, 0) == health.HEALTHY
    assert health.apply_result(h, result(2, 1), s, 0) == health.HEALTHY
    assert h["FailingStreak"] == 1
    # any code but 0 is a failure (dockerd: "including invalid exit code"), -1 a timeout
    assert health.apply_result(h, result(3, 2), s, 0) == health.UNHEALTHY
    assert health.apply_result(h, result(4, -1), s, 0) == health.UNHEALTHY
    assert h["FailingStreak"] == 3
    assert health.apply_result(h, result(5, 0), s, 0) == health.HEALTHY
    assert h["FailingStreak"] == 0


def test_log_keeps_the_last_five():
    s = settings()
    h = {"Status": health.STARTING, "FailingStreak": 0, "Log": None}
    for i in range(8):
        health.apply_result(h, result(i, 0), s, 0)
    assert [r["Start"] for r in h["Log"]] == [3, 4, 5, 6, 7]


def test_failures_in_the_start_period_do_not_count_while_starting():
    s = settings(StartPeriod=10 * S, Retries=1)
    h = {"Status": health.STARTING, "FailingStreak": 0}
    assert health.apply_result(h, result(5 * S, 1), s, 0) == health.STARTING
    assert h["FailingStreak"] == 0
    # a probe that began after the period counts
    assert health.apply_result(h, result(11 * S, 1), s, 0) == health.UNHEALTHY
    # once healthy, failures count even inside the start period
    h = {"Status": health.STARTING, "FailingStreak": 0}
    health.apply_result(h, result(1 * S, 0), s, 0)
    assert health.apply_result(h, result(2 * S, 1), s, 0) == health.UNHEALTHY


def test_wait_before_each_probe():
    s = settings(Interval=30 * S, StartPeriod=60 * S, StartInterval=2 * S)
    assert health.next_wait(s, 0, 0, health.STARTING) == 2 * S
    assert health.next_wait(s, 0, 0, health.HEALTHY) == 30 * S
    # never past the end of the start period, then the interval
    assert health.next_wait(s, 0, 59 * S, health.STARTING) == 1 * S
    assert health.next_wait(s, 0, 45 * S, health.HEALTHY) == 15 * S
    assert health.next_wait(s, 0, 60 * S, health.STARTING) == 30 * S
    # no start period: the interval from the start
    assert health.next_wait(settings(Interval=S), 0, 0, health.STARTING) == S


@pytest.mark.parametrize("config, command", [
    ({}, None),
    ({"Healthcheck": {"Test": []}}, None),
    ({"Healthcheck": {"Test": ["NONE"]}}, None),
    ({"Healthcheck": {"Test": ["BOGUS", "x"]}}, None),
    ({"Healthcheck": {"Test": ["CMD", "cat", "/f"]}}, ["cat", "/f"]),
    ({"Healthcheck": {"Test": ["CMD-SHELL", "echo hi"]}}, ["/bin/sh", "-c", "echo hi"]),
    ({"Shell": ["/bin/ash", "-ec"], "Healthcheck": {"Test": ["CMD-SHELL", "x"]}},
     ["/bin/ash", "-ec", "x"]),
])
def test_probe_command(config, command):
    assert health.probe_command(config) == command


def test_image_healthcheck_merged_as_dockerd():
    image = {"Healthcheck": {"Test": ["CMD", "img"], "Interval": 5 * S, "Retries": 7}}
    config: dict = {}
    health.merge_image_healthcheck(config, image)
    assert config["Healthcheck"] == image["Healthcheck"]
    config = {"Healthcheck": {"Test": ["CMD-SHELL", "mine"], "Interval": S}}
    health.merge_image_healthcheck(config, image)
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "mine"], "Interval": S, "Retries": 7}
    config = {"Healthcheck": {"Test": ["NONE"]}}       # --no-healthcheck
    health.merge_image_healthcheck(config, image)
    assert health.probe_command(config) is None
    config = {"Healthcheck": {"Interval": S}}          # --health-interval alone
    health.merge_image_healthcheck(config, image)
    assert config["Healthcheck"]["Test"] == ["CMD", "img"]


def test_output_cut_at_4096_bytes():
    assert health.cut_output(b"x" * 4096, False) == "x" * 4096
    assert health.cut_output(b"x" * 4096, True) == "x" * 4096 + "..."
    assert health.cut_output(b"\xff", False) == "\ufffd"


@pytest.mark.parametrize("ns, text", [
    (30 * S, "30s"), (S + S // 2, "1.5s"), (500_000_000, "500ms"), (1_000_000, "1ms"),
    (1_500, "1.5µs"), (90 * S, "1m30s"), (3600 * S, "1h0m0s"), (0, "0s"),
])
def test_go_duration(ns, text):
    assert health.go_duration(ns) == text


def test_views():
    assert health.view(None) is None
    assert health.view({"Status": health.STARTING, "FailingStreak": 0, "Log": []}) == {
        "Status": "starting", "FailingStreak": 0, "Log": []}
    v = health.view({"Status": "healthy", "FailingStreak": 0,
                     "Log": [{"Start": S, "End": 2 * S, "ExitCode": 0, "Output": "ok"}]})
    assert v["Log"] == [{"Start": "1970-01-01T00:00:01Z", "End": "1970-01-01T00:00:02Z",
                         "ExitCode": 0, "Output": "ok"}]
