"""The head start on the kernel's cgroup migration wait (lowrt/warmup.py, lowrt/bin/lowrt)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lowrt import warmup

SCRIPT = Path(__file__).resolve().parents[2] / "lowrt" / "bin" / "lowrt"


def test_warmup_thread_finds_the_cgroup_procs_file_that_lists_lowrt():
    path = warmup._own_procs_file()
    if path is None:
        pytest.skip("no hierarchy here with a single controller, nor a cgroup2 one")
    assert path.endswith("/cgroup.procs")
    with open(path) as f:
        assert str(os.getpid()) in f.read().split()


def test_script_starts_one_short_lived_subshell_for_run_and_none_for_state(tmp_path):
    # The script's sh part runs with a stand-in interpreter beside it (it takes the python3
    # next to itself), which waits for the children the sh left it and prints their exit
    # codes, and whether each is the one the script names for lowrt to wait for.
    script = tmp_path / "lowrt"
    script.write_text(SCRIPT.read_text())
    script.chmod(0o755)
    fake = tmp_path / "python3"
    fake.write_text(f"#!{sys.executable}\n"
                    "import os, sys\n"
                    "named = os.environ.get('LOWRT_WARMUP_PID', '')\n"
                    "seen = []\n"
                    "while True:\n"
                    "    try:\n"
                    "        pid, status = os.waitpid(-1, 0)\n"
                    "    except ChildProcessError:\n"
                    "        break\n"
                    "    seen.append((os.waitstatus_to_exitcode(status), str(pid) == named))\n"
                    "print(sys.argv[1:3], seen)\n")
    fake.chmod(0o755)
    v1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    for verb, children in (("run", "[(0, True)]"), ("state", "[]")):
        out = subprocess.run([str(script), "--root", "/nonexistent", verb, "x"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        want = children if v1 else "[]"
        assert out.stdout.strip() == f"['-S', '{script}'] {want}", out.stdout
