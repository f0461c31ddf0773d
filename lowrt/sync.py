"""Messages between lowrt and the processes it forks, one line each, over two pipes.

Both pipes are close-on-exec: when the container's program starts, the child's ends close, and
end-of-file tells the parent that exec succeeded (as subprocess learns it).
"""
from __future__ import annotations

import os

from lowrt.errors import LowrtError


class Channel:
    def __init__(self) -> None:
        self.up_r, self.up_w = os.pipe()      # child -> parent
        self.down_r, self.down_w = os.pipe()  # parent -> child
        self._buf = b""
        self._in = -1
        self._out = -1

    def as_parent(self) -> None:
        os.close(self.up_w)
        os.close(self.down_r)
        self._in, self._out = self.up_r, self.down_w

    def as_child(self) -> None:
        os.close(self.up_r)
        os.close(self.down_w)
        self._in, self._out = self.down_r, self.up_w

    def send(self, kind: str, payload: str = "") -> None:
        line = f"{kind} {payload}".replace("\n", " ") + "\n"
        try:
            os.write(self._out, line.encode(errors="replace"))
        except BrokenPipeError:  # the parent is gone (create has returned): nobody to tell
            pass

    def recv(self) -> tuple[str, str]:
        """The next message; ("eof", "") once every writer has closed its end."""
        while b"\n" not in self._buf:
            chunk = os.read(self._in, 4096)
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
        for fd in (self._in, self._out):
            if fd >= 0:
                os.close(fd)
        self._in = self._out = -1
