"""Exec through the API as the docker CLI and docker-py drive it: create, start (hijacked,
detached), resize, inspect; status codes and messages as dockerd's; the exit code recorded before
the stream closes; the supervisor's exec process deleted once it has exited."""
from __future__ import annotations

import re
import time

import pytest

from supervisor import errors as sup_errors
from supervisor.client import Client
from tests.helpers.engine_daemon import Hijacked, demux


def run_container(daemon, cmd=("sleep", "60"), **config):
    r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": list(cmd), **config})
    assert r.status == 201, r
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    return cid


def exec_create(daemon, cid, cmd, **body):
    r = daemon.api("POST", f"/containers/{cid}/exec",
                   {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, **body})
    assert r.status == 201, r
    return r.json()["Id"]


def exec_start(daemon, eid, body=None) -> tuple[dict, bytes]:
    """Start with Upgrade; (response headers, everything until the daemon closes)."""
    conn = Hijacked(daemon, "POST", f"/v1.50/exec/{eid}/start",
                    body=body or {"Detach": False, "Tty": False})
    try:
        status, headers = conn.read_head()
        assert status == 101, (status, conn.buf)
        conn.half_close()          # the CLI half-closes at once without -i
        return headers, conn.read_all()
    finally:
        conn.close()


def exec_json(daemon, eid):
    r = daemon.api("GET", f"/exec/{eid}/json")
    assert r.status == 200, r
    return r.json()


def test_exec_create_inspect_start_and_exit_code(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert re.fullmatch(r"[0-9a-f]{64}", eid)
    before = exec_json(daemon, eid)
    assert before == {
        "ID": eid, "Running": False, "ExitCode": None,
        "ProcessConfig": {"tty": False, "entrypoint": "sh",
                          "arguments": ["-c", "echo out; echo err >&2; exit 3"],
                          "privileged": False, "user": ""},
        "OpenStdin": False, "OpenStderr": True, "OpenStdout": True, "CanRemove": False,
        "ContainerID": cid, "DetachKeys": "", "Pid": 0}
    assert daemon.api("GET", f"/containers/{cid}/json").json()["ExecIDs"] == [eid]
    headers, data = exec_start(daemon, eid)
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert sorted(demux(data)) == [(1, b"out\n"), (2, b"err\n")]
    # read straight after the stream closed, with no retry: the exit code is already there
    after = exec_json(daemon, eid)
    assert after["ExitCode"] == 3 and after["Running"] is False and after["Pid"] > 0
    assert daemon.api("GET", f"/containers/{cid}/json").json()["ExecIDs"] is None


def test_exec_process_is_deleted_from_the_supervisor_once_it_exits(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["true"])
    exec_start(daemon, eid)
    with Client(f"unix://{daemon.exec_root}/supervisor.sock", namespace="berth") as sup:
        for _ in range(100):
            try:
                sup.get_task(cid, eid)
            except sup_errors.NotFound:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"exec {eid} still known to the supervisor")
        assert sup.get_task(cid)["status"] == "running"


def test_exec_refusals_as_dockerd(daemon):
    r = daemon.api("POST", "/containers/nosuch/exec", {"Cmd": ["true"]})
    assert r.status == 404 and r.json()["message"] == "No such container: nosuch"
    created = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
    stopped = created.json()["Id"]
    r = daemon.api("POST", f"/containers/{stopped}/exec", {"Cmd": ["true"]})
    assert r.status == 409 and r.json()["message"] == f"container {stopped} is not running"
    cid = run_container(daemon)
    r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": []})
    assert r.status == 400 and r.json()["message"] == "No exec command specified"
    r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["id"], "User": "nosuchuser"})
    assert r.status == 400 and "unable to find user nosuchuser" in r.json()["message"]
    for method, path in (("POST", "/exec/nosuch/start"), ("GET", "/exec/nosuch/json"),
                         ("POST", "/exec/nosuch/resize?h=1&w=1")):
        r = daemon.api(method, path, {"Detach": True} if method == "POST" else None)
        assert r.status == 404 and r.json()["message"] == "No such exec instance: nosuch"
    eid = exec_create(daemon, cid, ["true"])
    assert daemon.api("POST", f"/exec/{eid}/start", {"Detach": True}).status == 200
    r = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert r.status == 409
    assert r.json()["message"] in (f"exec command {eid} has already run",
                                   f"exec command {eid} is already running")
    assert daemon.api("POST", f"/containers/{cid}/pause").status == 204
    r = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert r.status == 409 and r.json()["message"] == (
        f"Container {cid} is paused, unpause the container before exec")
    assert daemon.api("POST", f"/containers/{cid}/unpause").status == 204


