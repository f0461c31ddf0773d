"""A container's whole life through the shim: create, start, wait, delete, and what it leaves."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from shim import errors
from shim.client import ShimClient, pb
from tests.helpers.shim_env import children, wait_gone


def _events(client: ShimClient, after: int = 0, count: int = 99, timeout: float = 10):
    """The first `count` events after `after`, read from a fresh subscription."""
    out = []
    sub = client.subscribe(after)
    sub.sock.settimeout(timeout)
    for ev in sub:
        out.append(ev)
        if len(out) == count:
            break
    sub.close()
    return out


def test_lifecycle_events_exit_file_and_cleanup(env):
    log = env.tmp / "ctr.log"
    pid = env.create(["sh", "-c", "echo hello; echo oops >&2; exit 3"],
                     stdout=f"berth-jsonfile://{log}", stderr=f"berth-jsonfile://{log}")
    c = env.client
    sub = c.subscribe(0)
    st = c.state(env.id)
    assert (st.status, st.pid, st.bundle) == (pb.CREATED, pid, str(env.bundle))
    assert os.path.ismount(env.bundle / "rootfs"), "the shim mounts the rootfs it is given"
    assert c.start(env.id) == pid
    assert c.wait(env.id, timeout=10)[0] == 3
    st = c.state(env.id)
    assert (st.status, st.exit_status) == (pb.STOPPED, 3)
    exit_record = json.loads((env.bundle / "init.exit").read_text())
    assert exit_record["pid"] == pid and exit_record["exit_status"] == 3
    assert exit_record["exited_at"] == st.exited_at
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    assert sorted((l["stream"], l["log"]) for l in lines) == [("stderr", "oops\n"),
                                                              ("stdout", "hello\n")]
    assert c.delete(env.id) == (pid, 3, st.exited_at)
    sub.sock.settimeout(10)
    kinds = [(e.seq, e.WhichOneof("event")) for e in sub]   # ends when the shim exits
    assert wait_gone(env.shim_pid), "the shim exits once its container is deleted"
    assert not os.path.exists(env.socket)
    assert not os.path.ismount(env.bundle / "rootfs")
    assert not (env.bundle / "rootfs").exists(), "the rootfs dir the shim made is removed"
    assert not (env.bundle / "shim.pid").exists()
    assert kinds == [(1, "create"), (2, "start"), (3, "exit"), (4, "delete")]


def test_events_in_order_and_replayed_after_seq(env):
    env.create(["true"])
    c = env.client
    live = c.subscribe(0)
    c.start(env.id)
    c.wait(env.id, timeout=10)
    got = []
    live.sock.settimeout(10)
    for ev in live:
        got.append(ev)
        if len(got) == 3:
            break
    live.close()
    assert [(e.seq, e.WhichOneof("event")) for e in got] == [(1, "create"), (2, "start"),
                                                             (3, "exit")]
    assert got[2].exit.exit_status == 0 and got[2].exit.id == env.id
    assert [e.seq for e in _events(c, after=1, count=2)] == [2, 3]


def test_process_that_exits_before_start_returns(env):
    # `true` is gone before `runtime start` returns: the exit must still be matched to the init
    # and published after TaskStart.
    env.create(["true"])
    c = env.client
    sub = c.subscribe(0)
    pid = c.start(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    sub.sock.settimeout(10)
    kinds = []
    for ev in sub:
        kinds.append(ev.WhichOneof("event"))
        if len(kinds) == 3:
            break
    sub.close()
    assert kinds == ["create", "start", "exit"]
    assert c.state(env.id).pid == pid


def test_two_waits_at_once_both_answered(env):
    env.create(["sh", "-c", "sleep 0.3; exit 4"])
    c = env.client
    c.start(env.id)
    results = []
    threads = [threading.Thread(target=lambda: results.append(c.wait(env.id, timeout=10)))
               for _ in range(2)]
    for t in threads:
        t.start()
    c.state(env.id)   # the parked waits do not hold up other requests
    for t in threads:
        t.join(15)
    assert len(results) == 2 and results[0] == results[1] and results[0][0] == 4


def test_kill_running_then_kill_stopped_is_not_found(env):
    # A pid namespace's init gets only the signals it handles (and SIGKILL).
    env.create(["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
    c = env.client
    c.start(env.id)
    time.sleep(0.1)
    c.kill(env.id, signal.SIGTERM)
    assert c.wait(env.id, timeout=10)[0] == 7
    with pytest.raises(errors.NotFound, match="process already finished"):
        c.kill(env.id, signal.SIGKILL)


def test_requests_for_unknown_or_uncreated_containers(env):
    c = env.start_shim()
    with pytest.raises(errors.NotFound, match="not created"):
        c.state(env.id)
    with pytest.raises(errors.NotFound, match="this shim serves"):
        c.state("someone-else")
    with pytest.raises(errors.InvalidArgument):
        c.create("someone-else", str(env.bundle))
    c.shutdown()   # nothing created: the shim goes
    assert wait_gone(env.shim_pid)


def test_state_pids_pause_resume_update_stats_connect(env):
    pid = env.create(["sleep", "100"], memory=64 << 20)
    c = env.client
    c.start(env.id)
    info = c.connect(env.id)
    assert (info.shim_pid, info.task_pid) == (env.shim_pid, pid)
    assert c.pids(env.id) == [(pid, "")]
    sub = c.subscribe(2)
    c.pause(env.id)
    assert c.state(env.id).status == pb.PAUSED
    with pytest.raises(errors.FailedPrecondition, match="cannot pause a paused"):
        c.pause(env.id)
    c.resume(env.id)
    assert c.state(env.id).status == pb.RUNNING
    sub.sock.settimeout(10)
    kinds = []
    for ev in sub:
        kinds.append(ev.WhichOneof("event"))
        if len(kinds) == 2:
            break
    sub.close()
    assert kinds == ["paused", "resumed"]
    c.update(env.id, {"memory": {"limit": 48 << 20, "swap": 48 << 20}})
    stats = c.stats(env.id)
    assert stats.memory_limit == 48 << 20
    assert stats.pids_current >= 1 and stats.memory_usage > 0 and stats.cpu_usage_ns > 0
    with pytest.raises(errors.InvalidArgument):
        c.update(env.id, b"not json")
    c.kill(env.id, signal.SIGKILL)
    assert c.wait(env.id, timeout=10)[0] == 137


def test_no_zombies_left_under_the_shim(env):
    env.create(["sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.01 &) ; done; sleep 100"],
               pid_ns=True)
    c = env.client
    c.start(env.id)
    for i in range(3):
        c.exec(env.id, f"e{i}", {"args": ["sh", "-c", f"exit {i}"], "cwd": "/",
                                 "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}})
        c.start(env.id, f"e{i}")
        assert c.wait(env.id, f"e{i}", timeout=10)[0] == i
    time.sleep(0.2)
    zombies = [p for p, state in children(env.shim_pid) if state == "Z"]
    assert not zombies, f"the shim left zombies: {zombies}"


def test_shim_start_fails_clearly(env, short_tmp):
    import subprocess
    argv = env.argv("start")
    argv[argv.index("--runtime") + 1] = "/nonexistent/runtime"
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode != 0 and "/nonexistent/runtime" in out.stderr
    assert not os.path.exists(env.socket)
