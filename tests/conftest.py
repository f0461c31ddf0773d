"""Fixtures every layer's tests share, and the session-wide leak check.

Integration tests run as root against the real kernel. Each test cleans up after itself; the
leak check below fails the run if anything it could have made is still there at the end.
Set BERTH_LEAK_CHECK=test to check after every test instead, to find which one leaks, or
BERTH_LEAK_CHECK=off while other test runs share the host (their leftovers would be counted).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import leaks
from tests.helpers.rootfs import make_busybox_rootfs

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The daemons and lowrt are the venv's console scripts; put them first on PATH for every child.
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def _leak_report(lines: list[str]) -> str:
    return "left behind:\n  " + "\n  ".join(lines)


@pytest.fixture(scope="session", autouse=True)
def leak_check():
    if os.environ.get("BERTH_LEAK_CHECK") == "off":  # only while other test runs share the host
        yield
        return
    before = leaks.snapshot()
    yield
    lines = leaks.leaked(before, leaks.snapshot())
    if lines:
        pytest.fail(_leak_report(lines), pytrace=False)


@pytest.fixture(autouse=True)
def leak_check_per_test(request):
    if os.environ.get("BERTH_LEAK_CHECK") != "test":
        yield
        return
    before = leaks.snapshot()
    yield
    lines = leaks.leaked(before, leaks.snapshot())
    if lines:
        pytest.fail(f"{request.node.nodeid} {_leak_report(lines)}", pytrace=False)


@pytest.fixture
def short_tmp():
    """A temporary directory with a short path: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_rootfs_template(tmp_path_factory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("rootfs-template") / "rootfs")


@pytest.fixture
def busybox_rootfs(tmp_path, busybox_rootfs_template) -> Path:
    """A private copy of a busybox rootfs, so a test may write into it."""
    dest = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs_template, dest, symlinks=True)
    return dest
