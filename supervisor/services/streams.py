"""berth.services.streams.v1.Streams/Attach: relays a process's stdio between a gRPC client and
the shim's attach stream."""
from __future__ import annotations

import asyncio
import logging

import grpc

from protos.berth.services.streams.v1 import streams_pb2, streams_pb2_grpc
from protos.berth.shim.v1 import shim_pb2
from supervisor.errors import InvalidArgument, SupervisorError
from supervisor.services import abort, namespace
from supervisor.shimconn import read_frame
from supervisor.tasks import Tasks

log = logging.getLogger(__name__)
READY_KEY = "berth-attach"


class StreamsServicer(streams_pb2_grpc.StreamsServicer):
    def __init__(self, tasks: Tasks):
        self.tasks = tasks

    async def Attach(self, request_iterator, context):
        try:
            first = await context.read()
            if first is grpc.aio.EOF or not first.HasField("open"):
                raise InvalidArgument("attach: the first message must carry open")
            o = first.open
            conn = await self.tasks.attach(namespace(context), o.container_id, o.exec_id,
                                           stdin=o.stdin, stdout=o.stdout, stderr=o.stderr)
        except Exception as e:  # noqa: BLE001
            await abort(context, e, "Streams.Attach")
        await context.send_initial_metadata(((READY_KEY, "1"),))
        if conn is None:
            return
        forward = asyncio.ensure_future(self._forward_input(context, conn))
        try:
            while True:
                frame = await read_frame(conn.reader, shim_pb2.AttachFrame)
                if frame is None:
                    break
                if frame.data and frame.stream in (shim_pb2.AttachFrame.STDOUT,
                                                   shim_pb2.AttachFrame.STDERR):
                    await context.write(streams_pb2.AttachResponse(stream=frame.stream,
                                                                   data=frame.data))
                if frame.closed:
                    break
        except SupervisorError as e:
            log.debug("attach to %s: %s", o.container_id, e)
        finally:
            forward.cancel()
            conn.close()

    @staticmethod
    async def _forward_input(context, conn) -> None:
        """Client messages -> the shim: stdin data and close-stdin."""
        try:
            while True:
                req = await context.read()
                if req is grpc.aio.EOF:  # the client half-closed: output goes on
                    return
                which = req.WhichOneof("msg")
                if which == "stdin":
                    await conn.send(shim_pb2.AttachFrame(stream=shim_pb2.AttachFrame.STDIN,
                                                         data=req.stdin))
                elif which == "close_stdin":
                    await conn.send(shim_pb2.AttachFrame(stream=shim_pb2.AttachFrame.STDIN, eof=True))
        except (SupervisorError, asyncio.CancelledError):
            return
        except Exception:  # noqa: BLE001
            log.exception("attach input")
