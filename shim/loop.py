"""The shim's single-threaded event loop: epoll over raw fds, plus timers.

Plain epoll rather than selectors or asyncio: the shim runs once per container, and every module
it imports is resident memory multiplied by the number of containers.
"""
from __future__ import annotations

import heapq
import select
import time
# `collections.abc` imports the whole `collections` package (3-4 ms in every shim);
# `_collections_abc`, which `os` has already loaded, defines the same Callable.
from _collections_abc import Callable

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ERR = select.EPOLLERR | select.EPOLLHUP

Callback = Callable[[], None]


def _print_error(msg: str) -> None:
    print(msg, flush=True)


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "Timer") -> bool:
        return self.when < other.when


class Loop:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._registered: dict[int, int] = {}   # fd -> mask given to epoll
        self._timers: list[Timer] = []
        self._idle: list[Callback] = []         # run after each round of events
        self.running = True
        self.on_error: Callable[[str], None] = _print_error

    # -- fds --------------------------------------------------------------------------------
    def _update(self, fd: int) -> None:
        mask = (_IN if fd in self._readers else 0) | (_OUT if fd in self._writers else 0)
        old = self._registered.get(fd, 0)
        if mask == old:
            return
        if not mask:
            del self._registered[fd]
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):  # closed already: epoll forgot it by itself
                pass
        elif not old:
            self._epoll.register(fd, mask)
            self._registered[fd] = mask
        else:
            self._epoll.modify(fd, mask)
            self._registered[fd] = mask

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._readers[fd] = callback
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._writers[fd] = callback
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    def forget(self, fd: int) -> None:
        """Drop every callback for fd; call before closing it."""
        self._readers.pop(fd, None)
        self._writers.pop(fd, None)
        self._update(fd)

    # -- timers -----------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callback) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, timer)
        return timer

    def add_idle(self, callback: Callback) -> None:
        """callback runs after every round of events (the reaper's exit dispatch)."""
        self._idle.append(callback)

    # -- running ----------------------------------------------------------------------------
    def run_once(self, max_wait: float | None = None) -> None:
        timeout = -1.0 if max_wait is None else max_wait
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        if self._timers:
            until = max(0.0, self._timers[0].when - time.monotonic())
            timeout = until if timeout < 0 else min(timeout, until)
        events = self._epoll.poll(timeout)
        for fd, mask in events:
            if mask & (_IN | _ERR):
                cb = self._readers.get(fd)
                if cb is not None:
                    self._call(cb)
            if mask & (_OUT | _ERR):
                cb = self._writers.get(fd)
                if cb is not None:
                    self._call(cb)
        now = time.monotonic()
        while self._timers and (self._timers[0].cancelled or self._timers[0].when <= now):
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._call(timer.callback)
        for cb in self._idle:
            self._call(cb)

    def _call(self, cb: Callback) -> None:
        """A bug in one callback must not take the shim, and so the container's stdio, down."""
        try:
            cb()
        except Exception:
            import traceback
            self.on_error(f"error in the event loop:\n{traceback.format_exc()}")

    def run(self) -> None:
        while self.running:
            self.run_once()

    def stop(self) -> None:
        self.running = False
