"""The everyday container endpoints beyond run: stop (signal, timeout, StopSignal), kill, start
again, restart, pause/unpause, rename, top, stats; status codes and messages as dockerd's."""
from __future__ import annotations

import time

from tests.helpers.engine_daemon import Hijacked


def create(daemon, cmd, name=None, **config):
    path = "/containers/create" + (f"?name={name}" if name else "")
    r = daemon.api("POST", path, {"Image": "busybox", "Cmd": cmd, **config})
    assert r.status == 201, r
    return r.json()["Id"]


def run(daemon, cmd, name=None, **config):
    cid = create(daemon, cmd, name, **config)
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    return cid


def state(daemon, cid):
    return daemon.api("GET", f"/containers/{cid}/json").json()["State"]


def logs(daemon, cid) -> bytes:
    from tests.helpers.engine_daemon import demux
    r = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    return b"".join(d for _, d in demux(r.body))


def wait_for_log(daemon, cid, text: bytes):
    for _ in range(200):
        if text in logs(daemon, cid):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never logged by {cid}: {logs(daemon, cid)!r}")


TRAPS = ("trap 'echo got-usr1; exit 10' USR1; trap 'echo got-term; exit 11' TERM; "
         "trap 'echo got-hup; exit 12' HUP; echo ready; while true; do sleep 0.05; done")


def test_stop_sends_the_containers_stop_signal_or_the_one_asked(daemon):
    cid = run(daemon, ["sh", "-c", TRAPS], StopSignal="SIGUSR1")
    wait_for_log(daemon, cid, b"ready")
    assert daemon.api("POST", f"/containers/{cid}/stop?t=5").status == 204
    s = state(daemon, cid)
    assert (s["Status"], s["ExitCode"]) == ("exited", 10)
    assert daemon.api("POST", f"/containers/{cid}/stop").status == 304
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    wait_for_log(daemon, cid, b"ready\ngot-usr1\nready")
    assert daemon.api("POST", f"/containers/{cid}/stop?signal=HUP&t=5").status == 204
    assert state(daemon, cid)["ExitCode"] == 12
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert r.status == 204
    r = daemon.api("POST", f"/containers/{cid}/stop?signal=NOPE")
    assert r.status == 400 and r.json()["message"] == "invalid signal: NOPE"


def test_stop_kills_after_the_timeout(daemon):
    cid = run(daemon, ["sleep", "60"])            # pid 1 ignores SIGTERM: killed after t
    t0 = time.monotonic()
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1").status == 204
    assert 0.9 < time.monotonic() - t0 < 8
    assert state(daemon, cid)["ExitCode"] == 137


def test_kill_by_name_and_number(daemon):
    cid = run(daemon, ["sh", "-c", TRAPS])
    wait_for_log(daemon, cid, b"ready")
    assert daemon.api("POST", f"/containers/{cid}/kill?signal=10").status == 204   # USR1
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 10
    r = daemon.api("POST", f"/containers/{cid}/kill")
    assert r.status == 409 and r.json()["message"] == (
        f"cannot kill container: {cid}: container {cid} is not running")
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    wait_for_log(daemon, cid, b"got-usr1\nready")
    assert daemon.api("POST", f"/containers/{cid}/kill?signal=SIGHUP").status == 204
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 12
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    r = daemon.api("POST", f"/containers/{cid}/kill?signal=SIGNOPE")
    assert r.status == 400 and r.json()["message"] == "invalid signal: SIGNOPE"
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 204     # SIGKILL: waits
    assert state(daemon, cid)["ExitCode"] == 137


def test_start_again_runs_a_fresh_task_on_the_same_filesystem(daemon):
    cid = run(daemon, ["sh", "-c", "cat /count 2>/dev/null; echo x >> /count"], name="again")
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    first = state(daemon, cid)
    assert daemon.api("POST", "/containers/again/start").status == 204
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    assert logs(daemon, cid) == b"x\n"           # the second run saw what the first wrote
    second = state(daemon, cid)
    assert second["StartedAt"] > first["StartedAt"] and second["Pid"] == 0


def test_restart_of_a_running_and_of_a_stopped_container(daemon):
    cid = run(daemon, ["sh", "-c", "echo run; exec sleep 60"])
    pid = state(daemon, cid)["Pid"]
    t0 = time.monotonic()
    assert daemon.api("POST", f"/containers/{cid}/restart?t=0").status == 204
    assert time.monotonic() - t0 < 8
    s = state(daemon, cid)
    assert s["Running"] and s["Pid"] not in (0, pid)
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 204
    assert daemon.api("POST", f"/containers/{cid}/restart").status == 204
    assert state(daemon, cid)["Running"]
    wait_for_log(daemon, cid, b"run\nrun\nrun\n")
    # --rm: a restart does not remove it in between
    auto = run(daemon, ["sleep", "60"], HostConfig={"AutoRemove": True})
    assert daemon.api("POST", f"/containers/{auto}/restart?t=0").status == 204
    assert state(daemon, auto)["Running"]


