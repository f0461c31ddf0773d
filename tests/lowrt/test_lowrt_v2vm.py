"""lowrt on a pure cgroup v2 kernel: a representative set of its tests, run in the qemu guest of
tests/helpers/lowrt_cgroups_v2vm.sh (Debian's kernel, only cgroup2 mounted), since this host
is hybrid v1. Slow (software emulation); skipped without qemu-system-x86_64 or the kernel."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "helpers", "lowrt_cgroups_v2vm.sh")

# What differs on v2: the cgroup files, the freezer, the device filter (eBPF), the cgroup
# mount in a cgroup namespace, OOM notification, and exec joining the v2 cgroup. (About three
# minutes of emulation; the rest of lowrt's tests passed there too, run by hand.)
TESTS = [
    "tests/lowrt/test_lowrt_lifecycle.py::test_create_start_state_kill_delete",
    "tests/lowrt/test_lowrt_running.py::test_exec_runs_in_the_containers_namespaces_and_cgroup",
    "tests/lowrt/test_lowrt_running.py::test_pause_and_resume",
    "tests/lowrt/test_lowrt_running.py::test_update_resources_from_stdin_and_from_flags",
    "tests/lowrt/test_lowrt_running.py::test_events_reports_an_oom_kill",
    "tests/lowrt/test_lowrt_running.py::test_memory_limit_is_enforced",
    "tests/lowrt/test_lowrt_config.py::test_cgroup_and_time_namespaces",
    "tests/lowrt/test_lowrt_config.py::test_device_cgroup_denies_what_is_not_allowed",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="a v2 host runs these tests directly"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or os.uname().machine != "x86_64",
                       reason="needs qemu-system-x86_64 on x86_64"),
]


def test_lowrt_on_a_pure_v2_kernel(v2vm_dir):
    # the guest is ended before the test's own timeout, which would leave qemu running
    env = dict(os.environ, LOWRT_V2VM_DIR=v2vm_dir, LOWRT_V2VM_TIMEOUT="1140")
    run = subprocess.run([SCRIPT, *TESTS], env=env, capture_output=True, text=True, timeout=1200)
    log = run.stdout + run.stderr
    if "Linux version" not in log:  # the kernel never started: no package to fetch, or no qemu
        pytest.skip(f"the v2 guest did not boot (no kernel package?): {log[-500:]}")
    summary = [line for line in log.splitlines() if " passed" in line or " failed" in line]
    assert run.returncode == 0, log[-4000:]
    assert summary and f"{len(TESTS)} passed" in summary[-1], summary
