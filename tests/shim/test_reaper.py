"""The reaper with real child processes: statuses, early exits, and runtime waits that time out."""
from __future__ import annotations

import os
import signal
import time

import pytest

from shim.loop import Loop
from shim.reaper import Reaper, RuntimeTimeout, exit_status
from shim.runtime import spawn


@pytest.fixture
def reaper():
    old = signal.getsignal(signal.SIGCHLD)
    r = Reaper(Loop())
    yield r
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, old)


def _sh(script: str) -> int:
    return spawn(["/bin/sh", "-c", script], {0: 0, 1: 1, 2: 2})


def _settle(reaper: Reaper, pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reaper.collect()
        if any(p == pid for p, _, _ in reaper._pending):
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} was not reaped")


def test_exit_status_is_the_code_or_128_plus_the_signal():
    assert exit_status(3 << 8) == 3
    assert exit_status(signal.SIGKILL) == 137


def test_an_exit_reaped_before_anyone_claims_it_is_kept(reaper):
    pid = _sh("exit 5")
    _settle(reaper, pid)
    reaper.dispatch()           # nobody watches pid yet: kept as an early exit
    got = []
    reaper.watch(pid, lambda status, at: got.append(status))
    assert got == [5]


def test_watchers_get_exits_in_dispatch(reaper):
    pid = _sh("kill -9 $$")
    got = []
    reaper.watch(pid, lambda status, at: got.append((status, at > 0)))
    _settle(reaper, pid)
    assert got == []            # collected, but handed out only by dispatch
    reaper.dispatch()
    assert got == [(137, True)]


def test_runtime_wait_keeps_other_exits_for_later_and_times_out(reaper):
    other = _sh("exit 2")
    runtime = _sh("sleep 0.2; exit 1")
    status, out = reaper.wait_for(runtime, timeout=10)
    assert status == 1
    got = []
    reaper.watch(other, lambda status, at: got.append(status))
    assert got == [2], "the other child's exit, reaped during the wait, is not lost"
    hung = _sh("exec sleep 100")       # the killed pid is the sleep: nothing outlives the test
    with pytest.raises(RuntimeTimeout):
        reaper.wait_for(hung, timeout=0.3)
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)        # killed and reaped
