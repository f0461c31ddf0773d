"""Healthchecks as dockerd runs them (its daemon/health.go): a monitor per running, unpaused
container whose Config.Healthcheck names a CMD or CMD-SHELL test runs the probe every interval,
through the same exec path as `docker exec`, and keeps State.Health.

The state machine:
- start (or a restart): Status "starting", FailingStreak 0 (the log of earlier runs is kept);
- a probe that exits 0: FailingStreak 0, "healthy";
- any other result (exit code 1 or any other, a probe past its timeout, one that cannot start):
  FailingStreak + 1 and "unhealthy" once it reaches Retries, except while the container is
  still "starting" and the probe began within the start period: then it is not counted;
- the monitor stopped (the container exits or is paused): "unhealthy", as dockerd says for
  compatibility; an unpause starts the monitor again with what was kept, berthd's restart with
  live containers too.
Each change of Status is a `health_status: <status>` event. The log keeps the last 5 results,
each probe's output cut at 4096 bytes.

Timing: the first probe comes one interval after the start; during the start period, while
still "starting", the start interval is used; no wait goes past the end of the start period
(moby#52317's cap), so the first probe after it is not late.

Restarting an unhealthy container is not docker's behaviour and is not done here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from . import timefmt

if TYPE_CHECKING:           # container.py's views use this module's labels
    from .container import Container
    from .events import EventLog

log = logging.getLogger("berthd.health")

# dockerd's defaults, in ns, for a duration given as 0 (or not given)
DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5_000_000_000
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096           # bytes of a probe's output kept; "..." marks a cut
MAX_LOG = 5                 # results kept in State.Health.Log
START_WAIT = 30.0           # seconds an exec may take to start before the probe is an error

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)     # values of `docker ps --filter health=`


@dataclass
class ProbeResult:
    start: int          # ns since the epoch
    end: int
    exit_code: int
    output: str

    def record(self) -> dict:
        return {"Start": self.start, "End": self.end, "ExitCode": self.exit_code,
                "Output": self.output}


# run_probe(container, command, timeout in ns) -> (exit code, output); -1 and the message for
# a probe past its timeout; raises (an EngineError, say) when the probe cannot run at all
ProbeRunner = Callable[["Container", list[str], int], Awaitable[tuple[int, str]]]


def probe_command(config: dict) -> list[str] | None:
    """What a probe runs: CMD's arguments, CMD-SHELL's string through the container's Shell
    (/bin/sh -c by default); None for no healthcheck, NONE, or a test type dockerd ignores."""
    test = list((config.get("Healthcheck") or {}).get("Test") or [])
    if not test:
        return None
    kind = test[0]
    if kind == "CMD":
        return test[1:]
    if kind == "CMD-SHELL":
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + test[1:]
    if kind != "NONE":
        log.warning("unknown healthcheck type %r (expected 'CMD')", kind)
    return None


def merge_image_healthcheck(config: dict, image_config: dict) -> None:
    """moby's merge() of HEALTHCHECK: the image's when the request has none, else the image's
    values fill the fields the request left empty (a NONE test stays NONE)."""
    image_hc = image_config.get("Healthcheck")
    if not image_hc:
        return
    hc = config.get("Healthcheck")
    if hc is None:
        config["Healthcheck"] = dict(image_hc)
        return
    hc = dict(hc)
    if not hc.get("Test"):
        hc["Test"] = image_hc.get("Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not hc.get(key):
            if image_hc.get(key):
                hc[key] = image_hc[key]
    config["Healthcheck"] = hc


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 30s, 1.5s, 500ms, 1m30s, 1h0m0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                whole, frac = divmod(ns, size)
                digits = len(str(size)) - 1
                tail = f"{frac:0{digits}d}".rstrip("0") if digits else ""
                return f"{sign}{whole}{'.' + tail if tail else ''}{unit}"
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    secs, frac = divmod(rest, 1_000_000_000)
    tail = f"{frac:09d}".rstrip("0")
    seconds = f"{secs}{'.' + tail if tail else ''}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


def cut_output(data: bytes, truncated: bool) -> str:
    """A probe's output as dockerd keeps it: its first MAX_OUTPUT bytes, then "..." when more
    came; invalid UTF-8 becomes U+FFFD as Go's JSON writes it."""
    return data[:MAX_OUTPUT].decode("utf-8", "replace") + ("..." if truncated else "")


def status_of(c: "Container") -> str:
    """The health filter's value: none without a healthcheck that ever ran."""
    health = c.state.get("Health")
    return (health.get("Status") or UNHEALTHY) if health else NONE


def label(c: "Container") -> str:
    """What `docker ps` shows after "Up ...": "(healthy)", "(health: starting)"; "" for none."""
    health = c.state.get("Health")
    if not health:
        return ""
    status = health.get("Status") or UNHEALTHY
    return "health: starting" if status == STARTING else status


def view(health: dict | None) -> dict | None:
    """State.Health of inspect: the times as RFC 3339 (an empty Log while none ran, as
    Debian's dockerd shows it)."""
    if not health:
        return None
    logs = [{"Start": timefmt.rfc3339nano(r["Start"]), "End": timefmt.rfc3339nano(r["End"]),
             "ExitCode": r["ExitCode"], "Output": r["Output"]} for r in health.get("Log") or []]
    return {"Status": health.get("Status") or UNHEALTHY,
            "FailingStreak": health.get("FailingStreak", 0), "Log": logs}


