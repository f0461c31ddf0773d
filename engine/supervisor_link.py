"""berthd's connection to berth-supervisor: one AsyncClient in berthd's namespace, remade after
the supervisor restarts (a fresh channel connects at once; an old one may sit in gRPC's
reconnect backoff), and a way to wait until the supervisor is up."""
from __future__ import annotations

import asyncio
import logging

from supervisor import errors as sup_errors
from supervisor.client import AsyncClient

from .supervisor_proc import ManagedSupervisor
from .version import NAMESPACE

log = logging.getLogger("berthd.supervisor")


class SupervisorLink:
    def __init__(self, address: str, managed: ManagedSupervisor | None = None):
        self.address = address
        self.managed = managed
        self._client: AsyncClient | None = None
        self._generation = -1
        self._verified = -2
        self._stale: list[AsyncClient] = []

    @property
    def client(self) -> AsyncClient:
        generation = self.managed.restarts if self.managed else 0
        if self._client is None or generation != self._generation:
            if self._client is not None:
                self._stale.append(self._client)
            self._client = AsyncClient(self.address, namespace=NAMESPACE)
            self._generation = generation
        return self._client

    async def ready_client(self, timeout: float = 60.0) -> AsyncClient:
        """The client, once the supervisor is up (a managed one may be restarting) and this
        client has reached it: gRPC keeps connections to an address in a process-wide pool, so
        even a new channel waits out the reconnect backoff the dead supervisor caused."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.managed is not None:
            try:
                await asyncio.wait_for(self.managed.up.wait(), timeout)
            except asyncio.TimeoutError:
                raise sup_errors.Unavailable(
                    f"berth-supervisor at {self.address} is not up") from None
        client = self.client
        while self._verified != self._generation:
            try:
                await client.version()
                self._verified = self._generation
            except sup_errors.SupervisorError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)
        return client

    async def wait_external(self, timeout: float = 30.0) -> None:
        """For a supervisor berthd did not start: wait until it answers."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.client.version()
                return
            except sup_errors.SupervisorError as e:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"cannot reach berth-supervisor at {self.address}: {e}") from None
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        for c in [*self._stale, *([self._client] if self._client else [])]:
            await c.close()
        self._stale.clear()
        self._client = None
