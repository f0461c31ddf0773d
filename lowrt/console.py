"""The container's terminal: runc's console socket protocol.

The pty is opened inside the container (its devpts); the master goes to the caller over a unix
socket with SCM_RIGHTS, the slave becomes the process's stdio and controlling terminal. When
lowrt itself stays attached (`run`/`exec` with a tty and no --console-socket), it receives the
master over a socketpair and relays it to its own terminal.
"""
from __future__ import annotations

import fcntl
import os
import struct
import termios

from lowrt.errors import LowrtError

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def connect(path: str) -> int:
    """Connect to the caller's console socket; returns the connected fd (close-on-exec)."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise LowrtError(f"connect to console socket {path}: {e.strerror.lower()}") from None
    return s.detach()


def socketpair() -> tuple[int, int]:
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def open_pty() -> tuple[int, str]:
    """A new pty from the container's /dev/ptmx: (master fd, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    return master, f"/dev/pts/{n}"


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def send_master(sock_fd: int, master: int) -> None:
    import socket
    s = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(s, [b"/dev/ptmx"], [master])
    finally:
        s.detach()


def recv_master(sock_fd: int) -> int:
    import socket
    s = socket.socket(fileno=sock_fd)
    try:
        _, fds, _, _ = socket.recv_fds(s, 4096, 1)
    finally:
        s.detach()
    if not fds:
        raise LowrtError("the container did not send its console")
    return fds[0]


def setup_in_container(sock_fd: int, size: dict | None) -> str:
    """Make the pty, send its master, and make its slave our stdio and controlling terminal."""
    master, slave_path = open_pty()
    if size:
        set_size(master, size.get("height", 0), size.get("width", 0))
    send_master(sock_fd, master)
    os.close(master)
    os.close(sock_fd)
    slave = os.open(slave_path, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    return slave_path
