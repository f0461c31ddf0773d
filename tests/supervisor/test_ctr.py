"""containerd's own `ctr` (Debian's 1.6.20) pointed at berth-supervisor: version, plugins,
namespaces, containers, tasks, events, and `ctr run --rootfs`."""
from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from supervisor import errors
from tests.helpers.supervisor_env import busybox_spec, read_file

CTR = shutil.which("ctr")
pytestmark = pytest.mark.skipif(CTR is None, reason="ctr (Debian's containerd package) is not installed")


@pytest.fixture
def ctr(supervisor, new_id, tmp_path):
    """Runs `ctr --address <supervisor> -n <namespace of this test>`; removes the cgroup parent
    ctr's specs name after the namespace (`/<ns>/<id>`), which runtimes leave behind."""
    ns = new_id("ctr")
    fifo_dir = tmp_path / "fifo"

    def run(*args, namespace=ns, check=True, timeout=30, fifo=False):
        if fifo:   # ctr makes its stdio FIFOs here instead of /run/containerd/fifo
            verb = 2 if args[0] == "tasks" else 1          # after `run` or `tasks exec`
            args = (*args[:verb], "--fifo-dir", str(fifo_dir), *args[verb:])
        argv = [CTR, "--address", str(supervisor.socket), "-n", namespace, *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc
    run.namespace = ns
    yield run
    client = supervisor.client(ns)
    from tests.helpers.supervisor_env import clear_namespace
    clear_namespace(client)
    for ctl in Path("/sys/fs/cgroup").iterdir():
        parent = ctl / ns
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_ctr_version_plugins_namespaces(ctr, supervisor):
    out = ctr("version").stdout
    assert "Version:  1.6.20+berth" in out
    assert f"UUID: {supervisor.client().server_uuid()}" in out
    plugins = table(ctr("plugins", "ls").stdout)
    assert ["io.containerd.grpc.v1", "tasks", "-", "ok"] in plugins
    supervisor.client(ctr.namespace).create_namespace(ctr.namespace, {"owner": "test"})
    rows = ctr("namespaces", "ls").stdout
    assert f"{ctr.namespace} owner=test" in rows


def test_ctr_run_rootfs_rm_detached_and_plain(ctr, supervisor, busybox_rootfs):
    proc = ctr("run", "--rm", "--rootfs", str(busybox_rootfs), "r1",
               "/bin/sh", "-c", "echo hello from ctr; exit 3", check=False, fifo=True)
    assert proc.returncode == 3 and proc.stdout == "hello from ctr\n"
    assert table(ctr("containers", "ls").stdout) == []

    ctr("run", "-d", "--rootfs", str(busybox_rootfs), "r2", "/bin/sleep", "100", fifo=True)
    (row,) = table(ctr("tasks", "ls").stdout)
    assert row[0] == "r2" and row[2] == "RUNNING"
    ctr("tasks", "kill", "-s", "KILL", "r2")
    deadline = time.monotonic() + 10
    while table(ctr("tasks", "ls").stdout)[0][2] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ctr("tasks", "delete", "r2")
    ctr("containers", "rm", "r2")

    proc = ctr("run", "--rootfs", str(busybox_rootfs), "r3", "/bin/true", fifo=True)
    assert proc.returncode == 0
    assert [r[0] for r in table(ctr("containers", "ls").stdout)] == ["r3"]
    assert table(ctr("tasks", "ls").stdout) == []      # ctr run deletes the task, not the container
    ctr("containers", "rm", "r3")
    assert table(ctr("containers", "ls").stdout) == []


def test_ctr_on_containers_berthd_started(supervisor, ctr, rootfs, tmp_path):
    """Containers made through the client library in namespace `berth`, as berthd makes them,
    listed, inspected and driven with `ctr -n berth`."""
    ns = "berth"
    c = supervisor.client(ns)
    try:
        log = tmp_path / "web-json.log"
        c.create_container("web", busybox_spec(["sh", "-c", "echo started; sleep 100"],
                                               root=str(rootfs), readonly=True),
                           image="docker.io/library/busybox:latest", labels={"com.example": "1"})
        pid = c.create_task("web", stdout=f"berth-jsonfile://{log}", stderr=f"berth-jsonfile://{log}")
        c.start("web")
        assert b'"log":"started\\n"' in read_file(log, want=b"started")
        run = lambda *a, **kw: ctr(*a, namespace=ns, **kw)   # noqa: E731
        assert table(run("containers", "ls").stdout) == [
            ["web", "docker.io/library/busybox:latest", "io.containerd.runc.v2"]]
        info = json.loads(run("containers", "info", "web").stdout)
        assert info["Labels"] == {"com.example": "1"} and info["Spec"]["process"]["args"][0] == "sh"
        assert table(run("tasks", "ls").stdout) == [["web", str(pid), "RUNNING"]]
        pids = [r[0] for r in table(run("tasks", "ps", "web").stdout)]
        assert str(pid) in pids
        proc = run("tasks", "exec", "--exec-id", "probe", "web", "/bin/sh", "-c", "echo in-exec; exit 4",
                   check=False, fifo=True)
        assert proc.returncode == 4 and proc.stdout == "in-exec\n"
        run("tasks", "pause", "web")
        assert table(run("tasks", "ls").stdout)[0][2] == "PAUSED"
        assert c.get_task("web")["status"] == "paused"
        run("tasks", "resume", "web")
        assert table(run("tasks", "ls").stdout)[0][2] == "RUNNING"
        run("tasks", "kill", "-s", "KILL", "web")
        assert c.wait("web")[0] == 137
        proc = run("tasks", "kill", "web", check=False)
        assert proc.returncode != 0 and "already finished" in proc.stderr
        run("tasks", "delete", "web")
        with pytest.raises(errors.NotFound):
            c.get_task("web")
        run("containers", "rm", "web")
        assert c.list_containers() == []
    finally:
        from tests.helpers.supervisor_env import clear_namespace
        clear_namespace(c)


def test_ctr_events(ctr, supervisor, busybox_rootfs):
    argv = [CTR, "--address", str(supervisor.socket), "events", f"namespace=={ctr.namespace}"]
    # SIGINT is what stops it; a suite started in the background (`&`) has it ignored, and ctr
    # would inherit that
    watcher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # ctr gives no sign that its subscription is live: a probe container is made and
        # removed until its events show (0.3 s was once not enough)
        seen = ""
        for attempt in range(20):
            ctr("run", "--rm", "--rootfs", str(busybox_rootfs), f"evprobe{attempt}", "/bin/true",
                fifo=True)
            if select.select([watcher.stdout], [], [], 0.2)[0]:
                seen = watcher.stdout.readline()
                break
        assert "evprobe" in seen, f"ctr events showed no probe's events: {seen!r}"
        ctr("run", "--rm", "--rootfs", str(busybox_rootfs), "ev1", "/bin/sh", "-c", "exit 2",
            check=False, fifo=True)
        time.sleep(0.3)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=10)
    # "<date> <time> +0000 UTC <namespace> <topic> <json>"
    rows = [line.split(" ", 6) for line in out.strip().splitlines()]
    rows = [r for r in rows if "evprobe" not in r[6]]
    assert [r[5] for r in rows] == ["/containers/create", "/tasks/create", "/tasks/start",
                                    "/tasks/exit", "/tasks/delete", "/containers/delete"], out + err
    assert {r[4] for r in rows} == {ctr.namespace}
    payload = json.loads(rows[3][6])
    assert payload["container_id"] == "ev1" and payload["exit_status"] == 2


def test_ctr_run_runc_binary_picks_the_runtime(ctr, supervisor, busybox_rootfs):
    """`ctr run --runc-binary` (containerd.runc.v1.Options.binary_name) overrides the default
    runtime: by name and by absolute path."""
    proc = ctr("run", "--rm", "--runc-binary", "runc", "--rootfs", str(busybox_rootfs), "rb1",
               "/bin/echo", "via-runc", fifo=True)
    assert proc.stdout == "via-runc\n"
    assert (supervisor.root / "runtime" / "runc" / ctr.namespace).is_dir()
    crun = shutil.which("crun")
    if crun:
        proc = ctr("run", "--rm", "--runc-binary", crun, "--rootfs", str(busybox_rootfs), "rb2",
                   "/bin/echo", "via-path", fifo=True, check=False)
        # (crun refuses this host's hybrid cgroup layout; the runtime it ran is what counts)
        assert (supervisor.root / "runtime" / "crun" / ctr.namespace).is_dir(), proc.stderr
