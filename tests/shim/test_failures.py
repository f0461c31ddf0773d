"""What the real stack hits: OOM kills, execs racing the init's exit, runtime failures, a shim
whose supervisor dies, a shim that is SIGKILLed (and `berth-shim delete` after it)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from shim import errors
from shim.client import ShimClient, pb
from tests.helpers.shim_env import children, exec_spec, wait_gone


def _collect(sub, count: int, timeout: float = 15.0) -> list:
    sub.sock.settimeout(timeout)
    got = []
    for ev in sub:
        got.append(ev)
        if len(got) == count:
            break
    sub.close()
    return got


def test_oom_kill_is_reported_before_the_exit(env):
    # dd with a 64 MiB block fills its buffer in one go: the 16 MiB limit kills it.
    env.create(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], memory=16 << 20)
    c = env.client
    sub = c.subscribe(0)
    c.start(env.id)
    assert c.wait(env.id, timeout=20)[0] == 137
    kinds = [e.WhichOneof("event") for e in _collect(sub, 4)]
    assert kinds == ["create", "start", "oom", "exit"]


def test_exec_exits_while_the_init_exits(env):
    env.create(["sh", "-c", "sleep 0.4"])
    c = env.client
    c.start(env.id)
    c.exec(env.id, "late", exec_spec(["sleep", "0.4"]))
    c.exec(env.id, "long", exec_spec(["sleep", "100"]))
    sub = c.subscribe(0)
    c.start(env.id, "late")
    c.start(env.id, "long")   # killed by the kernel when the init (pid 1 of its pid ns) exits
    assert c.wait(env.id, timeout=10)[0] == 0
    assert c.wait(env.id, "late", timeout=10)[0] in (0, 137)
    assert c.wait(env.id, "long", timeout=10)[0] == 137
    exits = [e.exit.id for e in _collect(sub, 9) if e.WhichOneof("event") == "exit"]
    assert sorted(exits[:2]) == ["late", "long"] and exits[2] == env.id, \
        "the init's exit is published after its execs'"
    with pytest.raises(errors.FailedPrecondition, match="stopped"):
        c.exec(env.id, "after", exec_spec(["true"]))


def test_killing_the_init_ends_an_exec_started_just_before(env):
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    c.exec(env.id, "e", exec_spec(["sleep", "100"]))
    c.start(env.id, "e")
    c.kill(env.id, signal.SIGKILL)
    assert c.wait(env.id, "e", timeout=10)[0] == 137
    assert c.wait(env.id, timeout=10)[0] == 137
    with pytest.raises(errors.FailedPrecondition, match="cannot start a stopped"):
        c.start(env.id)


def test_runtime_create_failure_returns_its_message_and_undoes_everything(env):
    c = env.start_shim()
    env.write_config(["true"])
    (env.bundle / "config.json").write_text("{not json")
    with pytest.raises(errors.RuntimeFailed, match="OCI runtime create failed: .+"):
        c.create(env.id, str(env.bundle), rootfs=env.rootfs_mounts)
    assert not os.path.ismount(env.bundle / "rootfs")
    assert not (env.bundle / "rootfs").exists()
    assert not os.path.exists(os.path.join(env.runtime_root, env.id))
    env.write_config(["true"])   # the shim still serves, and a good config now works
    pid = c.create(env.id, str(env.bundle), rootfs=env.rootfs_mounts)
    assert pid > 0
    with pytest.raises(errors.AlreadyExists):
        c.create(env.id, str(env.bundle))


def test_delete_of_running_and_start_twice_are_refused(env):
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    with pytest.raises(errors.FailedPrecondition, match="cannot start a running"):
        c.start(env.id)
    with pytest.raises(errors.FailedPrecondition, match="cannot delete a running"):
        c.delete(env.id)
    with pytest.raises(errors.InvalidArgument, match="exec id"):
        c.exec(env.id, "../x", exec_spec(["true"]))
    with pytest.raises(errors.InvalidArgument, match="no args"):
        c.exec(env.id, "x", {"cwd": "/"})
    with pytest.raises(errors.NotFound, match="does not exist"):
        c.wait(env.id, "nosuch")


def test_delete_of_a_created_task_kills_its_waiting_init(env):
    pid = env.create(["sleep", "100"])
    c = env.client
    got = c.delete(env.id)
    assert got[0] == pid and got[1] == 137
    assert wait_gone(env.shim_pid)
    assert wait_gone(pid)
    assert not os.path.ismount(env.bundle / "rootfs")


def test_shutdown_keeps_a_live_container_unless_now(env):
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    c.shutdown()
    time.sleep(0.2)
    assert env.shim_alive(), "shutdown without now leaves a shim with a live container running"
    assert c.state(env.id).status == pb.RUNNING


_SUPERVISOR = r"""
import sys
from shim.client import ShimClient
import subprocess
argv = sys.argv[1:]
out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
c = ShimClient(out)
c.create(ID, BUNDLE, rootfs=MOUNTS)
c.start(ID)
print("started", flush=True)
sys.stdin.read()
"""


def test_shim_outlives_its_supervisor(env):
    env.write_config(["sleep", "100"])
    code = _SUPERVISOR.replace("ID", repr(env.id)).replace("BUNDLE", repr(str(env.bundle))) \
        .replace("MOUNTS", repr(env.rootfs_mounts))
    sup = subprocess.Popen([sys.executable, "-c", code, *env.argv("start")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sup.stdout.readline().strip() == "started"
        env.shim_pid = int((env.bundle / "shim.pid").read_text())
        env.client = ShimClient(env.socket)
        sup.kill()
        sup.wait()
        with open(f"/proc/{env.shim_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[1]) != sup.pid, "the shim is not a child of the supervisor"
        assert int(fields[3]) == env.shim_pid, "the shim leads its own session"
        st = env.client.state(env.id)
        assert st.status == pb.RUNNING
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()


def test_delete_command_after_the_shim_was_killed(env):
    pid = env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    os.kill(env.shim_pid, signal.SIGKILL)
    assert wait_gone(env.shim_pid)
    out = subprocess.run(env.argv("delete"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["pid"] == pid and result["exit_status"] == 255 and result["reason"]
    assert wait_gone(pid), "the container was killed"
    assert not os.path.ismount(env.bundle / "rootfs")
    assert not os.path.exists(env.socket)
    state = subprocess.run([env.runtime, "--root", env.runtime_root, "state", env.id],
                           capture_output=True)
    assert state.returncode != 0, "the runtime forgot the container"


def test_delete_command_reports_the_recorded_exit(env):
    pid = env.create(["sh", "-c", "exit 9"])
    c = env.client
    c.start(env.id)
    c.wait(env.id, timeout=10)
    os.kill(env.shim_pid, signal.SIGKILL)
    assert wait_gone(env.shim_pid)
    out = subprocess.run(env.argv("delete"), capture_output=True, text=True, timeout=30)
    result = json.loads(out.stdout)
    assert (result["pid"], result["exit_status"]) == (pid, 9)
    assert not os.path.ismount(env.bundle / "rootfs")


def test_init_without_pid_namespace_takes_its_children_along(env):
    # No pid namespace: the kernel does not kill the init's children when it exits; the shim
    # does (runtime kill --all), as containerd does.
    env.create(["sh", "-c", "sleep 100 & echo $! > /tmp/child; sleep 0.3"], pid_ns=False)
    c = env.client
    c.start(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    child = int((env.tmp / "upper" / "tmp" / "child").read_text())
    assert wait_gone(child), "the init's background child was killed"


def test_kill_all_reaches_every_process(env):
    env.create(["sh", "-c", "trap '' TERM; sleep 100 & sleep 100 & wait"], pid_ns=False)
    c = env.client
    pid = c.start(env.id)
    time.sleep(0.2)
    assert len(c.pids(env.id)) == 3
    c.kill(env.id, signal.SIGKILL, all=True)
    assert c.wait(env.id, timeout=10)[0] == 137
    assert pid > 0


def test_deleting_an_exec_that_never_started_answers_its_waiters(env):
    import threading
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    c.exec(env.id, "init", exec_spec(["true"]))   # an exec may be called "init"
    result = []
    t = threading.Thread(target=lambda: result.append(c.wait(env.id, "init", timeout=10)))
    t.start()
    time.sleep(0.1)
    assert c.delete(env.id, "init")[0] == 0
    t.join(10)
    assert result and result[0][0] == 255
    assert c.state(env.id).pid == int((env.bundle / "init.pid").read_text())


def _no_mounts_runtime_state_or_socket(env) -> None:
    assert not os.path.ismount(env.bundle / "rootfs")
    assert not os.path.exists(env.socket)
    state = subprocess.run([env.runtime, "--root", env.runtime_root, "state", env.id],
                           capture_output=True)
    assert state.returncode != 0, "the runtime forgot the container"


def test_delete_command_shuts_down_a_shim_still_running_first(env):
    # containerd runs `shim delete` once the shim is gone; deleting the container under a live
    # shim would leave that shim serving nothing, forever.
    pid = env.create(["sleep", "100"])
    env.client.start(env.id)
    out = subprocess.run(env.argv("delete"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"shim {env.shim_pid} was still running: it was shut down" in out.stderr
    result = json.loads(out.stdout)
    assert result["pid"] == pid and result["exit_status"] == 255
    assert "was still running" in result["reason"]
    assert wait_gone(env.shim_pid, 0.5), "the shim is gone when delete returns"
    assert wait_gone(pid), "the container was killed"
    _no_mounts_runtime_state_or_socket(env)


def test_delete_command_kills_a_live_shim_that_does_not_answer(env):
    pid = env.create(["sleep", "100"])
    env.client.start(env.id)
    os.kill(env.shim_pid, signal.SIGSTOP)     # alive, but answers nothing
    try:
        out = subprocess.run(env.argv("delete"), capture_output=True, text=True, timeout=30)
    finally:
        if not wait_gone(env.shim_pid, 0):
            os.kill(env.shim_pid, signal.SIGCONT)
    assert out.returncode == 0, out.stderr
    assert "did not shut down" in out.stderr and "it was killed" in out.stderr
    assert json.loads(out.stdout)["pid"] == pid
    assert wait_gone(env.shim_pid, 0.5)
    assert wait_gone(pid)
    _no_mounts_runtime_state_or_socket(env)


_HANGING_RUNTIME = """#!/bin/sh
# The real runtime, except that a command whose verb has a file hang-VERB in {dir} hangs, once.
for arg; do
    case "$arg" in
        create|start|delete|kill|pause|resume|ps|exec|update|state) verb=$arg; break ;;
    esac
