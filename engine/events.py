"""berthd's events, what `GET /events` streams: dockerd's message shape, its filters, and its
memory of the last 256 events (replayed to a subscriber that asks `since` a past time), bounded
in bytes as well: a container event carries all the container's labels.

Events are berthd's own (create, start, die, exec_start, ...), logged where berthd acts, not
translated from the supervisor's containerd events: those know nothing of names, images or why a
container stopped.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

from .errors import InvalidParameter
from .images import reference

EVENTS_LIMIT = 256          # dockerd keeps this many for `since`
# ... and berthd at most about this many bytes of them: each container event copies the
# container's labels into its attributes, so 256 events of a container with a 4 MB label
# (under the API's cap on a body) would keep 1 GB alive after the container is gone. Past the
# budget the oldest events are forgotten, as past the count.
EVENTS_BYTES = 16 << 20
QUEUE_LIMIT = 1024          # a subscriber this far behind loses events (dockerd drops them too)
QUEUE_BYTES = 16 << 20      # ... or this many bytes behind
EVENT_OVERHEAD = 256        # bytes an event costs besides its strings (dicts, ints), roughly

# filter keys whose value is matched (as a prefix, or whole) against the actor's ID or name
_NAME_FILTERS = ("container", "daemon", "plugin", "volume", "network", "service", "node",
                 "secret", "config")
# an `event` filter on these matches any action that starts with it ("exec_start: sh -c ...")
_FUZZY_ACTIONS = ("health_status", "exec_create", "exec_start")


def _exact(filters: dict[str, list[str]], key: str, value: str) -> bool:
    values = filters.get(key)
    return not values or value in values


def _fuzzy(filters: dict[str, list[str]], key: str, value: str) -> bool:
    values = filters.get(key)
    return not values or any(value == v or value.startswith(v) for v in values)


def _strip_tag(image: str) -> str:
    try:
        return reference.familiar(reference.parse(image).repository)
    except InvalidParameter:        # not a reference (an image ID): compared as it is
        return image


class Filter:
    """dockerd's events filter: every key given must match (values of one key are OR'ed)."""

    def __init__(self, filters: dict[str, list[str]] | None = None):
        self.filters = {k: v for k, v in (filters or {}).items() if v}

    def __bool__(self) -> bool:
        return bool(self.filters)

    def matches(self, ev: dict) -> bool:
        f = self.filters
        actor, attrs = ev["Actor"]["ID"], ev["Actor"]["Attributes"]
        action = ev["Action"]
        if any(v in _FUZZY_ACTIONS for v in f.get("event", ())):
            if not _fuzzy(f, "event", action):
                return False
        elif not _exact(f, "event", action):
            return False
        if not _exact(f, "type", ev["Type"]) or not _exact(f, "scope", ev["scope"]):
            return False
        for key in _NAME_FILTERS:
            # as dockerd, on any event type: a container filter leaves out image events
            if key in f and not (_fuzzy(f, key, actor) or _fuzzy(f, key, attrs.get("name", ""))):
                return False
        if "image" in f:
            name = attrs.get("name" if ev["Type"] == "image" else "image", "")
            if not any(_exact(f, "image", v) for v in (actor, name, _strip_tag(actor),
                                                         _strip_tag(name))):
                return False
        for selector in f.get("label", ()):
            key, eq, want = selector.partition("=")
            if key not in attrs or (eq and attrs[key] != want):
                return False
        return True


def legacy_view(ev: dict) -> dict:
    """Below API 1.52 dockerd still sends the old top-level status/id/from fields."""
    if ev["Type"] == "container":
        return {"status": ev["Action"], "id": ev["Actor"]["ID"],
                "from": ev["Actor"]["Attributes"].get("image", ""), **ev}
    if ev["Type"] == "image":
        return {"status": ev["Action"], "id": ev["Actor"]["ID"], **ev}
    return ev


def size(ev: dict) -> int:
    """About how many bytes an event keeps alive: its strings, labels included, and overhead."""
    n = EVENT_OVERHEAD + len(ev["Type"]) + len(ev["Action"]) + len(ev["Actor"]["ID"])
    for key, value in ev["Actor"]["Attributes"].items():
        n += len(key) + len(str(value)) + 64
    return n


class Subscription:
    def __init__(self, log: "EventLog", filt: Filter):
        self._log = log
        self.filter = filt
        self.queue: asyncio.Queue[tuple[dict, int]] = asyncio.Queue(QUEUE_LIMIT)
        self.queued_bytes = 0

    def offer(self, ev: dict, nbytes: int) -> None:
        """Queue ev for this subscriber, unless it is already too far behind (then ev is lost
        to it, as dockerd drops events for a slow subscriber)."""
        if self.queued_bytes + nbytes > QUEUE_BYTES and not self.queue.empty():
            return
        try:
            self.queue.put_nowait((ev, nbytes))
        except asyncio.QueueFull:
            return
        self.queued_bytes += nbytes

    async def get(self) -> dict:
        ev, nbytes = await self.queue.get()
        self.queued_bytes -= nbytes
        return ev

    def close(self) -> None:
        self._log._subscribers.discard(self)


class EventLog:
    def __init__(self) -> None:
        self._recent: deque[tuple[dict, int]] = deque()     # (event, its size)
        self._recent_bytes = 0
        self._subscribers: set[Subscription] = set()

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def log(self, type_: str, action: str, actor_id: str, attributes: dict[str, str]) -> dict:
        now = time.time_ns()
        ev = {"Type": type_, "Action": action,
              "Actor": {"ID": actor_id, "Attributes": attributes},
              "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
        nbytes = size(ev)
        self._recent.append((ev, nbytes))
        self._recent_bytes += nbytes
        while len(self._recent) > EVENTS_LIMIT or (
                self._recent_bytes > EVENTS_BYTES and len(self._recent) > 1):
            _, old = self._recent.popleft()
            self._recent_bytes -= old
        for sub in list(self._subscribers):
            if sub.filter.matches(ev):
                sub.offer(ev, nbytes)
        return ev

    @property
    def remembered_bytes(self) -> int:
        return self._recent_bytes

    def container(self, c, action: str, **attributes: str) -> dict:
        """A container event, with the attributes dockerd gives every one: the container's
        labels, its image (as the user named it) and its name."""
        attrs = dict(c.config.get("Labels") or {})
        attrs.update(attributes)
        if c.config.get("Image"):
            attrs["image"] = c.config["Image"]
        attrs["name"] = c.name.lstrip("/")
        return self.log("container", action, c.id, attrs)

    def subscribe(self, since: int, until: int, filt: Filter) -> tuple[list[dict], Subscription]:
        """The remembered events in [since, until] (none when neither is given, as dockerd),
        and a subscription to the events to come; nothing can fall between the two."""
        past = []
        if since or until:
            past = [ev for ev, _ in self._recent
                    if ev["timeNano"] >= since and (not until or ev["timeNano"] <= until)
                    and filt.matches(ev)]
        sub = Subscription(self, filt)
        self._subscribers.add(sub)
        return past, sub
