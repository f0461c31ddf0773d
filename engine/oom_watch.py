"""OOM kills, as berth-supervisor reports them (its /tasks/oom events, which the shims raise),
recorded in the container's State.OOMKilled and as `oom` events."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from supervisor import errors as sup_errors

if TYPE_CHECKING:
    from .containers import Containers

log = logging.getLogger("berthd.containers")


async def watch(cs: Containers) -> None:
    """Follow the supervisor's /tasks/oom events into State.OOMKilled, resubscribing from
    the last event seen when the supervisor restarts."""
    after = None
    while True:
        try:
            client = await cs.link.ready_client()
            sub = await client.subscribe('topic=="/tasks/oom"', after=after)
            try:
                async for event in sub:
                    after = event["seq"]
                    record(cs, event["event"].get("container_id", ""))
            finally:
                sub.close()
        except sup_errors.SupervisorError as e:
            log.debug("event subscription ended: %s; subscribing again", e)
        # grpc turns a cancel that lands in a read into the end of the stream: a shutdown
        # right after start would otherwise resubscribe, and wait, for ever
        if asyncio.current_task().cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(0.2)


def record(cs: Containers, cid: str) -> None:
    c = cs.by_id.get(cid)
    if c is None:
        return
    log.info("container %s: the OOM killer struck", cid[:12])
    c.oom_killed = True
    cs.events.container(c, "oom")
    if not c.running and c.state["StartedAt"]:
        c.state["OOMKilled"] = True      # the exit was handled first
        cs._save(c)
