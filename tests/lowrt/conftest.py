"""Fixtures for lowrt's tests: a private runtime root, and bundles over a busybox rootfs."""
from __future__ import annotations

import os

import pytest

from tests.helpers.lowrt_env import Runtime, make_bundle, unique_id

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="lowrt's tests run as root")


@pytest.fixture
def rt(short_tmp):
    runtime = Runtime(short_tmp / "root")
    yield runtime
    runtime.cleanup()


@pytest.fixture
def cid():
    return unique_id()


@pytest.fixture
def bundle(short_tmp, busybox_rootfs_template):
    """make(args, **config changes) -> bundle path; the rootfs is shared and read-only."""
    def make(args, name="bundle", **changes):
        path = short_tmp / name
        make_bundle(path, busybox_rootfs_template, args, **changes)
        return path
    return make
