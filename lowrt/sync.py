"""Messages between lowrt and the processes it forks, one line each, over pipes.

One pipe carries every message up to lowrt (from the child and the init both, in order); two
carry lowrt's messages down, one to the child and one to the init, so that neither can read
what was meant for the other while both wait. All are close-on-exec: when the container's
program starts, the init's ends close, and end-of-file tells lowrt that exec succeeded (as
subprocess learns it).
"""
from __future__ import annotations

import os

from lowrt.errors import LowrtError


class Channel:
    def __init__(self) -> None:
        self.up_r, self.up_w = os.pipe()              # child and init -> parent
        self.child_r, self.child_w = os.pipe()        # parent -> child
        self.init_r, self.init_w = os.pipe()          # parent -> init
        self._buf = b""
        self._in = -1
        self._out = -1

    def as_parent(self) -> None:
        for fd in (self.up_w, self.child_r, self.init_r):
            os.close(fd)
        self._in, self._out = self.up_r, self.init_w

    def as_child(self) -> None:
        for fd in (self.up_r, self.child_w, self.init_w):
            os.close(fd)
        self._in, self._out = self.child_r, self.up_w

    def as_init(self) -> None:
        """In the init, just forked by the child: from now on read the init's pipe."""
        os.close(self.child_r)
        self._buf = b""
        self._in = self.init_r

    def fds(self) -> set[int]:
        """The fds this end reads and writes."""
        return {self._in, self._out}

    def send(self, kind: str, payload: str = "") -> None:
        """Up from the child or the init; down to the init from the parent."""
        self._write(self._out, kind, payload)

    def send_child(self, kind: str, payload: str = "") -> None:
        """Parent only: a message for the child (not the init)."""
        self._write(self.child_w, kind, payload)

    @staticmethod
    def _write(fd: int, kind: str, payload: str) -> None:
        line = f"{kind} {payload}".replace("\n", " ") + "\n"
        try:
            os.write(fd, line.encode(errors="replace"))
        except BrokenPipeError:  # the reader is gone (create has returned): nobody to tell
            pass

    def recv(self) -> tuple[str, str]:
        """The next message; ("eof", "") once every writer has closed its end."""
        while b"\n" not in self._buf:
            chunk = os.read(self._in, 65536)
            if not chunk:
                return "eof", ""
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        kind, _, payload = line.decode(errors="replace").partition(" ")
        return kind, payload

    def expect(self, kind: str) -> str:
        got, payload = self.recv()
        if got == "error":
            raise LowrtError(payload)
        if got != kind:
            raise LowrtError(f"unexpected message from lowrt's parent: {got!r} (wanted {kind!r})")
        return payload

    def close(self) -> None:
        for fd in (self._in, self._out, getattr(self, "child_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._in = self._out = self.child_w = -1
