"""lowrt's own terminal joined to the container's pty, for `run`/`exec -t` without --detach.

lowrt's stdin goes to the pty master and the master's output to lowrt's stdout; when stdin is
a terminal it is put in raw mode (the container's pty does the line editing) and its size is
passed on, now and on every SIGWINCH.
"""
from __future__ import annotations

import _signal
import os
import threading

SIGWINCH = 28


class Relay:
    def __init__(self, master: int, pid: int) -> None:
        self.master = master
        self.pid = pid
        self._saved = None
        self._out = threading.Thread(target=self._copy_out, daemon=True)
        self._in = threading.Thread(target=self._copy_in, daemon=True)

    def start(self) -> None:
        if os.isatty(0):
            import termios
            import tty
            self._saved = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keep what was typed ahead
            self._resize()
            _signal.signal(SIGWINCH, lambda *_: self._resize())
        self._out.start()
        self._in.start()

    def _resize(self) -> None:
        import fcntl
        import termios
        try:
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    def _copy_out(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every slave fd is closed
                return
            if not data:
                return
            _write_all(1, data)

    def _copy_in(self) -> None:
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                return
            if not data:
                return
            try:
                _write_all(self.master, data)
            except OSError:
                return

    def stop(self) -> None:
        """After the process exits: let its last output through, restore our terminal."""
        self._out.join(timeout=2)
        if self._saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self._saved)
        os.close(self.master)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]
