"""Detach keys: the key sequence that ends an attached terminal session and leaves the container
running (`--detach-keys`, default ctrl-p,ctrl-q), parsed and recognised as docker does.

Shared by berthd (which watches a TTY attach's input for it, as dockerd does) and the berth CLI
(which watches its terminal, as the docker CLI does, so that a detach works whatever the daemon
does): the keys are held back while they may still be the start of the sequence, and handed on
when they turn out not to be.
"""
from __future__ import annotations

DEFAULT = "ctrl-p,ctrl-q"
_CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


class InvalidDetachKeys(ValueError):
    pass


def parse(text: str | None) -> bytes:
    """The bytes a sequence such as "ctrl-p,ctrl-q" or "ctrl-x,a" stands for; "" and None give
    the default. Each key is one character or ctrl-<a-z, @, [, \\, ], ^ or _>."""
    keys = b""
    for key in (text or DEFAULT).split(","):
        low = key.lower()
        if len(key) == 1:
            keys += key.encode()
        elif low.startswith("ctrl-") and len(key) == 6 and "a" <= low[5] <= "z":
            keys += bytes([ord(low[5]) - ord("a") + 1])
        elif low.startswith("ctrl-") and len(key) == 6 and key[5] in _CTRL_PUNCT:
            keys += bytes([_CTRL_PUNCT[key[5]]])
        else:
            raise InvalidDetachKeys(f"Invalid detach keys ({text}) provided")
    return keys


class Watcher:
    """Passes input through, holding back what may be the start of the sequence."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to hand on, whether the whole sequence was typed); after a detach, what
        followed the sequence is dropped, as the session is over."""
        out = bytearray()
        for byte in data:
            self._held += bytes([byte])
            if self.keys.startswith(self._held):
                if self._held == self.keys:
                    self._held = b""
                    return bytes(out), True
                continue
            # not the sequence: hand on the held bytes, except a new start of it at the end
            while self._held and not self.keys.startswith(self._held):
                out.append(self._held[0])
                self._held = self._held[1:]
        return bytes(out), False
