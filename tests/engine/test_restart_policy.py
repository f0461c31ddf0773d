"""Restart policies: the restart manager's decisions and backoff (pure), and berthd acting on
them: restarts after exits the user did not cause, RestartCount, a stop or kill ending it."""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from engine import restart_policy
from engine.restart_policy import RestartManager


def test_on_failure_counts_its_retries():
    m = RestartManager("on-failure", 2)
    assert m.should_restart(0, False, 1.0) is None            # success: not restarted
    assert m.should_restart(1, False, 1.0) == pytest.approx(0.2)
    assert m.should_restart(1, False, 1.0) == pytest.approx(0.4)
    assert m.should_restart(1, False, 1.0) is None            # two retries used
    assert m.restart_count == 2


def test_backoff_doubles_to_a_minute_and_resets_after_a_long_run():
    m = RestartManager("always")
    delays = [m.should_restart(0, False, 0.5) for _ in range(12)]
    assert delays[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8]) and delays[-1] == 60.0
    assert m.should_restart(0, False, 10.0) == pytest.approx(0.1)


def test_policies_and_user_stops():
    assert RestartManager("no").should_restart(1, False, 1) is None
    assert RestartManager("always").should_restart(0, True, 1) is not None
    assert RestartManager("unless-stopped").should_restart(0, True, 1) is None
    assert RestartManager("unless-stopped").should_restart(0, False, 1) is not None
    canceled = RestartManager("always")
    canceled.cancel()
    assert canceled.should_restart(1, False, 1) is None


def test_parse_and_validate_as_docker():
    assert restart_policy.parse("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert restart_policy.parse("always") == {"Name": "always", "MaximumRetryCount": 0}
    with pytest.raises(ValueError, match="must be an integer"):
        restart_policy.parse("on-failure:x")
    assert restart_policy.validate({"Name": "always", "MaximumRetryCount": 2}) == (
        "invalid restart policy: maximum retry count can only be used with 'on-failure'")
    assert "unknown policy 'sometimes'" in restart_policy.validate({"Name": "sometimes"})
    assert restart_policy.validate({"Name": "on-failure", "MaximumRetryCount": 5}) is None


def _inspect(daemon, cid):
    return daemon.api("GET", f"/containers/{cid}/json").json()


def _wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_on_failure_2_restarts_twice_then_stays_exited(daemon):
    since = time.time()
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sh", "-c", "echo run; exit 1"],
        "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}})
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    c = _wait_until(lambda: (lambda c: c if c["RestartCount"] == 2 and c["State"]["Status"]
                             == "exited" else None)(_inspect(daemon, cid)))
    assert c["State"]["ExitCode"] == 1 and not c["State"]["Restarting"]
    assert c["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    f = urllib.parse.quote(json.dumps({"container": {cid: True}, "event": {"start": True,
                                                                            "die": True}}))
    r = daemon.api("GET", f"/events?since={since:.9f}&until={time.time():.9f}&filters={f}")
    actions = [json.loads(line)["Action"] for line in r.body.splitlines()]
    assert actions == ["start", "die"] * 3
    r = daemon.api("GET", f"/containers/{cid}/logs?stdout=1")
    assert r.body.count(b"run\n") == 3
    # a start by the user begins afresh
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    assert _inspect(daemon, cid)["RestartCount"] == 0


def test_always_restarts_until_the_user_stops_it(daemon):
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.2; exit 0"],
        "HostConfig": {"RestartPolicy": {"Name": "always"}}})
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    _wait_until(lambda: _inspect(daemon, cid)["RestartCount"] >= 2)
    assert _inspect(daemon, cid)["State"]["Running"]
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1").status == 204
    count = _inspect(daemon, cid)["RestartCount"]
    time.sleep(1.0)
    c = _inspect(daemon, cid)
    assert c["State"]["Status"] == "exited" and c["RestartCount"] == count


def test_a_kill_is_not_followed_by_a_restart(daemon):
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sleep", "60"],
        "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}})
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 204
    time.sleep(0.5)
    c = _inspect(daemon, cid)
    assert (c["State"]["Status"], c["State"]["ExitCode"], c["RestartCount"]) == (
        "exited", 137, 0)
