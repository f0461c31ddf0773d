"""What v1 and v2 managers share: listing and signalling the processes, removing the cgroup."""
from __future__ import annotations

import errno
import os
import time

from lowrt.cgroups import fs
from lowrt.cgroups.fs import CgroupError

# SIGKILL, without importing signal (and enum with it: 8 ms on the create path)
SIGKILL = 9


class Manager:
    """One container's cgroup (one directory per hierarchy on v1, one directory on v2)."""

    version = 0

    @property
    def paths(self) -> dict[str, str]:
        """{controller: directory} on v1, {"": directory} on v2: what a runtime saves in its
        state so that a later process can reopen this cgroup with cgroups.load()."""
        raise NotImplementedError

    def _procs_dir(self) -> str | None:
        """A directory whose cgroup.procs lists every process of the container."""
        raise NotImplementedError

    def _dirs(self) -> list[str]:
        """Each directory of this cgroup once (co-mounted v1 controllers share one)."""
        seen: dict[str, None] = {}
        for d in self.paths.values():
            seen.setdefault(d, None)
        return list(seen)

    def exists(self) -> bool:
        d = self._procs_dir()
        return d is not None and os.path.isdir(d)

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into the cgroup in every hierarchy."""
        for d in self._dirs():
            try:
                fs.write(f"{d}/cgroup.procs", str(pid))
            except CgroupError as err:
                raise CgroupError(f"add process {pid} to cgroup {d}: {err}", err.errno) from None

    def pids(self) -> list[int]:
        """Every process in the cgroup and in the cgroups below it (a container may nest)."""
        top = self._procs_dir()
        if top is None:
            return []
        out: list[int] = []
        for dirpath, _, _ in os.walk(top):
            out.extend(fs.read_pids(f"{dirpath}/cgroup.procs"))
        return out

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def _can_freeze(self) -> bool:
        raise NotImplementedError

    def kill_all(self, sig: int = SIGKILL) -> None:
        """Signal every process, frozen first so none can fork past the list (as runc does).

        A cgroup that was paused stays paused, except for SIGKILL: its processes must thaw
        to die.
        """
        was_frozen = False
        can_freeze = self._can_freeze()
        if can_freeze:
            was_frozen = self.frozen()
            try:
                if not was_frozen:
                    self.freeze()
            except CgroupError:
                can_freeze = False
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and (not was_frozen or sig == SIGKILL):
                self.thaw()

    def wait_empty(self, timeout: float = 2.0) -> bool:
        """Wait until no process is left in the cgroup; False when some outlived `timeout`."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while self.pids():
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def destroy(self, kill: bool = False) -> None:
        """Remove the cgroup from every hierarchy, sub-cgroups first.

        With kill, SIGKILL whatever is still inside first; without, a cgroup that still holds
        processes after a short wait fails with EBUSY, naming them, and nothing is removed.
        rmdir retries EBUSY briefly (the kernel lets go of exiting tasks asynchronously);
        every directory is tried even if one fails.
        """
        if kill and self.exists():
            self.kill_all(SIGKILL)
            self.wait_empty()
        elif not self.wait_empty(0.2):
            raise CgroupError(f"remove cgroup {self._procs_dir()}: processes "
                              f"{self.pids()} are still in it", errno.EBUSY)
        first: CgroupError | None = None
        for d in self._dirs():
            try:
                fs.remove_tree(d, timeout=0.5)
            except CgroupError as err:
                if first is None:
                    first = err
        if first is not None:
            raise first
