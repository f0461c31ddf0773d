"""Numbers given as text are read only when they are 0-9: str.isdigit() also takes "²" and "³",
which int() then refuses, and berthd answered 500 (found by the long schemathesis run)."""
from __future__ import annotations


def _created(daemon, body: dict):
    return daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body})


def test_a_signal_of_non_ascii_digits_is_a_bad_request(daemon):
    cid = _created(daemon, {}).json()["Id"]
    for verb in ("stop", "restart", "kill"):
        r = daemon.api("POST", f"/containers/{cid}/{verb}?signal=%C2%B3&t=0")
        assert r.status == 400 and b"invalid signal" in r.body.lower(), (verb, r)


def test_a_log_max_file_of_non_ascii_digits_is_refused_at_create(daemon):
    r = _created(daemon, {"HostConfig": {"LogConfig": {"Type": "json-file",
                                                       "Config": {"max-file": "²"}}}})
    assert r.status == 400, r


def test_a_user_of_non_ascii_digits_is_a_name_not_an_id(daemon):
    cid = _created(daemon, {"User": "²"}).json()["Id"]
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert b"invalid literal" not in r.body and b"unable to find user" in r.body, r
