"""berthd's start over containers that outlived it: the records are reconciled with the
supervisor's tasks (what still runs is watched again, exits that happened meanwhile are
recorded, tasks no record owns are deleted), and containers whose restart policy says so are
started again, as dockerd's restore does at daemon start.

A friend of the state machine in containers.py: it drives the same private steps (start under
the lock, delete a task, remove) that a user's request would.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from supervisor import errors as sup_errors

from . import restart_policy
from .container import Container
from .errors import EngineError

if TYPE_CHECKING:
    from .containers import Containers

log = logging.getLogger("berthd.containers")


async def restore(cs: Containers) -> None:
    """Reconcile records with the supervisor after berthd (re)starts: monitor what still
    runs, record exits that happened meanwhile, and clean up what no record owns."""
    client = await cs.link.ready_client()
    # network sandboxes: kept for what the records say still runs (its monitor detaches it
    # if it exited meanwhile), cleaned up for the rest
    await cs.networks.restore({c.id for c in cs.by_id.values() if c.running})
    tasks = {t["id"]: t for t in await client.list_tasks()}
    sup_containers = {x["id"] for x in await client.list_containers()}
    to_start = []
    for c in list(cs.by_id.values()):
        task = tasks.get(c.id)
        try:
            if c.restarting:
                # berthd stopped while a restart was pending: decided below, afresh
                c.state.update(Running=False, Restarting=False)
                cs._save(c)
            if c.running:
                if task and task.get("pid"):
                    c.state["Pid"] = task["pid"]
                c.stopped.clear()
                c.monitor = asyncio.get_running_loop().create_task(cs._monitor(c))
                cs.health.resume(c)     # probes go on with the state kept (not if paused)
                continue
            if c.id in tasks or c.id in sup_containers:
                log.info("cleaning up the leftover task of stopped container %s", c.id[:12])
                await cs._delete_task(c.id)
            if c.host_config.get("AutoRemove") and c.state["StartedAt"]:
                async with c.lock:
                    await cs._remove_locked(c, volumes=True)
            elif restart_at_boot(c):
                to_start.append(c)
        except (sup_errors.SupervisorError, EngineError) as e:
            log.error("restoring container %s: %s", c.id[:12], e)
    for c in to_start:
        log.info("starting container %s again (restart policy %s)", c.id[:12],
                 c.host_config["RestartPolicy"]["Name"])
        try:
            async with c.lock:
                cs._reset_restart_policy(c)
                await cs._start_locked(c)
        except EngineError as e:
            log.error("restarting container %s: %s", c.id[:12], e.message)
    for cid in (set(tasks) | sup_containers) - set(cs.by_id):
        log.info("removing supervisor container %s that berthd has no record of", cid[:12])
        try:
            await cs._delete_task(cid)
        except sup_errors.SupervisorError as e:
            log.error("cannot remove supervisor container %s: %s", cid[:12], e)


def restart_at_boot(c: Container) -> bool:
    """dockerd's ShouldRestart at daemon start, for a container that ran and is stopped:
    `always` even after a stop by the user, `unless-stopped` unless so stopped,
    `on-failure` after a failure while retries are left."""
    s = c.state
    if not s["StartedAt"] or s["Dead"]:
        return False
    policy = c.host_config.get("RestartPolicy") or {}
    manager = restart_policy.RestartManager(policy.get("Name") or "no",
                                            policy.get("MaximumRetryCount") or 0,
                                            c.record.get("RestartCount", 0))
    ran_for = max(0.0, (s["FinishedAt"] - s["StartedAt"]) / 1e9)
    return manager.should_restart(s["ExitCode"], c.manually_stopped, ran_for) is not None
