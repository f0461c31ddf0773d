"""Task lifecycle through the client library against a real supervisor, shims and runtime, for
each runtime (lowrt, the default, and runc): create/start/wait/delete, exit codes, exec, kill,
pause/resume, pids, update, metrics, stdio (files, attach, TTY), and the races real clients hit.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from supervisor import errors
from supervisor.shims import mounts_below
from tests.helpers.supervisor_env import busybox_spec, caller_is_chrooted, process_spec, read_file


def make(client, cid, rootfs, args, **spec_kw):
    client.create_container(cid, busybox_spec(args, root=str(rootfs), readonly=True, **spec_kw))


def events_until(sub, predicate, timeout=10.0):
    """Events from sub until one matches predicate (inclusive)."""
    got = []
    deadline = time.monotonic() + timeout
    for ev in sub:
        got.append(ev)
        if predicate(ev):
            return got
        assert time.monotonic() < deadline, f"no matching event in {got}"
    return got


def test_run_to_exit_code_and_output(runtime_client, rootfs, new_id, tmp_path):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    out, err = tmp_path / "out", tmp_path / "err"
    pid = c.create_task(cid, stdout=f"file://{out}", stderr=f"file://{err}")
    assert pid > 0
    task = c.get_task(cid)
    assert (task["status"], task["pid"]) == ("created", pid)
    assert c.start(cid) == pid
    status, exited_at = c.wait(cid)
    assert status == 7 and exited_at > 0
    assert c.get_task(cid)["status"] == "stopped"
    assert read_file(out) == b"out\n" and read_file(err) == b"err\n"
    assert c.delete_task(cid) == (pid, 7, exited_at)
    with pytest.raises(errors.NotFound, match=f"task {cid} not found"):
        c.get_task(cid)
    c.delete_container(cid)


def test_events_in_order_for_task_and_exec(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    sub = c.subscribe(f"namespace=={c.namespace}")
    make(c, cid, rootfs, ["sleep", "30"])
    pid = c.create_task(cid)
    c.start(cid)
    c.exec(cid, "e1", process_spec(["sh", "-c", "exit 4"]))
    epid = c.start(cid, "e1")
    assert c.wait(cid, "e1")[0] == 4
    assert c.delete_process(cid, "e1")[1] == 4
    c.kill(cid, signal.SIGKILL)
    assert c.wait(cid)[0] == 128 + 9
    c.delete_task(cid)
    c.delete_container(cid)
    evs = events_until(sub, lambda e: e["topic"] == "/containers/delete")
    sub.close()
    topics = [e["topic"] for e in evs]
    assert topics == ["/containers/create", "/tasks/create", "/tasks/start", "/tasks/exec-added",
                      "/tasks/exec-started", "/tasks/exit", "/tasks/exit", "/tasks/delete",
                      "/containers/delete"]
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    by_topic = {}
    for e in evs:
        by_topic.setdefault(e["topic"], []).append(e["event"])
    assert by_topic["/tasks/create"][0]["pid"] == pid
    assert by_topic["/tasks/exec-started"][0] == {"container_id": cid, "exec_id": "e1", "pid": epid}
    exec_exit, init_exit = by_topic["/tasks/exit"]
    assert (exec_exit["id"], exec_exit["exit_status"]) == ("e1", 4)
    assert (init_exit["id"], init_exit["pid"], init_exit["exit_status"]) == (cid, pid, 137)
    assert by_topic["/tasks/delete"][0]["exit_status"] == 137


def test_exec_output_and_list(runtime_supervisor, runtime_client, rootfs, new_id, tmp_path):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    pid = c.create_task(cid)
    c.start(cid)
    # runc's start returns once the init has read the exec FIFO, before it has exec'd the
    # program: until then the container's pid 1 is still `runc init`
    assert read_file(Path(f"/proc/{pid}/cmdline"), want=b"sleep").startswith(b"sleep")
    out = tmp_path / "exec.out"
    c.exec(cid, "hi", process_spec(["sh", "-c", "echo from-exec; cat /proc/1/cmdline"]),
           stdout=f"file://{out}")
    assert c.get_task(cid, "hi")["status"] == "created"
    c.start(cid, "hi")
    assert c.wait(cid, "hi")[0] == 0
    if runtime_supervisor.runtime == "runc" and caller_is_chrooted():
        # runc's exec joins the container's mount namespace and stays where setns leaves it,
        # at that namespace's root: the container's own only when runc's caller is not
        # chrooted. From a chroot it is the host's /, whose /proc/1 is the host's init (lowrt
        # enters the container's root after the setns).
        assert read_file(out, want=b"\n").startswith(b"from-exec\n")
    else:
        assert read_file(out, want=b"sleep") == b"from-exec\nsleep\x0030\x00"
    assert [t["id"] for t in c.list_tasks()] == [cid]
    c.delete_process(cid, "hi")
    with pytest.raises(errors.NotFound):
        c.get_task(cid, "hi")


def test_kill_all_pause_resume_pids(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sh", "-c", "sleep 30 & sleep 30; true"])
    pid = c.create_task(cid)
    c.start(cid)
    deadline = time.monotonic() + 5
    while len(c.pids(cid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = c.pids(cid)
    assert pid in pids and len(pids) == 3
    c.pause(cid)
    assert c.get_task(cid)["status"] == "paused"
    with pytest.raises(errors.FailedPrecondition):
        c.delete_task(cid)
    c.resume(cid)
    assert c.get_task(cid)["status"] == "running"
    c.kill(cid, signal.SIGKILL, all=True)
    assert c.wait(cid)[0] == 137
    for p in pids:
        assert not os.path.exists(f"/proc/{p}/cmdline") or not Path(f"/proc/{p}/cmdline").read_bytes()


def test_update_and_metrics(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"], memory_limit=64 << 20)
    c.create_task(cid)
    c.start(cid)
    m = c.metrics(cid)
    assert m["memory_limit"] == 64 << 20 and m["pids_current"] >= 1 and m["cgroup_version"] in (1, 2)
    c.update(cid, {"memory": {"limit": 96 << 20, "swap": 96 << 20}})
    assert c.metrics(cid)["memory_limit"] == 96 << 20


def test_attach_stdin_and_close_stdin(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sh", "-c", "cat; echo done >&2"])
    c.create_task(cid, stdin="berth-attach:")
    att = c.attach(cid, stdin=True)
    c.start(cid)
    att.write(b"hello\n")
    got: list[tuple[int, bytes]] = []
    it = iter(att)
    while b"hello" not in b"".join(d for s, d in got if s == 1):
        got.append(next(it))
    att.close_stdin()
    got += list(it)
    assert b"".join(d for s, d in got if s == 1) == b"hello\n"
    assert b"".join(d for s, d in got if s == 2) == b"done\n"
    assert c.wait(cid)[0] == 0


def test_attach_after_exit_ends_at_once(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["true"])
    c.create_task(cid)
    c.start(cid)
    c.wait(cid)
    start = time.monotonic()
    with c.attach(cid) as att:
        assert list(att) == []
    assert time.monotonic() - start < 5


def test_terminal_resize_through_attach(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sh", "-c", "read x; stty size"], terminal=True)
    c.create_task(cid, terminal=True, stdin="berth-attach:")
    att = c.attach(cid, stdin=True, stderr=False)
    c.start(cid)
    c.resize_pty(cid, 123, 45)
    att.write(b"go\n")
    output = b"".join(d for _, d in att)
    assert b"45 123" in output
    assert c.wait(cid)[0] == 0


def test_exit_before_start_returns(runtime_client, rootfs, new_id):
    """The process exits before Start's answer is back: start still answers with its pid, Wait
    (called first, as ctr does) gets the exit, and the events stay in order."""
    c, cid = runtime_client, new_id()
    sub = c.subscribe(f"namespace=={c.namespace},topic~=/tasks/")
    make(c, cid, rootfs, ["true"])
    pid = c.create_task(cid)
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("wait", c.wait(cid)))
    waiter.start()
    assert c.start(cid) == pid
    waiter.join(10)
    assert result["wait"][0] == 0
    c.delete_task(cid)
    evs = events_until(sub, lambda e: e["topic"] == "/tasks/delete")
    sub.close()
    assert [e["topic"] for e in evs if e["namespace"] == c.namespace] == [
        "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]


def test_exec_exits_while_init_exits(runtime_client, rootfs, new_id):
    """Killing everything at once: both waits return, the exec's exit is announced before the
    init's, and the task deletes cleanly."""
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    c.start(cid)
    c.exec(cid, "x1", process_spec(["sleep", "30"]))
    c.start(cid, "x1")
    sub = c.subscribe(f"namespace=={c.namespace},topic==/tasks/exit")
    results = {}
    threads = [threading.Thread(target=lambda k=k, e=e: results.setdefault(k, c.wait(cid, e)))
               for k, e in (("init", ""), ("exec", "x1"))]
    for t in threads:
        t.start()
    c.kill(cid, signal.SIGKILL, all=True)
    for t in threads:
        t.join(10)
    assert results["init"][0] == 137 and results["exec"][0] == 137
    evs = events_until(sub, lambda e: e["event"]["id"] == cid)
    sub.close()
    assert [e["event"]["id"] for e in evs] == ["x1", cid]
    c.delete_task(cid)