def test_exec_detached_answers_200_without_upgrade(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["sh", "-c", "echo detached > /tmp/mark"], AttachStdout=False,
                      AttachStderr=False)
    r = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True, "Tty": False})
    assert (r.status, r.body) == (200, b"")
    for _ in range(100):
        if exec_json(daemon, eid)["ExitCode"] is not None:
            break
        time.sleep(0.05)
    assert exec_json(daemon, eid)["ExitCode"] == 0
    eid = exec_create(daemon, cid, ["cat", "/tmp/mark"])
    assert demux(exec_start(daemon, eid)[1]) == [(1, b"detached\n")]


def test_exec_with_tty_streams_raw_and_takes_its_size(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["sh", "-c", "tty; stty size"], Tty=True,
                      ConsoleSize=[10, 20])
    headers, data = exec_start(daemon, eid, {"Detach": False, "Tty": True,
                                             "ConsoleSize": [30, 100]})
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert re.fullmatch(rb"/dev/pts/\d+\r\n30 100\r\n", data), data
    assert exec_json(daemon, eid)["ExitCode"] == 0


def test_exec_resize_waits_for_the_start(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["sh", "-c", "sleep 0.5; stty size"], Tty=True)
    conn = Hijacked(daemon, "POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": True})
    try:
        assert conn.read_head()[0] == 101
        # sent straight after the 101, as the CLI does: it must reach the process
        assert daemon.api("POST", f"/exec/{eid}/resize?h=25&w=90").status == 200
        assert conn.read_all() == b"25 90\r\n"
    finally:
        conn.close()


def test_exec_that_cannot_start_reports_in_the_stream_and_exits_127(daemon):
    cid = run_container(daemon)
    eid = exec_create(daemon, cid, ["no-such-command"])
    frames = demux(exec_start(daemon, eid)[1])
    assert len(frames) == 1 and frames[0][0] == 1
    assert b"no-such-command" in frames[0][1] and frames[0][1].endswith(b"\r\n")
    assert exec_json(daemon, eid)["ExitCode"] == 127
    eid = exec_create(daemon, cid, ["/etc/passwd"])
    exec_start(daemon, eid)
    assert exec_json(daemon, eid)["ExitCode"] == 126


def test_exec_stdin_env_workdir_user(daemon):
    cid = run_container(daemon, Env=["FROM_CONTAINER=c"])
    eid = exec_create(daemon, cid, ["sh", "-c", "cat; echo $FROM_CONTAINER $X; pwd; id -u"],
                      AttachStdin=True, Env=["X=x"], WorkingDir="/tmp", User="nobody")
    conn = Hijacked(daemon, "POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": False})
    try:
        assert conn.read_head()[0] == 101
        conn.send(b"typed\n")
        conn.half_close()            # EOF closes the process's stdin: cat ends
        out = b"".join(d for _, d in demux(conn.read_all()))
    finally:
        conn.close()
    assert out == b"typed\nc x\n/tmp\n65534\n"
    assert exec_json(daemon, eid)["ProcessConfig"]["user"] == "nobody"


def test_docker_py_exec_run(daemon):
    client = daemon.docker_py()
    c = client.containers.run("busybox", ["sleep", "60"], detach=True)
    # docker-py reads the stream from under http.client: nothing may come with the 101
    for _ in range(10):
        assert c.exec_run("echo hello") == (0, b"hello\n")
    result = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
    assert result.exit_code == 4 and result.output == (b"out\n", b"err\n")
    assert c.exec_run("sh -c 'echo $V'", environment={"V": "v"}, workdir="/tmp").output == b"v\n"
    assert c.exec_run("tty", tty=True).output.startswith(b"/dev/pts/")
    assert c.exec_run("no-such-command").exit_code == 127


def test_execs_not_started_are_forgotten_when_the_container_stops(daemon):
    cid = run_container(daemon)
    pending = exec_create(daemon, cid, ["true"])
    finished = exec_create(daemon, cid, ["true"])
    exec_start(daemon, finished)
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 204
    assert daemon.api("GET", f"/exec/{pending}/json").status == 404
    assert exec_json(daemon, finished)["ExitCode"] == 0          # still there to inspect
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    r = daemon.api("POST", f"/exec/{pending}/start", {"Detach": True})
    assert r.status == 404 and r.json()["message"] == f"No such exec instance: {pending}"
    assert daemon.api("DELETE", f"/containers/{cid}?force=1").status == 204
    assert daemon.api("GET", f"/exec/{finished}/json").status == 404
