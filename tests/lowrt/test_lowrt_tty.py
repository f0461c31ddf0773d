"""Terminals: runc's console socket protocol, and lowrt attached to a real pty itself."""
from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import pytest


def _read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"did not see {needle!r} in {out!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
    return out


class ConsoleSocket:
    """The caller's side of --console-socket: receives the pty master."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(10)

    def receive(self) -> tuple[bytes, int]:
        conn, _ = self.sock.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        return msg, fds[0]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def console_socket(short_tmp):
    cs = ConsoleSocket(short_tmp / "console.sock")
    yield cs
    cs.close()


def test_console_socket_gets_the_master_and_the_size(rt, bundle, cid, console_socket):
    b = bundle(["sh", "-c", "tty; stty size; ls -l /dev/console; read line; echo got:$line"],
               process={"terminal": True, "consoleSize": {"height": 30, "width": 100}})
    rt.run("create", "--console-socket", console_socket.path, "-b", str(b), cid)
    name, master = console_socket.receive()
    try:
        assert name == b"/dev/ptmx"
        rt.run("start", cid)
        out = _read_until(master, b"console")
        assert b"/dev/pts/0" in out and b"30 100" in out
        os.write(master, b"hello\n")
        assert b"got:hello" in _read_until(master, b"got:hello")
    finally:
        os.close(master)


def test_run_with_a_terminal_relays_lowrts_own_pty(rt, bundle, cid, pty_ok):
    b = bundle(["sh"], process={"terminal": True})
    master, slave = os.openpty()
    proc = subprocess.Popen(rt.argv("run", "-b", str(b), cid), stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        os.write(master, b"tty; echo marker-$((6*7)); exit 3\n")
        out = _read_until(master, b"marker-42")
        assert b"/dev/pts/0" in out
        assert proc.wait(timeout=10) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_exec_tty_detached_with_console_socket(rt, bundle, cid, console_socket, short_tmp):
    b = bundle(["sleep", "60"])
    rt.run("run", "-d", "-b", str(b), cid)
    rt.run("exec", "-t", "-d", "--console-socket", console_socket.path,
           "--pid-file", str(short_tmp / "e.pid"), cid, "sh", "-c", "tty; read x; echo bye-$x")
    _, master = console_socket.receive()
    try:
        assert b"/dev/pts/" in _read_until(master, b"/dev/pts/")
        os.write(master, b"now\n")
        assert b"bye-now" in _read_until(master, b"bye-now")
    finally:
        os.close(master)


def test_exec_tty_attached(rt, bundle, cid, pty_ok):
    b = bundle(["sleep", "60"])
    rt.run("run", "-d", "-b", str(b), cid)
    master, slave = os.openpty()
    proc = subprocess.Popen(rt.argv("exec", "-t", cid, "sh"), stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        os.write(master, b"echo in-exec-$((2+3)); exit 4\n")
        assert b"in-exec-5" in _read_until(master, b"in-exec-5")
        assert proc.wait(timeout=10) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_terminal_goes_to_the_processs_user_and_keeps_the_tty_group(rt, bundle, cid,
                                                                   console_socket):
    # as runc: only the owner changes; the group is the devpts mount's gid=5 (tty)
    b = bundle(["sh", "-c", "stat -c %u:%g $(tty)"],
               process={"terminal": True, "user": {"uid": 1000, "gid": 100}})
    rt.run("create", "--console-socket", console_socket.path, "-b", str(b), cid)
    _, master = console_socket.receive()
    try:
        rt.run("start", cid)
        assert b"1000:5" in _read_until(master, b"1000:5")
    finally:
        os.close(master)
