"""Restart safety: SIGKILL of the supervisor in the middle of a run of 20 containers, shims that
die, and a supervisor that finds what it left half-done."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from supervisor import errors
from tests.helpers.supervisor_env import busybox_spec, read_file


def spec(rootfs, args):
    return busybox_spec(args, root=str(rootfs), readonly=True)


def collect(sub, n, timeout=20.0):
    out = []
    deadline = time.monotonic() + timeout
    for e in sub:
        out.append(e)
        if len(out) >= n:
            break
        assert time.monotonic() < deadline, f"only {len(out)} of {n} events"
    return out


def fifo(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    return path


def release(path):
    """Write a line into a stdin FIFO (the shim holds its read end)."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"go\n")
    os.close(fd)


def test_kill9_during_a_run_of_20_containers(private_supervisor, rootfs, tmp_path):
    sup = private_supervisor()
    c = sup.client("restart")
    sub = c.subscribe("namespace==restart,topic~=|^/tasks/(exit|start)|")
    long_running = [f"long{i}" for i in range(7)]          # still running after the restart
    exited_before = {f"early{i}": i + 1 for i in range(5)}  # exited before the kill
    exited_while_down = {f"down{i}": 10 + i for i in range(6)}  # exit while nobody supervises
    created_only = ["idle0"]                                 # created, never started
    pids = {}
    for cid in long_running:
        c.create_container(cid, spec(rootfs, ["sleep", "1000"]))
    for cid, code in exited_before.items():
        c.create_container(cid, spec(rootfs, ["sh", "-c", f"exit {code}"]))
    for cid, code in exited_while_down.items():
        c.create_container(cid, spec(rootfs, ["sh", "-c", f"read x; exit {code}"]))
    for cid in created_only:
        c.create_container(cid, spec(rootfs, ["true"]))
    c.create_container("inflight", spec(rootfs, ["sleep", "1000"]))
    for cid in long_running + list(exited_before) + list(exited_while_down) + created_only:
        # The "down" containers wait for a line on a stdin FIFO the test writes to.
        stdin = str(fifo(tmp_path, cid)) if cid in exited_while_down else ""
        pids[cid] = c.create_task(cid, stdin=stdin)
        if cid not in created_only:
            c.start(cid)
    for cid, code in exited_before.items():
        assert c.wait(cid)[0] == code
    seen = collect(sub, len(pids) - len(created_only) + len(exited_before))
    sub.close()
    last_seq = seen[-1]["seq"]
    assert {e["event"]["container_id"] for e in seen if e["topic"] == "/tasks/exit"} == set(exited_before)

    # A create in flight when the supervisor dies.
    inflight = threading.Thread(target=lambda: _ignore(lambda: c.create_task("inflight")))
    inflight.start()
    time.sleep(0.05)
    sup.kill9()
    inflight.join(30)
    killed_at = time.time_ns()
    for cid in exited_while_down:       # now let them exit, while nobody supervises
        release(tmp_path / cid)
    for cid in exited_while_down:
        assert b"exit_status" in read_file(sup.root / "tasks" / "restart" / cid / "init.exit",
                                           want=b"exit_status")

    sup.start()
    c = sup.client("restart")
    tasks = {t["id"]: t for t in c.list_tasks()}
    assert set(tasks) - {"inflight"} == set(pids)
    for cid in long_running:
        assert (tasks[cid]["status"], tasks[cid]["pid"]) == ("running", pids[cid])
    for cid, code in exited_before.items():
        assert (tasks[cid]["status"], tasks[cid]["exit_status"]) == ("stopped", code)
    for cid, code in exited_while_down.items():
        assert (tasks[cid]["status"], tasks[cid]["exit_status"]) == ("stopped", code), cid
        assert tasks[cid]["exited_at"] >= killed_at - 1_000_000_000
        assert c.wait(cid)[0] == code
    assert tasks["idle0"]["status"] == "created"
    if "inflight" in tasks:     # the create either finished or was undone, never half-done
        assert tasks["inflight"]["status"] == "created"

    # Nothing lost for a subscriber resuming from the last event it saw, nothing repeated.
    resumed = c.subscribe("namespace==restart,topic~=|^/tasks/(exit|start)|", after=last_seq)
    later = collect(resumed, len(exited_while_down))
    resumed.close()
    assert sorted((e["event"]["container_id"], e["event"]["exit_status"]) for e in later) == \
        sorted(exited_while_down.items())

    # One shim per task, and none once the tasks are gone.
    assert len(sup.shim_pids()) == len(tasks)
    for cid in tasks:
        if c.get_task(cid)["status"] != "stopped":
            c.kill(cid, signal.SIGKILL)
            c.wait(cid)
        c.delete_task(cid)
    deadline = time.monotonic() + 10
    while sup.shim_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sup.shim_pids() == []
    assert not any((sup.root / "tasks" / "restart").glob("*"))


