"""Verbs on a running container: exec, ps, pause/resume, update, events, kill --all; and the
cgroup limits the kernel enforces."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.lowrt_env import CgroupView, make_bundle, write_config


@pytest.fixture
def running(rt, probe_rootfs, short_tmp, cid):
    """A running container (sleep), its id and init pid; limits may be passed as resources."""
    def start(resources=None, args=("sleep", "600"), linux=None, **changes):
        b = short_tmp / "running"
        linux = dict(linux or {})
        if resources:
            linux["resources"] = resources
        make_bundle(b, probe_rootfs, list(args), linux=linux, **changes)
        rt.run("run", "-d", "-b", str(b), "--pid-file", str(short_tmp / "init.pid"), cid)
        return cid, int((short_tmp / "init.pid").read_text())
    return start


def test_exec_runs_in_the_containers_namespaces_and_cgroup(rt, running):
    cid, pid = running()
    out = rt.run("exec", cid, "/probe", "exit:3", check=False)
    assert out.returncode == 3
    seen = json.loads(out.stdout)
    for kind in ("pid", "mnt", "net", "uts", "ipc"):
        assert seen["ns"][kind] == os.readlink(f"/proc/{pid}/ns/{kind}")
    assert seen["cgroup"] == open(f"/proc/{pid}/cgroup").read()
    assert seen["pid"] != 1 and seen["ppid"] == 0  # its parent is outside the pid namespace
    assert seen["no_new_privs"] == 1 and seen["fds"].keys() == {"0", "1", "2"}


def test_exec_flags_env_cwd_user_cap_tty_off(rt, running):
    cid, _ = running()
    out = rt.run("exec", "--env", "A=1", "-e", "B=two", "--cwd", "/tmp", "--user", "1000:1000",
                 "--additional-gids", "5", "--cap", "CAP_KILL", cid, "/probe")
    seen = json.loads(out.stdout)
    assert {"A=1", "B=two"} <= set(seen["env"])
    assert seen["cwd"] == "/tmp" and (seen["uid"], seen["gid"]) == (1000, 1000)
    assert seen["groups"] == [5]
    assert seen["cap_bounding"] & (1 << 5)  # CAP_KILL added to the bounding set
    assert seen["isatty0"] == 0


def test_exec_process_file(rt, running, short_tmp):
    cid, _ = running()
    process = {"args": ["/probe"], "cwd": "/", "env": ["PATH=/bin", "X=from-file"],
               "user": {"uid": 7, "gid": 8}, "noNewPrivileges": False}
    (short_tmp / "p.json").write_text(json.dumps(process))
    seen = json.loads(rt.run("exec", "--process", str(short_tmp / "p.json"), cid).stdout)
    assert "X=from-file" in seen["env"] and (seen["uid"], seen["gid"]) == (7, 8)
    assert seen["no_new_privs"] == 0


def test_exec_detach_writes_pid_file_and_reparents_to_callers_subreaper(rt, running, short_tmp):
    cid, _ = running()
    pid_file = short_tmp / "exec.pid"
    script = (
        "import ctypes, subprocess, os\n"
        "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"
        f"subprocess.run({rt.argv('exec', '-d', '--pid-file', str(pid_file), cid, 'sleep', '30')!r},"
        " check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"pid = int(open({str(pid_file)!r}).read())\n"
        "ppid = [l for l in open(f'/proc/{pid}/status') if l.startswith('PPid:')][0].split()[1]\n"
        "print(os.getpid(), ppid)\n"
        "os.kill(pid, 9); os.waitpid(pid, 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    me, parent = out.stdout.split()
    assert me == parent


def test_exec_as_root_into_a_cwd_only_the_containers_user_may_enter(rt, probe_rootfs, short_tmp,
                                                                    cid):
    # as runc: the chdir comes while lowrt still holds its capabilities (the config's root has
    # no CAP_DAC_OVERRIDE here), and for the container's own user, after its uid is set
    home = short_tmp / "home42"
    home.mkdir()
    os.chown(home, 42, 42)
    home.chmod(0o700)
    b = short_tmp / "b"
    config = make_bundle(b, probe_rootfs, ["sleep", "600"], process={"cwd": "/home42",
                                                                     "user": {"uid": 42, "gid": 42}})
    config["mounts"].append({"destination": "/home42", "type": "bind", "source": str(home),
                             "options": ["rbind"]})
    write_config(b, config)
    rt.run("run", "-d", "-b", str(b), cid)
    out = rt.run("exec", "--user", "0", cid, "pwd")
    assert out.stdout == b"/home42\n"
    assert rt.run("exec", cid, "id", "-u").stdout == b"42\n"


def test_exec_errors_exit_255(rt, running, cid):
    running()
    missing = rt.run("exec", cid, "/no/such/program", check=False)
    assert missing.returncode == 255 and b"no such file or directory" in missing.stderr
    assert rt.run("exec", cid, check=False).returncode == 255  # no args
    rt.run("kill", cid, "KILL")
    time.sleep(0.2)
    stopped = rt.run("exec", cid, "true", check=False)
    assert stopped.returncode == 255 and b"stopped container" in stopped.stderr


def test_ps_json_lists_the_containers_processes(rt, running):
    cid, pid = running()
    rt.run("exec", "-d", cid, "sleep", "30")
    pids = json.loads(rt.run("ps", "--format", "json", cid).stdout)
    assert pid in pids and len(pids) == 2
    table = rt.run("ps", cid).stdout.decode().splitlines()
    assert "PID" in table[0] and len(table) == 3


def test_pause_and_resume(rt, running):
    cid, pid = running()
    rt.run("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    assert CgroupView(pid).frozen()
    assert open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("D", "S")
    paused_exec = rt.run("exec", cid, "true", check=False)
    assert paused_exec.returncode == 255 and b"paused" in paused_exec.stderr
    rt.run("resume", cid)
    assert rt.state(cid)["status"] == "running"
    again = rt.run("resume", cid, check=False)
    assert again.returncode == 1 and b"not paused" in again.stderr


def test_delete_force_of_a_paused_container(rt, running):
    cid, pid = running()
    rt.run("pause", cid)
    rt.run("delete", "--force", cid)
    assert not (rt.root / cid).exists()


def test_update_resources_from_stdin_and_from_flags(rt, running):
    cid, pid = running()
    rt.run("update", "--resources", "-", cid, input=json.dumps(
        {"memory": {"limit": 64 << 20}, "pids": {"limit": 42}, "cpu": {"shares": 512, "quota": 0}}).encode())
    cg = CgroupView(pid)
    assert cg.memory_limit() == 64 << 20 and cg.pids_max() == "42"
    assert cg.cpu_shares_as_configured(512)
    rt.run("update", "--memory", "32m", "--cpu-quota", "50000", "--cpu-period", "100000",
           "--pids-limit", "17", cid)
    assert cg.memory_limit() == 32 << 20 and cg.cpu_quota() == 50000 and cg.pids_max() == "17"


def test_events_stats_in_runcs_shape(rt, running):
    cid, _ = running(resources={"memory": {"limit": 128 << 20}, "pids": {"limit": 100}})
    event = json.loads(rt.run("events", "--stats", cid).stdout)
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 128 << 20
    assert data["pids"]["current"] == 1 and data["pids"]["limit"] == 100
    assert "cpu" in data and "blkio" in data


def test_events_stream_stops_when_the_container_stops(rt, running):
    cid, _ = running()
    proc = subprocess.Popen(rt.argv("events", "--interval", "100ms", cid), stdout=subprocess.PIPE)
    first = json.loads(proc.stdout.readline())
    assert first["type"] == "stats"
    rt.run("kill", cid, "KILL")
    assert proc.wait(timeout=30) == 0


def test_kill_all_signals_every_process(rt, running):
    namespaces = [{"type": t} for t in ("mount", "uts", "ipc", "network")]  # host pid namespace
    cid, pid = running(linux={"namespaces": namespaces})
    rt.run("exec", "-d", cid, "sleep", "30")
    pids = json.loads(rt.run("ps", "-f", "json", cid).stdout)
    assert len(pids) == 2
    rt.run("kill", "--all", cid, "KILL")
    deadline = time.monotonic() + 5
    while json.loads(rt.run("ps", "-f", "json", cid).stdout):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_memory_limit_is_enforced(rt, probe_rootfs, short_tmp, cid):
    b = short_tmp / "mem"
    make_bundle(b, probe_rootfs, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                linux={"resources": {"memory": {"limit": 16 << 20, "swap": 16 << 20}}})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 137  # the OOM killer's SIGKILL


def test_pids_limit_is_enforced(rt, probe_rootfs, short_tmp, cid):
    b = short_tmp / "pids"
    make_bundle(b, probe_rootfs,
                ["sh", "-c", "for i in 1 2 3 4; do sleep 5 & done; echo four; sleep 5 & echo five"],
                linux={"resources": {"pids": {"limit": 5}}})
    out = rt.run("run", "-b", str(b), cid, check=False)
    # sh and four sleeps fill the limit: the fifth fork fails, and busybox sh gives up
    assert out.stdout == b"four\n" and b"can't fork" in out.stderr and out.returncode == 2


def test_cpu_limits_are_written(rt, running):
    cid, pid = running(resources={"cpu": {"shares": 256, "quota": 20000, "period": 100000,
                                          "cpus": "0"}})
    cg = CgroupView(pid)
    assert cg.cpu_shares_as_configured(256) and cg.cpu_quota() == 20000 and cg.cpuset_cpus() == "0"


def test_absolute_cgroups_path(rt, running, cid):
    parent = "lowrt-test-" + cid
    try:
        _, pid = running(linux={"cgroupsPath": f"/{parent}/{cid}"})
        cg = CgroupView(pid)
        assert cg.dir("pids").endswith(f"/{parent}/{cid}") and cg.dir("memory").endswith(f"/{parent}/{cid}")
        rt.run("delete", "--force", cid)
        assert not os.path.exists(cg.dir("pids"))
    finally:
        rt.run("delete", "--force", cid, check=False)
        for top in ["/sys/fs/cgroup", *(f"/sys/fs/cgroup/{h}" for h in os.listdir("/sys/fs/cgroup"))]:
            if os.path.isdir(f"{top}/{parent}"):  # runc too leaves the parents
                os.rmdir(f"{top}/{parent}")


def test_events_reports_an_oom_kill(rt, running):
    cid, _ = running(resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}},
                     args=("sh", "-c", "while [ ! -e /dev/shm/go ]; do sleep 0.05; done; "
                                       "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 60"))
    proc = subprocess.Popen(rt.argv("events", "--interval", "100ms", cid), stdout=subprocess.PIPE)
    try:
        assert json.loads(proc.stdout.readline())["type"] == "stats"  # events is watching
        rt.run("exec", cid, "touch", "/dev/shm/go")
        deadline = time.monotonic() + 30
        while (event := json.loads(proc.stdout.readline()))["type"] != "oom":
            assert time.monotonic() < deadline, "no oom event"
        assert event == {"type": "oom", "id": cid}
    finally:
        proc.kill()
        proc.wait()


def test_exec_into_a_container_with_a_user_namespace(rt, running, userns_ok):
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network", "user")]
    cid, pid = running(linux={"namespaces": namespaces,
                              "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
                              "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]})
    seen = json.loads(rt.run("exec", cid, "/probe").stdout)
    assert seen["ns"]["user"] == os.readlink(f"/proc/{pid}/ns/user")
    assert seen["uid_map"].split() == ["0", "200000", "65536"] and seen["uid"] == 0
