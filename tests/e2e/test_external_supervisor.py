"""berthd with --supervisor: it uses a berth-supervisor it did not start, and leaves it running
when it stops (as dockerd with --containerd)."""
from __future__ import annotations

import subprocess
import time

from tests.helpers.engine_daemon import VENV_BIN, BerthDaemon


def test_berthd_uses_a_running_supervisor(short_tmp):
    sock = short_tmp / "sup.sock"
    supervisor = subprocess.Popen(
        [str(VENV_BIN / "berth-supervisor"), "--address", f"unix://{sock}", "--state",
         str(short_tmp / "state"), "--root", str(short_tmp / "root")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = BerthDaemon(extra_args=("--supervisor", f"unix://{sock}"))
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        daemon.start()
        p = daemon.docker("run", "--rm", "busybox", "echo", "via an external supervisor")
        assert (p.returncode, p.stdout) == (0, b"via an external supervisor\n"), p.stderr
        assert daemon.supervisor_pid() is None          # berthd started none of its own
        assert daemon.stop() == 0
        assert supervisor.poll() is None                # and stopped none
    finally:
        daemon.cleanup()
        supervisor.terminate()
        supervisor.wait(30)
