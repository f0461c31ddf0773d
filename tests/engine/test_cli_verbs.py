"""The berth CLI's container verbs beyond run/ps/logs/rm, with docker's output and exit codes:
exec, stop, kill, start (-a, -i), restart, wait, pause, unpause, rename, top, stats, inspect,
events."""
from __future__ import annotations

import json
import re
import time

from engine.cli.events import timestamp
from engine.cli.inspect import render, stats_row
from tests.helpers.engine_daemon import VENV_BIN
from tests.helpers.engine_pty import run_in_pty


def berth_ok(daemon, *args, input=None) -> str:
    p = daemon.berth(*args, input=input)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout.decode()


def test_exec(daemon):
    berth_ok(daemon, "run", "-d", "--name", "bx", "busybox", "sleep", "60")
    p = daemon.berth("exec", "bx", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")
    assert berth_ok(daemon, "exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "bx", "sh", "-c",
                    "echo $A; pwd; id -u") == "1\n/tmp\n65534\n"
    assert berth_ok(daemon, "exec", "-i", "bx", "cat", input=b"in\n") == "in\n"
    assert berth_ok(daemon, "exec", "-d", "bx", "touch", "/tmp/d") == ""
    p = daemon.berth("exec", "bx", "no-such-command")
    assert p.returncode == 127 and b"executable file not found" in p.stdout
    p = daemon.berth("exec", "-it", "bx", "true", input=b"")
    assert (p.returncode, p.stderr) == (1, b"the input device is not a TTY\n")
    p = daemon.berth("exec", "nosuch", "true")
    assert p.returncode == 1 and p.stderr == b"Error response from daemon: No such container: " \
                                             b"nosuch\n"


def test_exec_with_a_terminal(daemon):
    berth_ok(daemon, "run", "-d", "--name", "bxt", "busybox", "sleep", "60")
    code, out = run_in_pty([str(VENV_BIN / "berth"), "exec", "-it", "bxt", "sh"], daemon.env(),
                           wait_for=b"# ", keys=b"stty size; exit 6\r", rows=20, cols=70)
    assert code == 6 and b"20 70\r\n" in out, out


def test_lifecycle_verbs(daemon):
    trap = "trap 'exit 7' TERM; while true; do sleep 0.05; done"
    berth_ok(daemon, "run", "-d", "--name", "bl", "busybox", "sh", "-c", trap)
    time.sleep(0.3)                               # the trap is set
    assert berth_ok(daemon, "stop", "bl") == "bl\n"
    assert berth_ok(daemon, "wait", "bl") == "7\n"
    assert berth_ok(daemon, "stop", "bl") == "bl\n"          # already stopped: fine
    p = daemon.berth("kill", "bl")
    assert p.returncode == 1 and b"is not running" in p.stderr
    assert berth_ok(daemon, "start", "bl") == "bl\n"
    assert berth_ok(daemon, "pause", "bl") == "bl\n"
    assert berth_ok(daemon, "inspect", "-f", "{{.State.Status}} {{json .State.Paused}}",
                    "bl") == "paused true\n"
    assert berth_ok(daemon, "unpause", "bl") == "bl\n"
    assert berth_ok(daemon, "restart", "-t", "1", "bl") == "bl\n"
    assert berth_ok(daemon, "rename", "bl", "bl2") == ""
    assert berth_ok(daemon, "kill", "-s", "KILL", "bl2") == "bl2\n"
    assert berth_ok(daemon, "wait", "bl2") == "137\n"
    p = daemon.berth("start", "bl2", "nosuch")
    assert p.returncode == 1 and p.stdout == b"bl2\n"
    assert b"No such container: nosuch" in p.stderr and b"failed to start containers" in p.stderr


def test_start_attached_and_interactive(daemon):
    daemon.berth("run", "--name", "bsa", "busybox", "sh", "-c", "echo hi; exit 2")
    p = daemon.berth("start", "-a", "bsa")
    assert (p.returncode, p.stdout) == (2, b"hi\n")
    r = daemon.api("POST", "/containers/create?name=bsi", {
        "Image": "busybox", "Cmd": ["tr", "a-z", "A-Z"], "OpenStdin": True,
        "StdinOnce": True})
    assert r.status == 201
    p = daemon.berth("start", "-ai", "bsi", input=b"shout\n")
    assert (p.returncode, p.stdout) == (0, b"SHOUT\n")


def test_top_stats_inspect(daemon):
    berth_ok(daemon, "run", "-d", "--name", "bt", "busybox", "sleep", "60")
    top = berth_ok(daemon, "top", "bt").splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top[1].endswith("sleep 60")
    assert berth_ok(daemon, "top", "bt", "-o", "pid,comm").splitlines()[0].split() == [
        "PID", "COMMAND"]
    stats = berth_ok(daemon, "stats", "--no-stream", "bt").splitlines()
    assert stats[0].startswith("CONTAINER ID   NAME ")
    assert stats[1].split()[1] == "bt" and stats[1].split()[-1] == "1"
    assert any(line.split()[1] == "bt"
               for line in berth_ok(daemon, "stats", "--no-stream").splitlines()[1:])
    found = json.loads(berth_ok(daemon, "inspect", "bt", "busybox"))
    assert found[0]["Name"] == "/bt" and found[1]["Id"].startswith("sha256:")
    p = daemon.berth("inspect", "nothing-here")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"[]\n",
                                                  b"Error: No such object: nothing-here\n")
    p = daemon.berth("inspect", "--type", "image", "bt")
    assert p.returncode == 1 and b"No such image" in p.stderr


def test_events(daemon):
    since = str(int(time.time()) - 1)
    berth_ok(daemon, "run", "--rm", "--name", "be", "busybox", "true")
    out = berth_ok(daemon, "events", "--since", since, "--until", str(time.time()),
                   "--filter", "container=be", "--filter", "event=die")
    assert re.fullmatch(r"\S+ container die [0-9a-f]{64} \(execDuration=\d+, exitCode=0, "
                        r"image=busybox, name=be\)\n", out), out


def test_template_stats_row_and_timestamps():
    obj = {"State": {"Status": "running", "Paused": False, "Pid": 3}, "Name": "/x",
           "Args": ["a", "b"], "Labels": {"k": "v"}}
    assert render("{{.State.Status}} {{ .Name }} {{json .State}}", obj) == (
        'running /x {"Status": "running", "Paused": false, "Pid": 3}')
    assert render("{{.State.Paused}} {{.Args}} {{.Labels}} {{.Nope}}", obj) == (
        "false [a b] map[k:v] <no value>")
    row = stats_row({
        "id": "f" * 64, "name": "/web",
        "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000}, "system_cpu_usage": 20_000_000,
                      "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
        "memory_stats": {"usage": 3 << 20, "limit": 64 << 20,
                         "stats": {"total_inactive_file": 1 << 20}},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 10}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096},
                                                       {"op": "Write", "value": 0}]},
        "pids_stats": {"current": 3}})
    assert row == ["ffffffffffff", "web", "20.00%", "2MiB / 64MiB", "3.12%", "1.5kB / 10B",
                   "4.1kB / 0B", "3"]
    assert timestamp("1700000000", 0) == "1700000000"
    assert timestamp("10m", 1_700_000_600.5) == "1700000000.500000000"
    assert timestamp("2023-11-14T22:13:20Z", 0) == "1700000000.000000000"