def test_kill_of_stopped_task_is_not_found(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["true"])
    c.create_task(cid)
    c.start(cid)
    c.wait(cid)
    with pytest.raises(errors.NotFound, match="already finished"):
        c.kill(cid, signal.SIGTERM)


def test_two_waits_at_once(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    c.start(cid)
    results = []
    threads = [threading.Thread(target=lambda: results.append(c.wait(cid))) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    c.kill(cid, signal.SIGKILL)       # (SIGTERM: pid 1 of a pid namespace ignores it)
    for t in threads:
        t.join(10)
    assert len(results) == 2 and results[0] == results[1] and results[0][0] == 137
    assert c.wait(cid) == results[0]        # a third, after the fact


def test_delete_created_task_kills_it(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    pid = c.create_task(cid)
    got_pid, status, _ = c.delete_task(cid)
    assert got_pid == pid and status == 137
    assert not os.path.exists(f"/proc/{pid}/cmdline") or not Path(f"/proc/{pid}/cmdline").read_bytes()


def test_delete_is_not_taken_for_a_dead_shim(supervisor, client, rootfs, new_id):
    """The shim exits once it has answered Delete, and its event stream can end before the
    Delete call resumes: that end must not be taken for a shim that died (a warning, and a
    `berth-shim delete` run after every such task). Racy by nature (a few percent of deletes
    here, before the fix), so many short tasks, one after another."""
    for _ in range(25):
        cid = new_id()
        make(client, cid, rootfs, ["true"])
        client.create_task(cid)
        client.start(cid)
        assert client.wait(cid)[0] == 0
        client.delete_task(cid)
        client.delete_container(cid)
    assert f"task {client.namespace}/" not in supervisor.log()


def test_rootfs_mounts_are_mounted_and_removed(runtime_supervisor, runtime_client, rootfs,
                                               new_id, tmp_path):
    """A relative root.path gets rootfs/ in the bundle, where the shim mounts the given mounts."""
    c, cid = runtime_client, new_id()
    c.create_container(cid, busybox_spec(["sh", "-c", "ls /bin/busybox"], root="rootfs",
                                         readonly=True))
    out = tmp_path / "out"
    c.create_task(cid, rootfs=[{"type": "bind", "source": str(rootfs), "options": ["rbind", "ro"]}],
                  stdout=f"file://{out}")
    bundle = runtime_supervisor.root / "tasks" / c.namespace / cid
    assert mounts_below(bundle) == [str(bundle / "rootfs")]
    assert (bundle / "config.json").exists()
    c.start(cid)
    assert c.wait(cid)[0] == 0
    assert read_file(out) == b"/bin/busybox\n"
    c.delete_task(cid)
    assert not bundle.exists() and mounts_below(bundle) == []


def test_oom_kill_is_announced(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    sub = c.subscribe(f"namespace=={c.namespace},topic==/tasks/oom")
    make(c, cid, rootfs, ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo $x"],
         memory_limit=16 << 20)
    c.create_task(cid)
    c.start(cid)
    assert c.wait(cid)[0] != 0
    (event,) = events_until(sub, lambda e: True)
    sub.close()
    assert event["event"] == {"container_id": cid}


def test_async_client_lifecycle_and_attach(runtime_supervisor, rootfs, new_id):
    import asyncio

    from supervisor.client import AsyncClient

    async def main():
        c = AsyncClient(runtime_supervisor.address, new_id("ans"))
        cid = new_id()
        try:
            await c.create_container(cid, busybox_spec(["sh", "-c", "read line; echo got $line"],
                                                       root=str(rootfs), readonly=True))
            pid = await c.create_task(cid, stdin="berth-attach:?once=1")
            att = await c.attach(cid, stdin=True)
            assert await c.start(cid) == pid
            await att.write(b"hi\n")
            out = b"".join([d async for s, d in att if s == 1])
            assert out == b"got hi\n"
            assert (await c.wait(cid))[0] == 0
            assert (await c.get_task(cid))["status"] == "stopped"
            assert (await c.delete_task(cid))[1] == 0
            with pytest.raises(errors.NotFound):
                await c.get_task(cid)
        finally:
            try:
                await c.delete_container(cid)
            finally:
                await c.close()
    asyncio.run(main())


def test_close_io_ends_stdin(runtime_client, rootfs, new_id, tmp_path):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sh", "-c", "cat; echo eof"])
    out = tmp_path / "out"
    c.create_task(cid, stdin="berth-attach:", stdout=f"file://{out}")
    c.start(cid)
    with c.attach(cid, stdin=True, stdout=False, stderr=False) as att:
        att.write(b"line\n")
        assert read_file(out, want=b"line") == b"line\n"
    c.close_io(cid)
    assert c.wait(cid)[0] == 0
    assert read_file(out, want=b"eof") == b"line\neof\n"


def test_exec_with_a_terminal(runtime_client, rootfs, new_id):
    c, cid = runtime_client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    c.start(cid)
    c.exec(cid, "tty1", process_spec(["sh", "-c", "tty; stty size"], terminal=True), terminal=True)
    att = c.attach(cid, "tty1")
    c.start(cid, "tty1")
    c.resize_pty(cid, 90, 30, exec_id="tty1")
    output = b"".join(d for _, d in att)
    assert output.startswith(b"/dev/pts/")
    assert c.wait(cid, "tty1")[0] == 0
