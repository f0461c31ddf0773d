"""The pure cgroup v2 tests (test_cgroups_v2host.py) run for real in a qemu guest booting a
stock Debian kernel with only cgroup2 mounted, since this host is hybrid v1. Slow (about a
minute of software emulation); skipped without qemu-system-x86_64 or the kernel package."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lowrt import cgroups

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "helpers", "lowrt_cgroups_v2vm.sh")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(cgroups.version() == 2, reason="a v2 host runs test_cgroups_v2host.py"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or os.uname().machine != "x86_64",
                       reason="needs qemu-system-x86_64 on x86_64"),
]


def test_cgroups_library_on_a_pure_v2_kernel(tmp_path):
    # LOWRT_V2VM_DIR keeps the kernel between runs; by default it is fetched into tmp_path
    env = dict(os.environ, LOWRT_V2VM_DIR=os.environ.get("LOWRT_V2VM_DIR", str(tmp_path)))
    run = subprocess.run([SCRIPT, "tests/lowrt/test_cgroups_v2host.py"], env=env,
                         capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    if "Linux version" not in log:  # the kernel never started: no package to fetch, or no qemu
        pytest.skip(f"the v2 guest did not boot (no kernel package?): {log[-500:]}")
    summary = [line for line in log.splitlines() if "passed" in line or "failed" in line]
    assert run.returncode == 0, log[-4000:]
    assert summary and "failed" not in summary[-1] and "skipped" not in summary[-1], summary
