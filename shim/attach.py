"""Attach streams: AttachFrames both ways on a connection, after the Attach response.

The shim sends stdout/stderr frames as output arrives, an `eof` frame when a stream ends and a
`closed` frame when all output has ended, then closes. The client sends stdin frames and `eof`
to close the process's stdin. A client that stops reading is dropped by its connection's buffer
limit (shim.server), never waited for.
"""
from __future__ import annotations

from protos.berth.shim.v1 import shim_lean as pb

_STREAM = {"stdout": pb.AttachFrame.STDOUT, "stderr": pb.AttachFrame.STDERR}


class AttachClient:
    def __init__(self, conn, io, *, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.conn = conn
        self.io = io
        self.stdin = stdin
        self.wants = {"stdout": stdout, "stderr": stderr}
        self.ended = False
        conn.on_close.append(self._disconnected)

    # -- from the process ------------------------------------------------------------------
    def output(self, stream: str, data: bytes) -> None:
        if self.wants[stream]:
            self.conn.send(pb.AttachFrame(stream=_STREAM[stream], data=data).SerializeToString())

    def stream_ended(self, stream: str) -> None:
        if self.wants[stream]:
            self.conn.send(pb.AttachFrame(stream=_STREAM[stream], eof=True).SerializeToString())

    def output_closed(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.conn.send(pb.AttachFrame(closed=True).SerializeToString())
        self.conn.finish()

    # -- from the client -------------------------------------------------------------------
    def on_frame(self, frame) -> None:
        if not self.stdin:
            return
        if frame.data:
            self.io.write_stdin(frame.data)
        if frame.eof:
            self.io.close_stdin()

    def drain(self) -> None:
        self.conn.read_available()

    def pause(self) -> None:
        self.conn.pause_reading()

    def resume(self) -> None:
        self.conn.resume_reading()

    def _disconnected(self) -> None:
        self.io.remove_client(self)
        if self.stdin and self.io.stdin_once and not self.ended:
            self.io.close_stdin()
