"""Driving a CLI (docker's or berth's) through a real pseudo-terminal, as a user at a terminal
does: `exec -it` and `run -it` need one (the CLI puts it in raw mode and sends its size)."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


def run_in_pty(argv: list[str], env: dict, *, keys: bytes = b"", wait_for: bytes = b"",
               rows: int = 40, cols: int = 120, timeout: float = 30) -> tuple[int, bytes]:
    """Run argv on a pty of rows x cols; once `wait_for` has been printed (if given), type
    `keys`. Returns (exit status, everything printed)."""
    pid, fd = pty.fork()
    if pid == 0:                                       # the child: its terminal is the pty
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    sent = not keys
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not sent and wait_for in out:
                os.write(fd, keys)
                sent = True
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"{argv} did not finish; printed {out!r}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:                            # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out
