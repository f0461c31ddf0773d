"""The container endpoints as the real clients use them: shapes, status codes and messages,
references, filters, wait conditions with early headers, attach framing and stdin, logs."""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.helpers.engine_daemon import Hijacked, demux


def create(daemon, cmd, name=None, **config):
    body = {"Image": config.pop("Image", "busybox"), "Cmd": cmd, **config}
    path = "/containers/create" + (f"?name={name}" if name else "")
    r = daemon.api("POST", path, body)
    assert r.status == 201, r
    return r.json()["Id"]


def start(daemon, cid):
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert r.status == 204, r


def wait(daemon, cid, condition="not-running"):
    r = daemon.api("POST", f"/containers/{cid}/wait?condition={condition}")
    assert r.status == 200, r
    return r.json()


def inspect(daemon, cid):
    return daemon.api("GET", f"/containers/{cid}/json").json()


def test_create_and_inspect_shape(daemon):
    r = daemon.api("POST", "/containers/create?name=shape",
                   {"Image": "busybox", "Cmd": ["sleep", "1"], "Env": ["A=1"],
                    "Labels": {"k": "v"}, "HostConfig": {"Memory": 32 << 20}})
    assert r.status == 201
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"Id", "Warnings"} and len(body["Id"]) == 64
    c = inspect(daemon, "shape")
    assert c["Id"] == body["Id"] and c["Name"] == "/shape"
    assert c["Path"] == "sleep" and c["Args"] == ["1"]
    assert c["State"]["Status"] == "created" and c["State"]["Running"] is False
    assert c["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert c["Image"].startswith("sha256:")
    assert c["Config"]["Image"] == "busybox"
    assert c["Config"]["Hostname"] == c["Id"][:12]
    assert "A=1" in c["Config"]["Env"] and any(e.startswith("PATH=") for e in c["Config"]["Env"])
    assert c["Config"]["Labels"] == {"k": "v"}
    assert c["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert c["HostConfig"]["Memory"] == 32 << 20
    assert c["HostConfig"]["MemorySwap"] == 64 << 20      # dockerd's default: twice the memory
    assert c["HostConfig"]["NetworkMode"] == "bridge"
    assert "Networks" in c["NetworkSettings"]
    assert c["LogPath"].endswith(f"{c['Id']}-json.log")


def test_name_conflict_is_409_with_dockerds_message(daemon):
    cid = create(daemon, ["true"], name="dup")
    r = daemon.api("POST", "/containers/create?name=dup", {"Image": "busybox"})
    assert r.status == 409
    assert r.json()["message"] == (
        f'Conflict. The container name "/dup" is already in use by container "{cid}". You have '
        f'to remove (or rename) that container to be able to reuse that name.')


@pytest.mark.parametrize("body,status,message", [
    ({"Image": "nosuch"}, 404, "No such image: nosuch:latest"),
    ({"Image": "busybox", "HostConfig": {"Memory": 1024}}, 400,
     "Minimum memory limit allowed is 6MB"),
    ({"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "syslog"}}}, 400,
     "no log driver named 'syslog'"),
    ({"Image": "busybox", "HostConfig": {"Runtime": "nosuch"}}, 400,
     "unknown or invalid runtime name: nosuch"),
    ({"Image": "busybox", "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
     400, "can't create 'AutoRemove' container with restart policy"),
    ({"Image": "Bad/Name"}, 400, "invalid reference format"),
])
def test_create_errors(daemon, body, status, message):
    before = daemon.container_ids()
    r = daemon.api("POST", "/containers/create", body)
    assert r.status == status and message in r.json()["message"]
    assert daemon.container_ids() == before      # nothing left behind


def test_invalid_name_is_400(daemon):
    r = daemon.api("POST", "/containers/create?name=" + urllib.parse.quote("bad name"),
                   {"Image": "busybox"})
    assert r.status == 400 and "Invalid container name (bad name)" in r.json()["message"]


def test_references_by_id_short_id_prefix_and_name(daemon):
    cid = create(daemon, ["true"], name="refs")
    for ref in (cid, cid[:12], cid[:5], "refs", "/refs"):
        # a leading slash arrives as %2F, as clients escape it
        assert inspect(daemon, urllib.parse.quote(ref, safe=""))["Id"] == cid


def test_lifecycle_status_codes(daemon):
    cid = create(daemon, ["sleep", "30"], name="life")
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 409
    assert daemon.api("POST", f"/containers/{cid}/stop").status == 304
    start(daemon, cid)
    assert daemon.api("POST", f"/containers/{cid}/start").status == 304
    r = daemon.api("DELETE", "/containers/life")
    assert r.status == 409
    assert r.json()["message"] == ('cannot remove container "life": container is running: stop '
                                   'the container before removing or force remove')
    state = inspect(daemon, cid)["State"]
    assert state["Running"] and state["Pid"] > 0 and state["StartedAt"] != "0001-01-01T00:00:00Z"
    t0 = time.monotonic()
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1").status == 204
    assert time.monotonic() - t0 < 10
    state = inspect(daemon, cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137   # sh ignores SIGTERM as pid 1
    assert daemon.api("DELETE", f"/containers/{cid}").status == 204
    assert daemon.api("GET", f"/containers/{cid}/json").status == 404
    assert daemon.api("DELETE", f"/containers/{cid}").status == 404


def test_kill_signal_and_force_remove(daemon):
    cid = create(daemon, ["sh", "-c", "trap 'exit 42' HUP; echo ready; "
                                      "while true; do sleep 0.1; done"])
    start(daemon, cid)
    for _ in range(200):          # the trap is set once it says so
        if b"ready" in daemon.api("GET", f"/containers/{cid}/logs?stdout=1").body:
            break
        time.sleep(0.05)
    assert daemon.api("POST", f"/containers/{cid}/kill?signal=HUP").status == 204
    assert wait(daemon, cid) == {"StatusCode": 42, "Error": None}
    cid2 = create(daemon, ["sleep", "30"])
    start(daemon, cid2)
    assert daemon.api("DELETE", f"/containers/{cid2}?force=True&v=False&link=False").status == 204
    assert cid2 not in daemon.container_ids()


def test_exit_code_and_dockerpy_booleans(daemon):
    cid = create(daemon, ["sh", "-c", "exit 5"])
    start(daemon, cid)
    assert wait(daemon, cid) == {"StatusCode": 5, "Error": None}
    # docker-py sends force=False: it must read as false, so a running container stays
    cid2 = create(daemon, ["sleep", "30"])
    start(daemon, cid2)
    assert daemon.api("DELETE", f"/containers/{cid2}?force=False").status == 409


def test_wait_sends_headers_before_the_container_exits(daemon):
    cid = create(daemon, ["sh", "-c", "sleep 0.5; exit 3"])
    conn = Hijacked(daemon, "POST", f"/v1.50/containers/{cid}/wait?condition=next-exit",
                    upgrade=False)
    try:
        status, headers = conn.read_head()      # arrives before start: the CLI relies on it
        assert status == 200 and headers["content-type"] == "application/json"
        start(daemon, cid)
        body = json.loads(conn.read_chunked())
        assert body == {"StatusCode": 3, "Error": None}
    finally:
        conn.close()


def test_wait_conditions(daemon):
    cid = create(daemon, ["true"])
    assert wait(daemon, cid, "not-running")["StatusCode"] == 0      # created: not running
    r = daemon.api("POST", f"/containers/{cid}/wait?condition=bogus")
    assert r.status == 400 and r.json()["message"] == 'invalid condition: "bogus"'
    auto = create(daemon, ["sh", "-c", "exit 2"], HostConfig={"AutoRemove": True})
    conn = Hijacked(daemon, "POST", f"/containers/{auto}/wait?condition=removed", upgrade=False)
    try:
        assert conn.read_head()[0] == 200
        start(daemon, auto)
        assert json.loads(conn.read_chunked())["StatusCode"] == 2
    finally:
        conn.close()
    # the daemon removed it (AutoRemove), no DELETE from the client
    assert daemon.api("GET", f"/containers/{auto}/json").status == 404


def test_start_of_missing_command_is_127(daemon):
    cid = create(daemon, ["/no/such/binary"])
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert r.status == 400
    assert "no such file or directory" in r.json()["message"].lower()
    state = inspect(daemon, cid)["State"]
    assert state["ExitCode"] == 127 and state["Status"] == "created" and state["Error"]


def test_list_all_limit_and_filters(daemon):
    running = create(daemon, ["sleep", "30"], name="lister-run", Labels={"team": "a"})
    start(daemon, running)
    stopped = create(daemon, ["sh", "-c", "exit 4"], name="lister-stop", Labels={"team": "b"})
    start(daemon, stopped)
    wait(daemon, stopped)

    def ids(query):
        return [c["Id"] for c in daemon.api("GET", f"/containers/json?{query}").json()]

    assert running in ids("") and stopped not in ids("")
    assert stopped not in ids("all=False")        # docker-py's spelling of false
    assert {running, stopped} <= set(ids("all=1"))
    assert ids("all=1&limit=1") == [daemon.api("GET", "/containers/json?all=1").json()[0]["Id"]]
    f = urllib.parse.quote(json.dumps({"status": {"exited": True}}))
    assert stopped in ids(f"all=1&filters={f}") and running not in ids(f"all=1&filters={f}")
    f = urllib.parse.quote(json.dumps({"label": {"team=a": True}}))
    assert ids(f"all=1&filters={f}") == [running]
    f = urllib.parse.quote(json.dumps({"name": ["lister-st"]}))       # docker-py's list form
    assert ids(f"all=1&filters={f}") == [stopped]
    f = urllib.parse.quote(json.dumps({"exited": {"4": True}}))
    assert ids(f"all=1&filters={f}") == [stopped]
    f = urllib.parse.quote(json.dumps({"bogus": {"x": True}}))
    r = daemon.api("GET", f"/containers/json?filters={f}")
    assert r.status == 400 and r.json()["message"] == "invalid filter 'bogus'"
    summary = next(c for c in daemon.api("GET", "/containers/json?all=1").json()
                   if c["Id"] == stopped)
    assert summary["Names"] == ["/lister-stop"] and summary["Image"] == "busybox"
    assert summary["Command"] == "sh -c exit 4" and summary["State"] == "exited"
    assert summary["Status"].startswith("Exited (4) ")


def test_logs_streams_tail_timestamps(daemon):
    cid = create(daemon, ["sh", "-c", "echo out1; echo err1 >&2; echo out2"])
    start(daemon, cid)
    wait(daemon, cid)

    def logs(query):
        r = daemon.api("GET", f"/containers/{cid}/logs?{query}")
        assert r.status == 200, r
        assert r.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
        return demux(r.body)

    # stdout and stderr are two pipes: their relative order is not kept (nor by dockerd)
    assert sorted(logs("stdout=1&stderr=1")) == [(1, b"out1\n"), (1, b"out2\n"), (2, b"err1\n")]
    assert logs("stdout=1&stderr=0") == [(1, b"out1\n"), (1, b"out2\n")]
    assert logs("stdout=1&stderr=0&tail=1") == [(1, b"out2\n")]
    stamped = logs("stdout=1&stderr=False&timestamps=1")
    assert stamped[0][1].endswith(b"Z out1\n") and len(stamped[0][1].split(b" ")[0]) == 30
    r = daemon.api("GET", f"/containers/{cid}/logs")
    assert r.status == 400
    assert r.json()["message"] == "Bad parameters: you must choose at least one stream"


def test_logs_follow_sends_headers_first_and_ends_when_the_container_stops(daemon):
    cid = create(daemon, ["sh", "-c", "echo a; sleep 1; echo b"])
    start(daemon, cid)
    conn = Hijacked(daemon, "GET", f"/containers/{cid}/logs?stdout=1&stderr=1&follow=1",
                    upgrade=False)
    try:
        status, _ = conn.read_head()
        assert status == 200
        assert demux(conn.read_chunked()) == [(1, b"a\n"), (1, b"b\n")]
    finally:
        conn.close()


def test_attach_multiplexed_before_start(daemon):
    cid = create(daemon, ["sh", "-c", "echo to-out; echo to-err >&2; exit 6"],
                 AttachStdout=True, AttachStderr=True)
    conn = Hijacked(daemon, "POST", f"/v1.50/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    try:
        status, headers = conn.read_head()
        assert status == 101
        assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        assert headers["upgrade"] == "tcp" and headers["connection"].lower() == "upgrade"
        conn.half_close()          # the CLI half-closes at once without -i: output must go on
        start(daemon, cid)
        frames = demux(conn.read_all())
    finally:
        conn.close()
    assert sorted(frames) == [(1, b"to-out\n"), (2, b"to-err\n")]
    assert wait(daemon, cid)["StatusCode"] == 6


def test_attach_content_type_follows_api_version(daemon):
    cid = create(daemon, ["true"])
    conn = Hijacked(daemon, "POST", f"/v1.41/containers/{cid}/attach?stream=1&stdout=1")
    try:
        assert conn.read_head()[1]["content-type"] == "application/vnd.docker.raw-stream"
    finally:
        conn.close()


def test_attach_stdin_once(daemon):
    cid = create(daemon, ["sh", "-c", "cat; echo done"], OpenStdin=True, StdinOnce=True,
                 AttachStdin=True, AttachStdout=True)
    conn = Hijacked(daemon, "POST", f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1")
    try:
        assert conn.read_head()[0] == 101
        conn.send(b"hello\n")
        conn.half_close()          # EOF on stdin closes the container's stdin (StdinOnce)
        start(daemon, cid)
        assert b"".join(d for _, d in demux(conn.read_all())) == b"hello\ndone\n"
    finally:
        conn.close()
    assert wait(daemon, cid)["StatusCode"] == 0


def test_attach_to_unknown_container_is_404_before_upgrade(daemon):
    conn = Hijacked(daemon, "POST", "/containers/nosuch/attach?stream=1&stdout=1")
    try:
        status, _ = conn.read_head()
        assert status == 404
    finally:
        conn.close()


def test_prune_removes_stopped_containers_only(daemon):
    running = create(daemon, ["sleep", "30"])
    start(daemon, running)
    stopped = create(daemon, ["true"], Labels={"keep": "no"})
    kept = create(daemon, ["true"], Labels={"keep": "yes"})
    f = urllib.parse.quote(json.dumps({"label": {"keep=no": True}}))
    r = daemon.api("POST", f"/containers/prune?filters={f}")
    assert r.status == 200 and r.json() == {"ContainersDeleted": [stopped], "SpaceReclaimed": 0}
    p = daemon.docker("container", "prune", "-f")
    assert p.returncode == 0 and kept.encode() in p.stdout
    assert running in daemon.container_ids() and kept not in daemon.container_ids()


def test_tty_container_streams_raw(daemon):
    cid = create(daemon, ["sh", "-c", "tty; echo to-err >&2; sleep 1"], Tty=True,
                 AttachStdout=True, AttachStderr=True)
    conn = Hijacked(daemon, "POST", f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    try:
        status, headers = conn.read_head()
        assert status == 101 and headers["content-type"] == "application/vnd.docker.raw-stream"
        conn.half_close()
        start(daemon, cid)
        assert daemon.api("POST", f"/containers/{cid}/resize?h=30&w=100").status == 200
        # one pty for both streams, no framing, the terminal's CR LF line ends
        assert conn.read_all() == b"/dev/pts/0\r\nto-err\r\n"
    finally:
        conn.close()
    r = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert r.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert r.body == b"/dev/pts/0\r\nto-err\r\n"


def test_docker_and_berth_run_with_tty(daemon):
    p = daemon.docker("run", "--rm", "-t", "busybox", "tty")
    assert (p.returncode, p.stdout) == (0, b"/dev/pts/0\r\n")
    p = daemon.berth("run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 2")
    assert (p.returncode, p.stdout) == (2, b"/dev/pts/0\r\n")