class Settings:
    """A container's Healthcheck with dockerd's defaults for what is 0."""

    def __init__(self, config: dict):
        hc = config.get("Healthcheck") or {}
        self.interval = hc.get("Interval") or DEFAULT_INTERVAL
        self.timeout = hc.get("Timeout") or DEFAULT_TIMEOUT
        self.start_period = hc.get("StartPeriod") or DEFAULT_START_PERIOD
        self.start_interval = hc.get("StartInterval") or DEFAULT_START_INTERVAL
        retries = hc.get("Retries") or 0
        self.retries = retries if retries > 0 else DEFAULT_RETRIES


def next_wait(settings: Settings, started_ns: int, now_ns: int, status: str) -> int:
    """ns until the next probe: the interval; during the start period the start interval
    while "starting", never past the start period's end."""
    elapsed = now_ns - started_ns
    if elapsed >= settings.start_period:
        return settings.interval
    remaining = settings.start_period - elapsed
    wanted = settings.start_interval if status == STARTING else settings.interval
    return min(wanted, remaining)


def apply_result(health: dict, result: ProbeResult, settings: Settings,
                 started_ns: int) -> str:
    """One probe's result into health (Log, FailingStreak, Status); returns the new status."""
    entries = list(health.get("Log") or [])
    entries.append(result.record())
    health["Log"] = entries[-MAX_LOG:]
    if result.exit_code == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        in_grace = (health.get("Status") == STARTING
                    and result.start - started_ns < settings.start_period)
        if not in_grace:
            health["FailingStreak"] = health.get("FailingStreak", 0) + 1
            if health["FailingStreak"] >= settings.retries:
                health["Status"] = UNHEALTHY
    return health["Status"]


class HealthMonitors:
    """The probe loops of berthd's containers. Containers calls init/update/stop as a
    container starts, pauses, unpauses, exits; Execs gives the runner (the exec path)."""

    def __init__(self, events: "EventLog", save: Callable[["Container"], None]):
        self.events = events
        self.save = save
        self.runner: ProbeRunner | None = None
        self.tasks: dict[str, asyncio.Task] = {}

    def init(self, c: Container) -> None:
        """A (re)started container: "starting" with no failures, and its monitor running."""
        if probe_command(c.config) is None:
            return
        self._cancel(c.id)
        health = c.state.get("Health") or {"Log": []}
        health.update(Status=STARTING, FailingStreak=0)
        c.state["Health"] = health
        self.update(c)

    def update(self, c: Container) -> None:
        """Run the monitor exactly while the container runs unpaused with a probe; a monitor
        stopped marks it unhealthy (dockerd's CloseMonitorChannel)."""
        if not c.state.get("Health"):
            return          # never started with a healthcheck
        want = c.running and not c.paused and not c.restarting and \
            probe_command(c.config) is not None
        if want:
            if c.id not in self.tasks and self.runner is not None:
                self.tasks[c.id] = asyncio.get_running_loop().create_task(self._monitor(c))
        else:
            self.stop(c)

    def stop(self, c: Container) -> None:
        if self._cancel(c.id):
            c.state["Health"]["Status"] = UNHEALTHY

    def resume(self, c: Container) -> None:
        """After berthd's restart: a live container's monitor again, with its kept state."""
        self.update(c)

    def _cancel(self, cid: str) -> bool:
        task = self.tasks.pop(cid, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def shutdown(self) -> None:
        """berthd stops; the containers go on (live restore): the loops end, the state stays
        as it was, and a probe in flight is killed by its runner's cleanup."""
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _monitor(self, c: Container) -> None:
        settings = Settings(c.config)
        command = probe_command(c.config) or []
        started = c.state["StartedAt"]
        try:
            while True:
                status = c.state["Health"].get("Status")
                wait = next_wait(settings, started, timefmt.now_ns(), status)
                await asyncio.sleep(wait / 1e9)
                result = await self._probe(c, command, settings)
                if self.tasks.get(c.id) is not asyncio.current_task():
                    return      # stopped while the probe ran: its result does not count
                self._record(c, result, settings, started)
        except asyncio.CancelledError:
            raise
        except Exception:       # a bug here must not go unseen, nor kill berthd
            log.exception("health monitor of %s failed", c.id[:12])
            if self.tasks.get(c.id) is asyncio.current_task():
                del self.tasks[c.id]

    async def _probe(self, c: Container, command: list[str], settings: Settings) -> ProbeResult:
        start = timefmt.now_ns()
        t0 = time.monotonic()
        try:
            assert self.runner is not None
            code, output = await self.runner(c, command, settings.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:      # dockerd: a probe that cannot run is a failure, -1
            message = getattr(e, "message", None) or str(e)
            log.warning("health check for container %s error: %s", c.id[:12], message)
            code, output = -1, message
        log.debug("health check of %s: exit %d after %.0f ms", c.id[:12], code,
                  (time.monotonic() - t0) * 1e3)
        return ProbeResult(start=start, end=timefmt.now_ns(), exit_code=code, output=output)

    def _record(self, c: Container, result: ProbeResult, settings: Settings,
                started: int) -> None:
        health = c.state["Health"]
        old = health.get("Status")
        new = apply_result(health, result, settings, started)
        if new != old:
            # persisted on a change only (dockerd keeps each result in memory alone)
            self.save(c)
            self.events.container(c, f"health_status: {new}")
