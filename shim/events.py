"""Task events with a per-shim sequence number, kept in a ring so that subscribers can resume.

A subscriber that reconnects passes the last seq it saw and is sent every later event the ring
still holds, then live ones; a gap in the numbers tells it that the ring has moved on.
"""
from __future__ import annotations

import time

from protos.berth.shim.v1 import shim_lean as pb

RING_SIZE = 1024


class Events:
    def __init__(self) -> None:
        self.seq = 0
        self._ring: list[tuple[int, bytes]] = []
        self._subscribers: list = []    # server connections in subscribe mode

    def publish(self, **event: pb._Message) -> None:
        """publish(exit=pb.TaskExit(...)): one keyword, the Event oneof member."""
        self.seq += 1
        wire = pb.Event(seq=self.seq, timestamp=time.time_ns(), **event).SerializeToString()
        self._ring.append((self.seq, wire))
        if len(self._ring) > RING_SIZE:
            del self._ring[:len(self._ring) - RING_SIZE]
        for conn in list(self._subscribers):
            conn.send(wire)

    def subscribe(self, conn, after_seq: int) -> None:
        for seq, wire in self._ring:
            if seq > after_seq:
                conn.send(wire)
        self._subscribers.append(conn)

    def unsubscribe(self, conn) -> None:
        if conn in self._subscribers:
            self._subscribers.remove(conn)
