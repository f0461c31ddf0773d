"""Debian's dockerd (20.10, with runc) as the reference the e2e tests compare berthd with: a
private instance with a busybox like berth's imported, and a module-scoped fixture that skips
where dockerd is not installed."""
from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers.engine_daemon import DOCKER, VENV_BIN


class PeerDockerd:
    def __init__(self, root: Path):
        from tests.helpers.lowrt_clients import PrivateDockerd
        from tests.helpers.rootfs import make_busybox_rootfs
        self.daemon = PrivateDockerd(str(VENV_BIN / "lowrt"))
        self.sock = self.daemon.host[len("unix://"):]
        rootfs = make_busybox_rootfs(root / "rootfs")
        with tarfile.open(root / "busybox.tar", "w") as t:
            t.add(rootfs, arcname=".")
        self.daemon.docker("import", str(root / "busybox.tar"), "busybox")

    def docker(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        """The docker CLI against it; `run` gets --network none, as berth's containers have."""
        if args[0] == "run":
            args = ("run", "--network", "none", *args[1:])
        return self.daemon.docker(*args, check=False, input=input)


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    if not shutil.which("dockerd") or not shutil.which(DOCKER):
        pytest.skip("dockerd is not installed")
    peer = PeerDockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        yield peer
    finally:
        peer.daemon.stop()


def skip_where_its_exec_sees_the_host() -> None:
    """`docker exec` under dockerd runs runc exec, which stays at the root setns leaves it at:
    for a chrooted caller (the fresh-root harness), the host's /, not the container's. Tests
    that exec into dockerd's containers cannot run there."""
    from tests.helpers.supervisor_env import caller_is_chrooted
    if caller_is_chrooted():
        pytest.skip("runc exec from a chrooted caller lands at the host's root, not the "
                    "container's")
