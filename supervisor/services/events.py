"""containerd.services.events.v1.Events over supervisor.events.Exchange.

berth's addition: Subscribe takes the metadata key `berth-events-after: <seq>` to resume after a
sequence number, sends `berth-events-seq: <last stored seq>` in its initial metadata once the
subscription is live, and every Envelope carries its sequence number in `berth_seq`.
"""
from __future__ import annotations

from google.protobuf import empty_pb2

from protos.containerd.services.events.v1 import events_pb2_grpc
from supervisor.errors import InvalidArgument
from supervisor.events import Exchange
from supervisor.services import abort, metadata, namespace, unary

AFTER_KEY = "berth-events-after"
READY_KEY = "berth-events-seq"


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, exchange: Exchange):
        self.exchange = exchange

    @unary
    async def Publish(self, request, context):
        self.exchange.publish(namespace(context), request.topic, request.event)
        return empty_pb2.Empty()

    @unary
    async def Forward(self, request, context):
        self.exchange.forward(request.envelope)
        return empty_pb2.Empty()

    async def Subscribe(self, request, context):
        try:
            after = metadata(context).get(AFTER_KEY)
            try:
                after_seq = int(after) if after is not None else None
            except ValueError:
                raise InvalidArgument(f'{AFTER_KEY}: "{after}" is not a sequence number') from None
            sub = self.exchange.subscribe(list(request.filters), after_seq)
        except Exception as e:  # noqa: BLE001
            await abort(context, e, "Events.Subscribe")
        try:
            await context.send_initial_metadata(((READY_KEY, str(sub.start_seq)),))
            async for _seq, env in sub:
                await context.write(env)
        except Exception as e:  # noqa: BLE001
            await abort(context, e, "Events.Subscribe")
        finally:
            sub.close()
