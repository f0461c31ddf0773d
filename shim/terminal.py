"""TTY processes: the runtime's console socket (runc's docs/terminals.md) and window resizes.

With `--console-socket PATH` the runtime creates the pty inside the container and sends the
master fd over a unix socket that we listen on, as SCM_RIGHTS ancillary data. The shim then owns
the master: container output is read from it, stdin written to it. Once every holder of the slave
side has closed it, reads from the master fail with EIO: that is the end of the output.
"""
from __future__ import annotations

import _socket  # see shim/server.py
import os
import struct

RECEIVE_TIMEOUT = 3.0   # the runtime has returned by now: the master is queued or never comes


class ConsoleSocket:
    """A listening socket for one runtime command; receive_master() once it has returned."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self._sock.bind(path)
            self._sock.listen(1)
        except OSError as e:
            self._sock.close()
            raise OSError(e.errno, f"console socket {path}: {e.strerror.lower()}") from None

    def receive_master(self, timeout: float = RECEIVE_TIMEOUT) -> int:
        self._sock.settimeout(timeout)
        try:
            fd, _ = self._sock._accept()
        except TimeoutError:
            raise OSError(f"no pty master received on console socket {self.path}") from None
        conn = _socket.socket(fileno=fd)
        try:
            conn.settimeout(timeout)
            fds = _receive_fds(conn, 4)
        finally:
            conn.close()
        if not fds:
            raise OSError(f"console socket {self.path}: the runtime sent no file descriptor")
        for extra in fds[1:]:
            os.close(extra)
        master = fds[0]
        os.set_blocking(master, False)
        os.set_inheritable(master, False)
        return master

    def close(self) -> None:
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _receive_fds(conn: _socket.socket, most: int) -> list[int]:
    """The fds in one message's SCM_RIGHTS data (socket.recv_fds, without `socket`)."""
    _msg, ancdata, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_LEN(most * 4))
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
    return fds


def resize(master: int, width: int, height: int) -> None:
    import fcntl
    import termios
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
