"""The everyday docker CLI 28 verbs against berthd, word for word as a user types them: exec
(-i, -it through a real pty, -d, -e, -w, -u; 126/127), stop, kill, start (-a, -ai), restart, wait,
pause, unpause, rename, top, stats --no-stream, events, inspect, restart policies."""
from __future__ import annotations

import json
import re
import time

from tests.helpers.engine_daemon import DOCKER
from tests.helpers.engine_pty import run_in_pty


def docker_ok(daemon, *args, input=None):
    p = daemon.docker(*args, input=input)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout.decode()


def wait_for_log(daemon, name: str, expected: bytes) -> None:
    for _ in range(200):
        logs = daemon.docker("logs", name).stdout
        if logs == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} logged {logs!r}, not {expected!r}")


def test_docker_exec(daemon):
    docker_ok(daemon, "run", "-d", "--name", "ex", "busybox", "sleep", "60")
    p = daemon.docker("exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")
    p = daemon.docker("exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "ex", "sh", "-c",
                      "echo $A; pwd; id -un")
    assert (p.returncode, p.stdout) == (0, b"1\n/tmp\nnobody\n"), p.stderr
    p = daemon.docker("exec", "-i", "ex", "tr", "a-z", "A-Z", input=b"piped\n")
    assert (p.returncode, p.stdout) == (0, b"PIPED\n")
    p = daemon.docker("exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/bg")
    assert (p.returncode, p.stdout) == (0, b"")
    for _ in range(50):
        p = daemon.docker("exec", "ex", "cat", "/tmp/bg")
        if p.returncode == 0:
            break
        time.sleep(0.1)
    assert p.stdout == b"bg\n"
    p = daemon.docker("exec", "ex", "no-such-command")
    assert p.returncode == 127 and b"executable file not found" in p.stdout + p.stderr
    p = daemon.docker("exec", "ex", "/etc/passwd")
    assert p.returncode == 126 and b"permission denied" in p.stdout + p.stderr
    p = daemon.docker("exec", "nosuch", "true")
    assert p.returncode == 1 and b"No such container: nosuch" in p.stderr
    docker_ok(daemon, "create", "--name", "ex-created", "busybox", "true")
    p = daemon.docker("exec", "ex-created", "true")
    assert p.returncode == 1 and b"is not running" in p.stderr


def test_docker_exec_it_through_a_terminal(daemon):
    docker_ok(daemon, "run", "-d", "--name", "ex-tty", "busybox", "sleep", "60")
    code, out = run_in_pty([DOCKER, "exec", "-it", "ex-tty", "sh"], daemon.env(),
                           wait_for=b"# ", keys=b"tty; stty size; echo $TERM; exit 5\r",
                           rows=33, cols=99)
    assert code == 5, out
    assert re.search(rb"/dev/pts/\d+\r\n33 99\r\nxterm\r\n", out), out


def test_docker_run_it_through_a_terminal(daemon):
    code, out = run_in_pty([DOCKER, "run", "-it", "--rm", "busybox", "sh"], daemon.env(),
                           wait_for=b"# ", keys=b"tty; stty size; echo $((6*7)); exit 4\r",
                           rows=31, cols=97)
    assert code == 4, out
    assert re.search(rb"/dev/pts/0\r\n31 97\r\n42\r\n", out), out
    assert daemon.docker("ps", "-aq").stdout == b""   # --rm


def test_docker_stop_kill_start_restart_wait(daemon):
    trap = ("trap 'echo term; exit 7' TERM; echo ready; while true; do sleep 0.05; done")
    docker_ok(daemon, "run", "-d", "--name", "lc", "busybox", "sh", "-c", trap)
    wait_for_log(daemon, "lc", b"ready\n")
    assert docker_ok(daemon, "stop", "lc") == "lc\n"
    assert docker_ok(daemon, "wait", "lc") == "7\n"
    assert docker_ok(daemon, "stop", "lc") == "lc\n"               # 304: not an error
    p = daemon.docker("kill", "lc")
    assert p.returncode == 1 and b"is not running" in p.stderr
    assert docker_ok(daemon, "start", "lc") == "lc\n"
    assert docker_ok(daemon, "kill", "-s", "TERM", "lc") == "lc\n"
    assert docker_ok(daemon, "wait", "lc") == "7\n"
    assert docker_ok(daemon, "restart", "-t", "1", "lc") == "lc\n"       # a stopped one
    wait_for_log(daemon, "lc", b"ready\nterm\nready\nterm\nready\n")
    assert docker_ok(daemon, "restart", "-t", "5", "lc") == "lc\n"       # a running one
    state = json.loads(docker_ok(daemon, "inspect", "lc"))[0]["State"]
    assert state["Running"] and state["Status"] == "running"
    wait_for_log(daemon, "lc", b"ready\nterm\nready\nterm\nready\nterm\nready\n")
    assert docker_ok(daemon, "kill", "lc") == "lc\n"
    assert docker_ok(daemon, "wait", "lc") == "137\n"
    p = daemon.docker("stop", "lc", "nosuch")
    assert p.returncode == 1 and p.stdout == b"lc\n" and b"No such container: nosuch" in p.stderr


def test_docker_start_attached_and_interactive(daemon):
    docker_ok(daemon, "create", "--name", "att", "busybox", "sh", "-c", "echo out; exit 4")
    p = daemon.docker("start", "-a", "att")
    assert (p.returncode, p.stdout) == (4, b"out\n")
    docker_ok(daemon, "create", "-i", "--name", "atti", "busybox", "sh", "-c",
              "cat; echo done")
    p = daemon.docker("start", "-ai", "atti", input=b"typed\n")
    assert (p.returncode, p.stdout) == (0, b"typed\ndone\n")
    p = daemon.docker("start", "-ai", "atti", input=b"again\n")      # a second run, fresh stdin
    assert (p.returncode, p.stdout) == (0, b"again\ndone\n")


