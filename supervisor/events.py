"""The event exchange: every event gets a supervisor-wide sequence number, is stored, then fanned
out to the live subscribers whose filters match.

Resuming: a subscriber that passes `after` first gets every stored event with a larger sequence
number, then live ones, with nothing lost in between: registering the subscriber and reading the
stored backlog happen with no await in between, so on this single event loop no event can be
published in the gap. The table keeps the last KEEP events.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message

from protos.containerd.services.events.v1 import events_pb2
from supervisor import convert, filters
from supervisor.errors import InvalidArgument, SupervisorError
from supervisor.store import Store

log = logging.getLogger(__name__)

KEEP = 50_000
QUEUE_LIMIT = 20_000
_TOPIC = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$")


class EventsGone(SupervisorError):
    """A resume point older than the oldest stored event: what lies between is lost."""

    code = grpc.StatusCode.OUT_OF_RANGE


class SubscriberOverflow(SupervisorError):
    """A subscriber fell so far behind that its queue overflowed; it resumes with `after`."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def validate_topic(topic: str) -> None:
    if not topic:
        raise InvalidArgument("envelope topic: must not be empty")
    if not _TOPIC.match(topic):
        raise InvalidArgument(f'envelope topic "{topic}": must be /-separated components of '
                              "letters, digits, '.', '_' and '-', starting with '/'")


def _adaptor(env: events_pb2.Envelope) -> filters.Adaptor:
    decoded: dict = {}

    def adapt(path: list[str]) -> tuple[str, bool]:
        if path[0] == "topic":
            return env.topic, True
        if path[0] == "namespace":
            return env.namespace, True
        if path[0] == "event":
            if "event" not in decoded:
                msg = convert.unpack_event(env.event)
                decoded["event"] = convert.to_dict(msg) if msg is not None else {}
            return filters.mapping_adaptor(decoded)(path)
        return "", False
    return adapt


class Subscriber:
    """One subscription: `async for seq, envelope in sub`. close() (or the exchange) ends it."""

    def __init__(self, exchange: "Exchange", flt: filters.Filter, after: int | None):
        self._exchange = exchange
        self.filter = flt
        self.queue: asyncio.Queue = asyncio.Queue()
        self.start_seq = exchange.store.last_event_seq()
        self._backlog_from = after if after is not None else self.start_seq
        self.overflowed_at: int | None = None
        self.closed = False

    def offer(self, seq: int, env: events_pb2.Envelope) -> None:
        if self.closed or self.overflowed_at is not None:
            return
        if not self.filter.match(_adaptor(env)):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed_at = seq
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((seq, env))

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        last = self._backlog_from
        # Stored events up to start_seq (those after it are queued live).
        while last < self.start_seq:
            rows = self._exchange.store.events_after(last, 500)
            rows = [r for r in rows if r[0] <= self.start_seq]
            if not rows:
                break
            for row in rows:
                last = row[0]
                env = self._exchange.envelope(*row)
                if self.filter.match(_adaptor(env)):
                    yield last, env
            await asyncio.sleep(0)
        while not self.closed:
            item = await self.queue.get()
            if item is None:
                if self.overflowed_at is not None:
                    raise SubscriberOverflow(
                        f"events: subscriber fell behind at seq {self.overflowed_at}; "
                        f"resubscribe after seq {last}")
                return
            seq, env = item
            if seq > last:
                last = seq
                yield seq, env

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._exchange._subscribers.discard(self)
            self.queue.put_nowait(None)


class Exchange:
    def __init__(self, store: Store, keep: int = KEEP):
        self.store = store
        self.keep = keep
        self._subscribers: set[Subscriber] = set()
        self._since_prune = 0

    @staticmethod
    def envelope(seq: int, timestamp: int, namespace: str, topic: str, type_url: str,
                 payload: bytes) -> events_pb2.Envelope:
        return events_pb2.Envelope(timestamp=convert.ns_to_timestamp(timestamp), namespace=namespace,
                                   topic=topic, event=any_pb2.Any(type_url=type_url, value=payload),
                                   berth_seq=seq)

    def publish(self, namespace: str, topic: str, event: Message | any_pb2.Any, *,
                timestamp: int | None = None, apply: Callable[[], None] | None = None) -> int:
        """Store and deliver one event; `apply` runs in the same transaction (the state change the
        event announces). Returns the event's sequence number."""
        validate_topic(topic)
        any_event = event if isinstance(event, any_pb2.Any) else convert.pack(event)
        ts = timestamp if timestamp is not None else time.time_ns()
        with self.store.tx():
            if apply is not None:
                apply()
            seq = self.store.insert_event(ts, namespace, topic, any_event.type_url, any_event.value)
            env = self.envelope(seq, ts, namespace, topic, any_event.type_url, any_event.value)
            # Delivered once durable: a subscriber never sees a seq that a rollback could reuse.
            self.store.after_commit(lambda: self._deliver(seq, env))
        self._since_prune += 1
        if self._since_prune >= 1000:
            self._since_prune = 0
            self.store.prune_events(self.keep)
        return seq

    def _deliver(self, seq: int, env: events_pb2.Envelope) -> None:
        log.debug("event %d %s %s", seq, env.namespace, env.topic)
        for sub in list(self._subscribers):
            sub.offer(seq, env)

    def forward(self, envelope: events_pb2.Envelope) -> int:
        if not envelope.namespace:
            raise InvalidArgument("envelope namespace: must not be empty")
        ts = convert.timestamp_to_ns(envelope.timestamp) if envelope.HasField("timestamp") else None
        return self.publish(envelope.namespace, envelope.topic, envelope.event, timestamp=ts or None)

    def subscribe(self, filter_strings=(), after: int | None = None) -> Subscriber:
        flt = filters.parse(filter_strings)
        if after is not None and after < self.store.last_event_seq():
            first = self.store.first_event_seq()
            if first and after < first - 1:
                raise EventsGone(f"events: cannot resume after seq {after}: the oldest stored "
                                 f"event is {first} (only the last {self.keep} are kept)")
        sub = Subscriber(self, flt, after)
        self._subscribers.add(sub)
        return sub

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.close()
