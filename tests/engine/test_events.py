"""Events: dockerd's filters (pure), and GET /events: the remembered events since a time, live
ones until a time, the stream left open without one, the message shape."""
from __future__ import annotations

import json
import time
import urllib.parse

from engine.events import EventLog, Filter
from tests.helpers.engine_daemon import Hijacked


def _event(type_="container", action="start", actor="abc123", **attrs):
    return {"Type": type_, "Action": action, "Actor": {"ID": actor, "Attributes": attrs},
            "scope": "local", "time": 0, "timeNano": 0}


def test_filters_as_dockerd():
    start = _event(name="web", image="busybox", team="a")
    assert Filter({}).matches(start)
    assert Filter({"type": ["container"]}).matches(start)
    assert not Filter({"type": ["image"]}).matches(start)
    assert Filter({"container": ["web"]}).matches(start)
    assert Filter({"container": ["abc"]}).matches(start)              # an ID prefix
    assert Filter({"container": ["we"]}).matches(start)               # a name prefix, too
    assert not Filter({"container": ["other"]}).matches(start)
    assert Filter({"event": ["start", "die"]}).matches(start)
    assert not Filter({"event": ["die"]}).matches(start)
    assert Filter({"image": ["busybox"]}).matches(start)
    assert Filter({"image": ["busybox"]}).matches(_event(image="busybox:latest"))  # tag left off
    assert Filter({"label": ["team=a"]}).matches(start)
    assert Filter({"label": ["team"]}).matches(start)
    assert not Filter({"label": ["team=b"]}).matches(start)
    exec_start = _event(action="exec_start: sh -c true", execID="e")
    assert Filter({"event": ["exec_start"]}).matches(exec_start)      # matched as a prefix
    assert not Filter({"event": ["start"]}).matches(exec_start)
    pull = _event("image", "pull", "busybox:latest", name="busybox:latest")
    assert Filter({"image": ["busybox"]}).matches(pull)
    assert not Filter({"container": ["web"]}).matches(pull)


def test_event_log_remembers_256_and_replays_by_time():
    log = EventLog()
    for i in range(300):
        log.log("container", "start", f"c{i}", {})
    past, sub = log.subscribe(1, 0, Filter({}))
    sub.close()
    assert len(past) == 256 and past[0]["Actor"]["ID"] == "c44"
    past, sub = log.subscribe(0, 0, Filter({}))      # no since/until: nothing from the past
    sub.close()
    assert past == []


def _read_events(conn: Hijacked) -> list[dict]:
    from tests.helpers.engine_daemon import dechunk
    body = dechunk(conn.buf)
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_events_since_until_and_filters(daemon):
    since = time.time()
    r = daemon.api("POST", "/containers/create?name=evented",
                   {"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"], "Labels": {"l": "v"}})
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 3
    assert daemon.api("POST", f"/containers/{cid}/rename?name=evented2").status == 204
    assert daemon.api("DELETE", f"/containers/{cid}").status == 204
    until = time.time()
    f = urllib.parse.quote(json.dumps({"container": {cid: True}}))
    r = daemon.api("GET", f"/events?since={since:.9f}&until={until:.9f}&filters={f}")
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    events = [json.loads(line) for line in r.body.splitlines()]
    assert [e["Action"] for e in events] == ["create", "start", "die", "rename", "destroy"]
    die = events[2]
    assert die["Type"] == "container" and die["scope"] == "local"
    assert die["Actor"] == {"ID": cid, "Attributes": {
        "exitCode": "3", "execDuration": die["Actor"]["Attributes"]["execDuration"],
        "image": "busybox", "name": "evented", "l": "v"}}
    assert die["time"] == die["timeNano"] // 1_000_000_000
    # API 1.50 still has the legacy fields
    assert (die["status"], die["id"], die["from"]) == ("die", cid, "busybox")
    assert events[3]["Actor"]["Attributes"]["oldName"] == "/evented"
    assert events[3]["Actor"]["Attributes"]["name"] == "evented2"
    f = urllib.parse.quote(json.dumps({"event": {"die": True}, "label": {"l=v": True}}))
    r = daemon.api("GET", f"/events?since={since:.9f}&until={until:.9f}&filters={f}")
    assert [json.loads(line)["Action"] for line in r.body.splitlines()] == ["die"]
    r = daemon.api("GET", "/events?since=later")
    assert r.status == 400 and "invalid value for 'since'" in r.json()["message"]
    r = daemon.api("GET", f"/events?since={until:.0f}&until={since - 10:.0f}")
    assert r.status == 400 and "cannot be after" in r.json()["message"]


