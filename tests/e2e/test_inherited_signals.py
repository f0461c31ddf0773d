"""A container's processes start with every signal at its default disposition and unblocked,
however berthd was started (issue 8, item 5): under nohup berthd inherits an ignored SIGHUP,
Python ignores SIGPIPE, and exec passes both on down the chain to the container's process,
where a shell cannot trap a signal that was ignored when it started."""
from __future__ import annotations

import signal
import time

import pytest

from tests.helpers.engine_daemon import BerthDaemon

DEFAULT = {"SigIgn": "0000000000000000", "SigBlk": "0000000000000000"}


@pytest.fixture(scope="module")
def nohup_daemon():
    daemon = BerthDaemon(ignored_signals=(signal.SIGHUP, signal.SIGPIPE))
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


def _sig_fields(out: bytes) -> dict[str, str]:
    return dict(line.split(":\t") for line in out.decode().splitlines())


def test_container_process_starts_with_no_signal_ignored_or_blocked(nohup_daemon):
    p = nohup_daemon.docker("run", "--rm", "busybox", "grep", "-E", "^Sig(Ign|Blk)",
                            "/proc/self/status")
    assert p.returncode == 0, p.stderr
    assert _sig_fields(p.stdout) == DEFAULT


def test_container_traps_sighup_and_sigpipe_of_a_daemon_that_ignores_them(nohup_daemon):
    d = nohup_daemon
    script = ("trap 'echo got HUP' HUP; trap 'echo got PIPE' PIPE; echo ready; "
              "while :; do sleep 0.05; done")
    p = d.docker("run", "-d", "--name", "traps", "busybox", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    try:
        exec_status = d.docker("exec", "traps", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
        assert exec_status.returncode == 0, exec_status.stderr
        assert _sig_fields(exec_status.stdout) == DEFAULT
        for sig in ("HUP", "PIPE"):
            assert d.docker("kill", "-s", sig, "traps").returncode == 0
            deadline = time.monotonic() + 10
            while f"got {sig}".encode() not in d.docker("logs", "traps").stdout:
                assert time.monotonic() < deadline, d.docker("logs", "traps").stdout
                time.sleep(0.1)
        assert b"true" in d.docker("inspect", "-f", "{{.State.Running}}", "traps").stdout
    finally:
        d.docker("rm", "-f", "traps")
