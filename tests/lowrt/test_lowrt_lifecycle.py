"""lowrt's runc command line: create/start/state/kill/delete/run/list/spec, against the kernel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.lowrt_env import LOWRT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError("no PPid")


def _wait_stopped(rt, cid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while rt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, f"{cid} did not stop"
        time.sleep(0.02)


def test_spec_writes_runc_example_and_refuses_to_overwrite(short_tmp):
    subprocess.run([LOWRT, "spec", "-b", str(short_tmp)], check=True)
    config = json.loads((short_tmp / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]
    assert {n["type"] for n in config["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount"}
    assert config["root"] == {"path": "rootfs", "readonly": True}
    again = subprocess.run([LOWRT, "spec", "-b", str(short_tmp)], capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr


def test_spec_rootless_maps_the_caller_to_root(short_tmp):
    subprocess.run([LOWRT, "spec", "--rootless", "--bundle", str(short_tmp)], check=True)
    linux = json.loads((short_tmp / "config.json").read_text())["linux"]
    assert {"type": "user"} in linux["namespaces"]
    assert {"type": "network"} not in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 0, "size": 1}]
    assert "resources" not in linux


def test_create_start_state_kill_delete(rt, bundle, cid, short_tmp):
    b = bundle(["sleep", "60"])
    pid_file = short_tmp / "init.pid"
    rt.run("create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    pid = int(pid_file.read_text())
    st = rt.state(cid)
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == cid
    assert st["bundle"] == str(b) and st["ociVersion"] and st["created"].endswith("Z")
    # blocked before exec: still lowrt's code, not sleep
    assert b"sleep" not in open(f"/proc/{pid}/cmdline", "rb").read()
    rt.run("start", cid)
    assert rt.state(cid)["status"] == "running"
    assert open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] == b"sleep"
    again = rt.run("start", cid, check=False)
    assert again.returncode == 1 and b"already running" in again.stderr
    refused = rt.run("delete", cid, check=False)
    assert refused.returncode == 1 and b"not stopped: running" in refused.stderr
    rt.run("kill", cid, "KILL")
    _wait_stopped(rt, cid)
    assert rt.state(cid)["pid"] == 0
    gone = rt.run("kill", cid, "KILL", check=False)
    assert gone.returncode == 1 and b"container not running" in gone.stderr
    rt.run("delete", cid)
    missing = rt.run("state", cid, check=False)
    assert missing.returncode == 1 and b"does not exist" in missing.stderr
    assert not (rt.root / cid).exists()


def test_create_returns_with_init_reparented_to_the_callers_subreaper(rt, bundle, cid, short_tmp):
    """The shim is a child subreaper: when create returns, the init must be its child."""
    b = bundle(["sleep", "60"])
    pid_file = short_tmp / "pid"
    script = (
        "import ctypes, subprocess, sys, os\n"
        "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"
        f"subprocess.run({rt.argv('create', '--bundle', str(b), '--pid-file', str(pid_file), cid)!r}, check=True)\n"
        f"pid = int(open({str(pid_file)!r}).read())\n"
        "ppid = [l for l in open(f'/proc/{pid}/status') if l.startswith('PPid:')][0].split()[1]\n"
        "print(os.getpid(), ppid)\n"
        f"subprocess.run({rt.argv('delete', '--force', cid)!r}, check=True)\n"
    )
    rt.ids.add(cid)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    me, parent = out.stdout.split()
    assert me == parent


def test_kill_takes_signal_names_and_numbers(rt, bundle, cid):
    b = bundle(["sh", "-c", "trap 'exit 42' USR1; trap 'exit 43' TERM; while :; do sleep 0.05; done"])
    rt.run("run", "-d", "--bundle", str(b), cid)
    bad = rt.run("kill", cid, "NOPE", check=False)
    assert bad.returncode == 1 and b'unknown signal "NOPE"' in bad.stderr
    rt.run("kill", cid, "usr1")
    _wait_stopped(rt, cid)
    rt.run("delete", cid)
    rt.run("run", "-d", "--bundle", str(b), cid)
    rt.run("kill", cid)  # SIGTERM by default
    _wait_stopped(rt, cid)
    rt.run("delete", cid)
    rt.run("run", "-d", "--bundle", str(b), cid)
    rt.run("kill", cid, "9")
    _wait_stopped(rt, cid)
    rt.run("delete", cid)


def test_run_exits_with_the_process_status(rt, bundle, cid):
    b = bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    proc = rt.run("run", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 7
    assert proc.stdout == b"out\n" and proc.stderr == b"err\n"
    assert not (rt.root / cid).exists()


def test_run_of_a_killed_process_exits_128_plus_signal(rt, bundle, cid):
    b = bundle(["sh", "-c", "echo ready; exec sleep 60"])
    proc = subprocess.Popen(rt.argv("run", "--bundle", str(b), cid), stdout=subprocess.PIPE)
    rt.ids.add(cid)
    assert proc.stdout.readline() == b"ready\n"
    rt.run("kill", cid, "KILL")
    assert proc.wait(timeout=10) == 137


def test_run_forwards_signals(rt, bundle, cid):
    b = bundle(["sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done"])
    proc = subprocess.Popen(rt.argv("run", "--bundle", str(b), cid), stdout=subprocess.PIPE)
    rt.ids.add(cid)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(15)
    assert proc.wait(timeout=10) == 5
    assert proc.stdout.read() == b"got-term\n"


def test_run_detach_then_delete_force(rt, bundle, cid, short_tmp):
    b = bundle(["sleep", "60"])
    rt.run("run", "--detach", "--bundle", str(b), "--pid-file", str(short_tmp / "p"), cid)
    pid = int((short_tmp / "p").read_text())
    assert rt.state(cid)["status"] == "running"
    rt.run("delete", "--force", cid)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not (rt.root / cid).exists()


def test_delete_of_created_container_kills_its_init(rt, bundle, cid, short_tmp):
    b = bundle(["sleep", "60"])
    rt.run("create", "--bundle", str(b), "--pid-file", str(short_tmp / "p"), cid)
    pid = int((short_tmp / "p").read_text())
    rt.run("delete", cid)  # runc deletes a created container without --force
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_delete_force_of_unknown_container_succeeds(rt):
    assert rt.run("delete", "--force", "lt-never-made").returncode == 0
    plain = rt.run("delete", "lt-never-made", check=False)
    assert plain.returncode == 1 and b"does not exist" in plain.stderr


def test_list_table_and_json(rt, bundle, cid):
    b = bundle(["sleep", "60"])
    rt.run("create", "--bundle", str(b), cid)
    table = rt.run("list").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid and table[1].split()[2] == "created"
    listed = json.loads(rt.run("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [cid] and listed[0]["owner"] == "root"
    assert rt.run("list", "-q").stdout.decode() == f"{cid}\n"


def test_list_of_empty_root_prints_header_or_null(rt):
    assert json.loads(rt.run("list", "-f", "json").stdout) is None
    assert rt.run("list").stdout.decode().split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_json_log_gets_runc_style_error_lines(rt, cid):
    out = rt.run("start", cid, check=False)
    assert out.returncode == 1
    assert b"does not exist" in out.stderr  # on stderr too, since the log is a file
    line = json.loads(rt.log.read_text().splitlines()[-1])
    assert set(line) == {"level", "msg", "time"} and line["level"] == "error"
    assert "does not exist" in line["msg"]


def test_text_log_and_version(rt, short_tmp):
    out = subprocess.run([LOWRT, "--root", str(rt.root), "state", "lt-none"], capture_output=True,
                         text=True)
    assert out.returncode == 1 and 'level=error msg="container lt-none does not exist"' in out.stderr
    version = subprocess.run([LOWRT, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("lowrt version") and "spec: 1.0.2-dev" in version.stdout


def test_unknown_command_and_flag_are_errors(rt):
    assert rt.run("frobnicate", check=False).returncode == 1
    bad = rt.run("create", "--no-such-flag", "x", check=False)
    assert bad.returncode == 1 and b"flag provided but not defined" in bad.stderr


def test_systemd_cgroup_is_a_clear_error(rt, bundle, cid):
    b = bundle(["true"])
    out = subprocess.run([LOWRT, "--root", str(rt.root), "--systemd-cgroup", "create", "-b", str(b), cid],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "--systemd-cgroup is not supported" in out.stderr
    assert not (rt.root / cid).exists()


def test_help_lists_commands_and_their_flags():
    top = subprocess.run([LOWRT, "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "exec" in top.stdout and "--root" in top.stdout
    create = subprocess.run([LOWRT, "create", "--help"], capture_output=True, text=True)
    assert create.returncode == 0 and "--console-socket" in create.stdout and "--bundle, -b" in create.stdout


def test_run_keep_leaves_a_stopped_container_to_delete(rt, bundle, cid):
    b = bundle(["true"])
    rt.run("run", "--keep", "-b", str(b), cid)
    st = rt.state(cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    rt.run("delete", cid)
    assert not (rt.root / cid).exists()


def _v2_layout_argv() -> list[str]:
    """What runs lowrt where /sys/fs/cgroup is the cgroup2 mount: as it is on a pure v2 host,
    or, on a hybrid host, in a private mount namespace where the host's cgroup2 hierarchy is
    mounted alone at /sys/fs/cgroup (the v1 hierarchies gone from its view)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return []
    if not os.path.ismount("/sys/fs/cgroup/unified"):
        pytest.skip("needs a cgroup2 hierarchy")
    return ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            'umount -R /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup; exec "$@"', "sh"]


