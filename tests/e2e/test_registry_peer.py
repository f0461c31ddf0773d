"""Images that travel between berthd and Debian's dockerd through docker-registry: what berth
pushes dockerd pulls and runs, and what dockerd pushes berth pulls and runs."""
from __future__ import annotations

import os

import pytest

from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (fixture)
from tests.helpers.registry import Registry

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/docker-registry"),
                                reason="Debian's docker-registry is not installed")


@pytest.fixture(scope="module")
def registry():
    reg = Registry("plain").start()
    yield reg
    reg.stop()


def test_berth_pushes_and_dockerd_pulls_and_runs(daemon, dockerd, registry):
    ref = f"{registry.host}/peer/from-berth:1"
    try:
        assert daemon.docker("tag", "busybox", ref).returncode == 0
        p = daemon.docker("push", ref)
        assert p.returncode == 0, p.stderr
        p = dockerd.docker("pull", ref)
        assert p.returncode == 0, p.stderr
        p = dockerd.docker("run", "--rm", ref, "echo", "ran under dockerd")
        assert p.returncode == 0 and p.stdout == b"ran under dockerd\n", p.stderr
    finally:
        daemon.docker("rmi", ref)
        dockerd.docker("rmi", "-f", ref)


def test_dockerd_pushes_and_berth_pulls_and_runs(daemon, dockerd, registry):
    ref = f"{registry.host}/peer/from-dockerd:1"
    try:
        assert dockerd.docker("tag", "busybox", ref).returncode == 0
        p = dockerd.docker("push", ref)
        assert p.returncode == 0, p.stderr
        digest = p.stdout.decode().strip().splitlines()[-1].split()[2]
        p = daemon.docker("pull", ref)
        assert p.returncode == 0, p.stderr
        assert f"Digest: {digest}" in p.stdout.decode(), p.stdout
        p = daemon.docker("run", "--rm", ref, "echo", "ran under berth")
        assert p.returncode == 0 and p.stdout == b"ran under berth\n", p.stderr
    finally:
        daemon.docker("rmi", ref)
        dockerd.docker("rmi", "-f", ref)
