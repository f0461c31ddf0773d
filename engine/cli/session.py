"""An attached session on a hijacked connection (run, start -a, exec): our terminal in raw mode
for a TTY, our stdin copied in, the output copied out until the daemon closes."""
from __future__ import annotations

import os
import socket
import sys
import threading

from .client import read_frames


def check_tty(interactive: bool, tty: bool) -> None:
    """As the docker CLI: -it needs a terminal on stdin."""
    if tty and interactive and not sys.stdin.isatty():
        print("the input device is not a TTY", file=sys.stderr)
        sys.exit(1)


def terminal_size() -> tuple[int, int] | None:
    """(rows, columns) of our stdout when it is a terminal with a size."""
    if not sys.stdout.isatty():
        return None
    size = os.get_terminal_size(sys.stdout.fileno())
    return (size.lines, size.columns) if size.lines and size.columns else None


def raw_terminal():
    """Put our terminal in raw mode for a TTY session; returns the function that restores it."""
    if not sys.stdin.isatty():
        return None
    import termios
    import tty as ttymod
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    ttymod.setraw(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def pump_stdin(sock, detach_keys: bytes | None, detached: threading.Event) -> None:
    """Copy our stdin to the container, then half-close so it sees EOF. With detach_keys (a
    TTY session), typing them ends the session instead, as the docker CLI does: the keys are
    held back, and the connection is shut so that the output loop ends too."""
    from ..detach_keys import Watcher

    watcher = Watcher(detach_keys) if detach_keys else None
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            if watcher is not None:
                data, typed = watcher.feed(data)
                if typed:
                    if data:
                        sock.sendall(data)
                    detached.set()
                    sock.shutdown(socket.SHUT_RDWR)
                    return
            if data:
                sock.sendall(data)
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def run_session(sock, first: bytes, *, tty: bool, interactive: bool, resize=None,
                detach_keys: bytes | None = None) -> bool:
    """Copy stdin in (or half-close at once without it) and the output out until the daemon
    ends the stream; resize(rows, columns) is called once the session is set up. True when the
    user typed the detach keys (watched for in a TTY session only, as docker does)."""
    restore = raw_terminal() if tty and interactive else None
    detached = threading.Event()
    try:
        size = terminal_size() if tty else None
        if size and resize is not None:
            resize(*size)
        if interactive:
            threading.Thread(target=pump_stdin, args=(sock, detach_keys if tty else None,
                                                      detached), daemon=True).start()
        else:
            sock.shutdown(socket.SHUT_WR)
        outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
        try:
            for stream, data in read_frames(sock, first, tty):
                out = outs.get(stream, sys.stderr.buffer)
                out.write(data)
                out.flush()
        except OSError:
            if not detached.is_set():
                raise
    finally:
        if restore:
            restore()
        sock.close()
    return detached.is_set()
