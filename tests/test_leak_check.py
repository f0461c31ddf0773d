"""The leak check itself: it must see each kind of thing a test can leave behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import leaks


def test_leak_check_sees_a_mount(tmp_path):
    before = leaks.snapshot()
    target = tmp_path / "m"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)
    try:
        assert f"mount {target}" in leaks.leaked(before, leaks.snapshot())
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert leaks.leaked(before, leaks.snapshot()) == []


def test_leak_check_sees_a_process_in_another_namespace():
    before = leaks.snapshot()
    proc = subprocess.Popen(["unshare", "--uts", "--", "sleep", "30"])
    try:
        for _ in range(100):
            found = [line for line in leaks.leaked(before, leaks.snapshot())
                     if line.startswith(f"process {proc.pid}:")]
            if found:
                break
            subprocess.run(["sleep", "0.02"])
        assert found, "a process in its own uts namespace was not seen"
    finally:
        proc.kill()
        proc.wait()
    assert leaks.leaked(before, leaks.snapshot()) == []


def test_leak_check_sees_a_cgroup_netns_link_and_rule():
    name = "bt" + uuid.uuid4().hex[:8]
    before = leaks.snapshot()
    cg = leaks.CGROUP_ROOT / "pids" / name
    made = []
    try:
        cg.mkdir()
        made.append(lambda: cg.rmdir())
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(lambda: subprocess.run(["ip", "netns", "del", name], check=True))
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
        made.append(lambda: subprocess.run(["ip", "link", "del", name], check=True))
        subprocess.run(["iptables", "-N", name.upper()], check=True)
        made.append(lambda: subprocess.run(["iptables", "-X", name.upper()], check=True))
        lines = leaks.leaked(before, leaks.snapshot())
        assert f"cgroup {cg}" in lines
        assert f"netns {name}" in lines
        assert f"link {name}" in lines
        assert any(name.upper() in line for line in lines if line.startswith("iptables"))
    finally:
        for undo in reversed(made):
            undo()
    assert leaks.leaked(before, leaks.snapshot()) == []


@pytest.mark.parametrize("program", ["berth-shim", "lowrt"])
def test_leak_check_knows_our_programs_by_name(program):
    assert leaks._is_ours(1, f"/venv/bin/python3 /venv/bin/{program} --id x", [])


def test_cgroups_other_programs_make_beside_ours_are_not_leaks():
    # Issue 8, item 4: another program on the machine made memory/process_api/<hash> while the
    # suite ran, under a cgroup of its own. What berth's tests make is still counted: at the top
    # of a hierarchy, under the test process's own cgroup, and under a cgroup of ours.
    tag = "bt" + uuid.uuid4().hex[:8]
    theirs = leaks.CGROUP_ROOT / "pids" / f"{tag}-other"   # exists before: another program's
    own = next(Path(d) for d in leaks.process_cgroups()
               if d.startswith(f"{leaks.CGROUP_ROOT}/pids"))
    made = []
    try:
        theirs.mkdir()
        made.append(theirs)
        before = leaks.snapshot()
        for d in (theirs / "child", leaks.CGROUP_ROOT / "pids" / tag,
                  leaks.CGROUP_ROOT / "pids" / tag / "inner", own / f"{tag}-relative"):
            d.mkdir()
            made.append(d)
        lines = leaks.leaked(before, leaks.snapshot())
        assert f"cgroup {theirs / 'child'}" not in lines
        assert {f"cgroup {leaks.CGROUP_ROOT / 'pids' / tag}",
                f"cgroup {leaks.CGROUP_ROOT / 'pids' / tag / 'inner'}",
                f"cgroup {own / f'{tag}-relative'}"} <= set(lines)
    finally:
        for d in reversed(made):
            d.rmdir()


def test_the_netns_mount_a_first_ip_netns_add_makes_is_not_a_leak():
    # Issue 8, item 3: on a machine where no network namespace was ever named, the first
    # `ip netns add` mounts /run/netns (and leaves it). A private mount namespace without that
    # mount stands in for such a machine; the namespace's own file still counts until removed.
    name = "bt" + uuid.uuid4().hex[:8]
    script = f"""
import subprocess, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from tests.helpers import leaks
subprocess.run(["umount", "-l", "/run/netns"], capture_output=True)
before = leaks.snapshot()
assert "/run/netns" not in open("/proc/self/mountinfo").read(), "/run/netns is still mounted"
subprocess.run(["ip", "netns", "add", {name!r}], check=True)
try:
    assert "/run/netns" in open("/proc/self/mountinfo").read(), "ip netns add made no mount"
    assert "netns {name}" in leaks.leaked(before, leaks.snapshot())
finally:
    subprocess.run(["ip", "netns", "del", {name!r}], check=True)
assert leaks.leaked(before, leaks.snapshot()) == [], leaks.leaked(before, leaks.snapshot())
"""
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_the_hosts_processes_are_not_leaks_of_a_suite_in_a_mount_namespace_of_its_own():
    # The fresh-root harness runs the suite chrooted in a private mount namespace: every program
    # the host started meanwhile looked like a container process.
    # A process in namespaces of its own is still one.
    script = f"""
import json, subprocess, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from tests.helpers import leaks
before = leaks.snapshot()
print("ready", flush=True)
sys.stdin.readline()
uts = subprocess.Popen(["unshare", "--uts", "sleep", "30"])
for _ in range(100):
    if open(f"/proc/{{uts.pid}}/cmdline").read().startswith("sleep"):
        break
    subprocess.run(["sleep", "0.02"])
print(json.dumps([leaks.leaked(before, leaks.snapshot()), uts.pid]), flush=True)
uts.kill()
uts.wait()
"""
    child = subprocess.Popen(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                              script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    host = None
    try:
        assert child.stdout.readline() == "ready\n"
        # where the host's programs run, and as they are: without pytest's variable
        host = subprocess.Popen(["sleep", "30"], env={
            k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"})
        child.stdin.write("go\n")
        child.stdin.flush()
        lines, uts_pid = json.loads(child.stdout.readline())
    finally:
        if host:
            host.kill()
            host.wait()
        child.kill()
        child.wait()
    assert not [line for line in lines if line.startswith(f"process {host.pid}:")], lines
    assert [line for line in lines if line.startswith(f"process {uts_pid}:")], lines


def test_leak_check_sees_a_process_a_test_started_and_orphaned():
    """An ordinary program, in our namespaces, that a test's shell left behind (its parent gone):
    the PYTEST_CURRENT_TEST it inherited marks it."""
    before = leaks.snapshot()
    out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTEST_CURRENT_TEST": "x"})
    pid = int(out.stdout)
    try:
        assert any(line.startswith(f"process {pid}: sleep 30")
                   for line in leaks.leaked(before, leaks.snapshot()))
    finally:
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.02)
    assert leaks.leaked(before, leaks.snapshot()) == []
