"""Fixtures for the supervisor's tests: private supervisors per runtime, a client in a namespace
of its own per test, and a busybox rootfs the containers share read-only.

Lifecycle tests take `runtime_client`, parametrized over lowrt (the default runtime) and runc.
"""
from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest

from tests.helpers.supervisor_env import SupervisorProcess, clear_namespace

_counter = itertools.count()


def unique(prefix: str = "c") -> str:
    return f"bts{os.getpid() % 1000}{prefix}{next(_counter)}{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="session")
def rootfs(busybox_rootfs_template) -> Path:
    """A busybox rootfs shared by every container, mounted read-only into each."""
    return busybox_rootfs_template


@pytest.fixture
def new_id():
    return unique


def _start(tmp_factory_base: str, runtime: str) -> SupervisorProcess:
    import tempfile
    base = Path(tempfile.mkdtemp(prefix=f"bt-{tmp_factory_base}-", dir="/tmp"))
    return SupervisorProcess(base, runtime=runtime).start()


@pytest.fixture(scope="module", params=["lowrt", "runc"])
def runtime_supervisor(request):
    sup = _start("sv", request.param)
    yield sup
    sup.cleanup()


@pytest.fixture(scope="module")
def supervisor():
    """A supervisor with its default runtime (lowrt)."""
    sup = _start("sv", "lowrt")
    yield sup
    sup.cleanup()


def _client(sup: SupervisorProcess):
    client = sup.client(unique("ns"))
    yield client
    clear_namespace(client)


@pytest.fixture
def runtime_client(runtime_supervisor):
    """A client in a fresh namespace of a supervisor per runtime; the test's tasks and containers
    are deleted afterwards."""
    yield from _client(runtime_supervisor)


@pytest.fixture
def client(supervisor):
    yield from _client(supervisor)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.failed_call = rep.failed


@pytest.fixture
def private_supervisor(request):
    """A supervisor of the test's own (to kill and restart); cleaned up completely afterwards.
    When the test fails, the supervisor's log is printed."""
    sups: list[SupervisorProcess] = []

    def make(runtime: str = "lowrt") -> SupervisorProcess:
        sup = _start("pv", runtime)
        sups.append(sup)
        return sup
    yield make
    for sup in sups:
        if getattr(request.node, "failed_call", False):
            print(f"--- supervisor log ({sup.base}) ---\n{sup.log()}")
        sup.cleanup()