def _run_on_v2(argv: list[str]) -> subprocess.CompletedProcess:
    """argv (lowrt's) run where /sys/fs/cgroup is the cgroup2 mount; the controllers it
    enables in the hierarchy's root (what the root offers, as runc) are disabled again."""
    wrap = _v2_layout_argv()
    unified = "/sys/fs/cgroup" if not wrap else "/sys/fs/cgroup/unified"
    with open(f"{unified}/cgroup.subtree_control") as f:
        before = set(f.read().split())
    try:
        return subprocess.run(wrap + argv, capture_output=True, timeout=30)
    finally:
        with open(f"{unified}/cgroup.subtree_control") as f:
            added = set(f.read().split()) - before
        for c in added:
            try:
                with open(f"{unified}/cgroup.subtree_control", "w") as f:
                    f.write(f"-{c}")
            except OSError:
                pass  # another test's cgroup uses it and will restore it


def test_on_cgroup_v2_the_init_is_cloned_into_its_cgroup(rt, bundle, cid):
    # lowrt clones the container's process straight into its cgroup (CLONE_INTO_CGROUP): it
    # never migrates, and `--debug` says so
    b = bundle(["sh", "-c", "grep ^0:: /proc/self/cgroup"])
    out = _run_on_v2(rt.argv("--debug", "run", "-b", str(b), cid))
    assert out.returncode == 0, out.stderr
    own = open("/proc/self/cgroup").read().split("0::", 1)[1].splitlines()[0]
    # relative cgroupsPath (none: the id) on v2: beside lowrt's own cgroup, as runc
    assert out.stdout.decode().strip() == "0::" + os.path.join(os.path.dirname(own), cid)
    assert "forked into its cgroup" in rt.log.read_text()


def test_on_cgroup_v2_a_limit_refused_after_the_fork_leaves_nothing(rt, bundle, cid):
    # On v2 the cgroup's directories are made before the fork and its limits set after it,
    # while the child makes its namespaces: a limit the kernel refuses then has a process and
    # directories to undo, parents that lowrt made for a nested cgroupsPath included.
    top = f"bt-nest-{cid}"
    b = bundle(["true"], linux={"cgroupsPath": f"/{top}/mid/{cid}",
                                "resources": {"unified": {"no.such.file": "1"}}})
    out = _run_on_v2(rt.argv("--debug", "run", "-b", str(b), cid))
    assert out.returncode == 1
    assert b"no.such.file" in out.stderr and b"is not enabled" in out.stderr, out.stderr
    log = rt.log.read_text()
    assert "child forked" in log and "cgroup configured" not in log
    unified = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else \
        "/sys/fs/cgroup/unified"
    assert not os.path.exists(f"{unified}/{top}")
    assert not (rt.root / cid).exists()