done
if [ -n "$verb" ] && rm "{dir}/hang-$verb" 2>/dev/null; then
    exec sleep 600
fi
exec {real} "$@"
"""


def test_runtime_command_timeout_answers_an_error_and_the_shim_stays_usable(env, monkeypatch):
    fake = env.tmp / "hanging-runtime"
    fake.write_text(_HANGING_RUNTIME.format(dir=env.tmp, real=shutil.which(env.runtime)))
    fake.chmod(0o755)
    env.runtime = str(fake)
    monkeypatch.setenv("BERTH_SHIM_RUNTIME_TIMEOUT", "0.5")
    init = env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    (env.tmp / "hang-pause").touch()
    began = time.monotonic()
    timed_out = r"OCI runtime pause failed: hanging-runtime pause: timed out after 0.5s"
    with pytest.raises(errors.RuntimeFailed, match=timed_out):
        c.pause(env.id)
    assert time.monotonic() - began < 5
    assert [pid for pid, _ in children(env.shim_pid)] == [init], "the hung command was killed"
    assert c.state(env.id).status == pb.RUNNING
    c.pause(env.id)     # the runtime answers again: so does the shim
    c.resume(env.id)
    c.kill(env.id, signal.SIGKILL)
    assert c.wait(env.id, timeout=10)[0] == 137
    (env.tmp / "hang-delete").touch()
    with pytest.raises(errors.RuntimeFailed, match="failed to delete task: .*timed out"):
        c.delete(env.id)
    assert env.shim_alive() and c.state(env.id).status == pb.STOPPED
    assert c.delete(env.id)[1] == 137
    assert wait_gone(env.shim_pid)


def test_bad_runtime_timeout_is_refused_at_start(env, monkeypatch):
    env.write_config(["true"])
    monkeypatch.setenv("BERTH_SHIM_RUNTIME_TIMEOUT", "soon")
    out = subprocess.run(env.argv("start"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "BERTH_SHIM_RUNTIME_TIMEOUT='soon': not a positive number of seconds" in out.stderr
    assert not (env.bundle / "shim.pid").exists()
