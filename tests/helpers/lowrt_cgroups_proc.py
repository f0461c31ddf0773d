"""Child processes for the cgroups tests: started held (blocked on stdin) so a test can move
them into a cgroup before they run their script, and always killed and reaped at the end."""
from __future__ import annotations

import os
import subprocess
import uuid

BUSYBOX = "/bin/busybox"


def unique_name(tag: str) -> str:
    return f"bt-cg-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class HeldChild:
    """`busybox sh -c SCRIPT`, waiting for release() before it runs SCRIPT."""

    def __init__(self, script: str):
        self.proc = subprocess.Popen(
            [BUSYBOX, "sh", "-c", f"read _go; {script}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid

    def release(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        self.proc.stdin = None  # so communicate() does not flush a closed pipe

    def finish(self, timeout: float = 10) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            self.proc.stdin = None
        try:
            self.proc.communicate(timeout=5)
        except (ValueError, OSError, subprocess.TimeoutExpired):
            pass