def test_events_stream_stays_open_and_follows(daemon):
    f = urllib.parse.quote(json.dumps({"type": {"container": True}}))
    conn = Hijacked(daemon, "GET", f"/events?filters={f}", upgrade=False)
    try:
        assert conn.read_head()[0] == 200        # headers at once, before any event
        r = daemon.api("POST", "/containers/create?name=watched",
                       {"Image": "busybox", "Cmd": ["true"]})
        cid = r.json()["Id"]
        conn.sock.settimeout(10)
        while b"create" not in conn.buf:
            conn.buf += conn.sock.recv(65536)
        assert _read_events(conn)[0]["Actor"]["ID"] == cid
        # the stream goes on: no end of the chunked body
        conn.sock.settimeout(0.3)
        try:
            extra = conn.sock.recv(65536)
        except TimeoutError:
            extra = b""
        assert b"0\r\n\r\n" not in extra
    finally:
        conn.close()
    t0 = time.monotonic()
    r = daemon.api("GET", f"/events?until={time.time() + 0.5:.9f}")
    assert r.status == 200 and 0.3 < time.monotonic() - t0 < 5     # ends at `until`


def test_every_action_on_a_container_is_logged(daemon):
    since = time.time()
    r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"],
                                                  "Tty": True})
    cid = r.json()["Id"]
    calls = [("POST", "start"), ("POST", "resize?h=10&w=20"), ("POST", "pause"),
             ("POST", "unpause"), ("GET", "top"), ("POST", "kill?signal=HUP"),
             ("POST", "restart?t=0"), ("POST", "stop?t=0")]
    for method, call in calls:
        assert daemon.api(method, f"/containers/{cid}/{call}").status in (200, 204), call
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    eid = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]}).json()["Id"]
    assert daemon.api("POST", f"/exec/{eid}/start", {"Detach": True}).status == 200
    for _ in range(100):
        if daemon.api("GET", f"/exec/{eid}/json").json()["ExitCode"] is not None:
            break
        time.sleep(0.05)
    f = urllib.parse.quote(json.dumps({"container": {cid: True}}))
    r = daemon.api("GET", f"/events?since={since:.9f}&until={time.time():.9f}&filters={f}")
    events = [json.loads(line) for line in r.body.splitlines()]
    actions = [e["Action"] for e in events]
    # sleep, as pid 1, ignores HUP and TERM: each stop sends TERM, then KILL at once (t=0)
    assert actions == [
        "create", "start", "resize", "pause", "unpause", "top", "kill",
        "kill", "kill", "die", "stop", "start", "restart", "kill", "kill", "die", "stop",
        "start", "exec_create: true", "exec_start: true", "exec_die"], actions
    attrs = {e["Action"]: e["Actor"]["Attributes"] for e in events}
    assert attrs["resize"]["height"] == "10" and attrs["resize"]["width"] == "20"
    assert [e["Actor"]["Attributes"]["signal"] for e in events if e["Action"] == "kill"] == [
        "1", "15", "9", "15", "9"]
    assert attrs["exec_die"] == {"execID": eid, "exitCode": "0", "image": "busybox",
                                 "name": attrs["exec_die"]["name"]}


def test_event_history_and_queues_are_bounded_in_bytes():
    """Every container event carries the container's labels: 256 of them with a 4 MB label
    would keep 1 GB. The history forgets the oldest past its byte budget, as past its count,
    and a subscriber that far behind loses events rather than holding them."""
    from engine import events
    log = EventLog()
    _, slow = log.subscribe(0, 0, Filter({}))
    big = "x" * (4 << 20)
    for i in range(40):
        log.log("container", "create", f"c{i}", {"big": big})
    assert log.remembered_bytes <= events.EVENTS_BYTES
    past, sub = log.subscribe(1, 0, Filter({}))
    sub.close()
    assert 1 <= len(past) < 40 and past[-1]["Actor"]["ID"] == "c39"
    assert slow.queue.qsize() <= events.QUEUE_BYTES // (4 << 20)
    slow.close()
    for i in range(300):                # small events: the count still bounds them
        log.log("container", "start", f"s{i}", {})
    past, sub = log.subscribe(1, 0, Filter({}))
    sub.close()
    assert len(past) == 256