def test_docker_pause_unpause_rename_top(daemon):
    docker_ok(daemon, "run", "-d", "--name", "pz", "busybox", "sleep", "60")
    assert docker_ok(daemon, "pause", "pz") == "pz\n"
    assert "Up " in docker_ok(daemon, "ps", "--filter", "name=pz") and \
        "(Paused)" in docker_ok(daemon, "ps", "--filter", "name=pz")
    assert docker_ok(daemon, "inspect", "-f", "{{.State.Status}}", "pz") == "paused\n"
    p = daemon.docker("pause", "pz")
    assert p.returncode == 1 and b"is already paused" in p.stderr
    assert docker_ok(daemon, "unpause", "pz") == "pz\n"
    assert docker_ok(daemon, "rename", "pz", "pz2") == ""
    assert docker_ok(daemon, "inspect", "-f", "{{.Name}} {{.State.Status}}", "pz2") == \
        "/pz2 running\n"
    top = docker_ok(daemon, "top", "pz2").splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert len(top) == 2 and top[1].endswith("sleep 60")
    assert docker_ok(daemon, "top", "pz2", "-o", "pid,comm").splitlines()[1].split()[1] == \
        "sleep"
    p = daemon.docker("rename", "pz2", "bad name")
    assert p.returncode == 1 and b"Invalid container name" in p.stderr


def test_docker_stats_no_stream(daemon):
    docker_ok(daemon, "run", "-d", "--name", "st", "-m", "64m", "busybox", "sleep", "60")
    out = docker_ok(daemon, "stats", "--no-stream", "st").splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
                              "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    row = out[1].split()
    assert row[1] == "st" and row[2].endswith("%") and row[5] == "64MiB" and row[-1] == "1"
    # without names: it follows the events, lists the running containers, reads each by short ID
    out = docker_ok(daemon, "stats", "--no-stream")
    assert any(line.split()[1:2] == ["st"] for line in out.splitlines()[1:]), out


def test_docker_events_since_until_and_filter(daemon):
    docker_ok(daemon, "run", "--name", "ev", "busybox", "true")
    docker_ok(daemon, "rm", "ev")
    # the CLI sends whole seconds: until the next one, which the stream waits for
    until = str(int(time.time()) + 1)
    out = docker_ok(daemon, "events", "--since", "1m", "--until", until, "--filter",
                    "container=ev", "--filter", "type=container")
    lines = out.splitlines()
    actions = [line.split()[2] for line in lines]
    assert actions == ["create", "attach", "start", "die", "destroy"], out
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die "
                        r"[0-9a-f]{64} \(execDuration=\d+, exitCode=0, image=busybox, name=ev\)",
                        lines[3]), lines[3]


def test_docker_inspect_falls_through_containers_images_and_the_rest(daemon):
    p = daemon.docker("inspect", "no-such-object")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"[]\n",
                                                  b"Error: No such object: no-such-object\n")
    image = json.loads(docker_ok(daemon, "inspect", "busybox"))
    assert image[0]["Id"].startswith("sha256:") and "busybox:latest" in image[0]["RepoTags"]
    docker_ok(daemon, "create", "--name", "insp", "busybox", "true")
    assert json.loads(docker_ok(daemon, "inspect", "insp"))[0]["Name"] == "/insp"


def test_docker_run_restart_on_failure(daemon):
    cid = docker_ok(daemon, "run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                    "echo try; exit 1").strip()
    for _ in range(200):
        out = docker_ok(daemon, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", cid)
        if out == "2 exited\n":
            break
        time.sleep(0.05)
    assert out == "2 exited\n"
    assert daemon.docker("logs", cid).stdout == b"try\ntry\ntry\n"
    assert "Exited (1)" in docker_ok(daemon, "ps", "-a", "--filter", f"id={cid}")
    p = daemon.docker("run", "-d", "--restart", "always:3", "busybox", "true")
    assert p.returncode == 125 and b"maximum retry count can only be used with 'on-failure'" \
        in p.stderr


def test_docker_update_resources_and_restart_policy(daemon):
    docker_ok(daemon, "run", "-d", "--name", "up", "-m", "50m", "busybox", "sleep", "60")
    assert docker_ok(daemon, "update", "-m", "100m", "--memory-swap", "200m", "--cpus", "0.5",
                     "--pids-limit", "7", "--restart", "on-failure:2", "up") == "up\n"
    seen = docker_ok(daemon, "exec", "up", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                     "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null "
                     "|| cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max")
    assert seen.split()[:2] == [str(100 << 20), "7"] and "50000" in seen.split()[2:], seen
    hc = json.loads(docker_ok(daemon, "inspect", "up"))[0]["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (
        100 << 20, 200 << 20, 500_000_000, 7)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    p = daemon.docker("update", "-m", "300m", "up")   # above the swap limit already set
    assert p.returncode == 1 and b"update the memoryswap at the same time" in p.stderr
    p = daemon.docker("update", "-m", "1m", "up")
    assert p.returncode == 1 and b"Minimum memory limit allowed is 6MB" in p.stderr
    p = daemon.docker("update", "-m", "64m", "no-such-container")
    assert p.returncode == 1 and b"No such container: no-such-container" in p.stderr
    daemon.docker("rm", "-f", "up")
