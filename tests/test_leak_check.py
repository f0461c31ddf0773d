"""The leak check itself: it must see each kind of thing a test can leave behind."""
from __future__ import annotations

import subprocess
import uuid

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
    assert leaks._is_ours(1, f"/venv/bin/python3 /venv/bin/{program} --id x", {})