def test_pause_and_unpause(daemon):
    cid = run(daemon, ["sleep", "60"], name="pausable")
    assert daemon.api("POST", "/containers/pausable/pause").status == 204
    s = state(daemon, cid)
    assert s["Paused"] and s["Running"] and s["Status"] == "paused"
    ps = daemon.api("GET", "/containers/json").json()
    row = next(c for c in ps if c["Id"] == cid)
    assert row["State"] == "paused" and row["Status"].endswith("(Paused)")
    r = daemon.api("POST", f"/containers/{cid}/pause")
    assert r.status == 409 and r.json()["message"] == f"Container {cid} is already paused"
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert r.status == 409 and "cannot start a paused container" in r.json()["message"]
    assert daemon.api("POST", f"/containers/{cid}/unpause").status == 204
    s = state(daemon, cid)
    assert not s["Paused"] and s["Status"] == "running"
    r = daemon.api("POST", f"/containers/{cid}/unpause")
    assert r.status == 500 and r.json()["message"] == f"Container {cid} is not paused"
    # a paused container is resumed by a stop (SIGTERM then SIGKILL reach it)
    assert daemon.api("POST", f"/containers/{cid}/pause").status == 204
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1").status == 204
    s = state(daemon, cid)
    assert (s["Status"], s["Paused"], s["ExitCode"]) == ("exited", False, 137)
    r = daemon.api("POST", f"/containers/{cid}/pause")
    assert r.status == 409 and r.json()["message"] == f"container {cid} is not running"


def test_rename(daemon):
    cid = create(daemon, ["true"], name="old-name")
    other = create(daemon, ["true"], name="taken")
    assert daemon.api("POST", "/containers/old-name/rename?name=new-name").status == 204
    assert daemon.api("GET", "/containers/new-name/json").json()["Name"] == "/new-name"
    assert daemon.api("GET", "/containers/old-name/json").status == 404
    r = daemon.api("POST", f"/containers/{cid}/rename?name=taken")
    assert r.status == 409 and r.json()["message"] == (
        f'Error when allocating new name: Conflict. The container name "/taken" is already in '
        f'use by container "{other}". You have to remove (or rename) that container to be able '
        f'to reuse that name.')
    r = daemon.api("POST", f"/containers/{cid}/rename?name=new-name")
    assert r.status == 400 and r.json()["message"] == (
        "Renaming a container with the same name as its current name")
    r = daemon.api("POST", f"/containers/{cid}/rename?name=")
    assert r.status == 400 and r.json()["message"] == "Neither old nor new names may be empty"
    r = daemon.api("POST", f"/containers/{cid}/rename?name=bad%20name")
    assert r.status == 400 and "Invalid container name (/bad name)" in r.json()["message"]
    # the old name is free again
    create(daemon, ["true"], name="old-name")


def test_top_lists_the_containers_processes(daemon):
    cid = run(daemon, ["sh", "-c", "sleep 61 & exec sleep 62"])
    for _ in range(100):
        top = daemon.api("GET", f"/containers/{cid}/top").json()
        if len(top["Processes"]) == 2:
            break
        time.sleep(0.05)
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert sorted(p[-1] for p in top["Processes"]) == ["sleep 61", "sleep 62"]
    assert str(state(daemon, cid)["Pid"]) in [p[1] for p in top["Processes"]]
    aux = daemon.api("GET", f"/containers/{cid}/top?ps_args=aux").json()
    assert aux["Titles"][:2] == ["USER", "PID"] and len(aux["Processes"]) == 2
    r = daemon.api("GET", f"/containers/{cid}/top?ps_args=-o%20user%3DPID")
    assert r.status == 500 and 'specifying "user=PID" is not allowed' in r.json()["message"]
    stopped = create(daemon, ["true"])
    r = daemon.api("GET", f"/containers/{stopped}/top")
    assert r.status == 409 and r.json()["message"] == f"container {stopped} is not running"


def test_stats_one_sample_and_a_stream(daemon):
    cid = run(daemon, ["sleep", "60"], name="measured", HostConfig={"Memory": 64 << 20})
    s = daemon.api("GET", f"/containers/{cid}/stats?stream=False").json()   # docker-py's false
    assert s["id"] == cid and s["name"] == "/measured"
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"] > 0
    assert s["cpu_stats"]["online_cpus"] >= 1
    assert s["preread"] != "0001-01-01T00:00:00Z" and s["read"] > s["preread"]
    assert s["memory_stats"]["limit"] == 64 << 20 and s["memory_stats"]["usage"] > 0
    assert s["pids_stats"]["current"] == 1
    # per device with its real major:minor, or none when the cgroup did no block I/O
    blkio = s["blkio_stats"]["io_service_bytes_recursive"]
    assert blkio is None or all((e["major"], e["minor"]) != (0, 0) for e in blkio)
    one = daemon.api("GET", f"/containers/{cid}/stats?stream=0&one-shot=1").json()
    assert one["preread"] == "0001-01-01T00:00:00Z" and one["pids_stats"]["current"] == 1
    conn = Hijacked(daemon, "GET", f"/containers/{cid}/stats", upgrade=False)
    try:
        assert conn.read_head()[0] == 200
        while conn.buf.count(b"\n") < 6:       # chunk sizes and two JSON lines
            conn.buf += conn.sock.recv(65536)
    finally:
        conn.close()
    stopped = create(daemon, ["true"], name="idle")
    s = daemon.api("GET", f"/containers/{stopped}/stats?stream=0").json()
    assert s["name"] == "/idle" and s["read"] == "0001-01-01T00:00:00Z"
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0 and s["memory_stats"] == {}