def _ignore(fn):
    try:
        fn()
    except Exception:
        pass


def test_dead_shim_stops_the_task_with_a_reason(private_supervisor, rootfs):
    """A shim killed under a running container: the container is cleaned up, its task turns
    stopped (255: nobody saw it exit), waiters are answered, and delete still works."""
    sup = private_supervisor()
    c = sup.client("deadshim")
    c.create_container("victim", spec(rootfs, ["sleep", "1000"]))
    pid = c.create_task("victim")
    c.start("victim")
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("wait", c.wait("victim")))
    waiter.start()
    (shim,) = sup.shim_pids()
    os.kill(shim, signal.SIGKILL)
    waiter.join(30)
    assert result["wait"][0] == 255
    task = c.get_task("victim")
    assert task["status"] == "stopped" and task["exit_status"] == 255
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the container outlived its shim"
    with pytest.raises(errors.NotFound):
        c.kill("victim", signal.SIGKILL)
    assert c.delete_task("victim")[1] == 255
    assert not (sup.root / "tasks" / "deadshim" / "victim").exists()


def test_shim_dead_while_supervisor_down_keeps_the_exit_status(private_supervisor, rootfs,
                                                               tmp_path):
    """The container exits, then its shim dies, all while the supervisor is down: the restarted
    supervisor reads the exit status the shim recorded in init.exit."""
    sup = private_supervisor()
    c = sup.client("down2")
    c.create_container("gone", spec(rootfs, ["sh", "-c", "read x; exit 42"]))
    c.create_task("gone", stdin=str(fifo(tmp_path, "gone")))
    c.start("gone")
    sup.kill9()
    release(tmp_path / "gone")
    bundle = sup.root / "tasks" / "down2" / "gone"
    assert b'"exit_status": 42' in read_file(bundle / "init.exit", want=b"exit_status")
    (shim,) = sup.shim_pids()
    os.kill(shim, signal.SIGKILL)
    sup.start()
    c = sup.client("down2")
    task = c.get_task("gone")
    assert (task["status"], task["exit_status"]) == ("stopped", 42)
    assert c.wait("gone")[0] == 42
    c.delete_task("gone")
    assert sup.shim_pids() == []


def test_orphaned_bundle_is_removed_at_start(private_supervisor, rootfs):
    """A bundle with a live shim that no record owns (its record lost) is stopped and removed."""
    sup = private_supervisor()
    c = sup.client("orph")
    c.create_container("lost", spec(rootfs, ["sleep", "1000"]))
    c.create_task("lost")
    c.start("lost")
    sup.kill9()
    import sqlite3
    db = sqlite3.connect(sup.state / "supervisor.db")
    db.execute("DELETE FROM processes WHERE container_id='lost'")
    db.commit()
    db.close()
    sup.start()
    assert sup.shim_pids() == []
    assert not (sup.root / "tasks" / "orph" / "lost").exists()
