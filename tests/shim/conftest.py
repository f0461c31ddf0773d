"""Fixtures for the shim's tests: a private ShimEnv per test, for each runtime.

Every test that runs containers is parametrized over the runtimes the shim drives: runc (the
reference) and lowrt (berth's own), once lowrt is installed as a console script in the venv.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from protos import lean_codegen

# The lean codec is build output, made at install time by protos/generate.py. A checkout
# installed before the generator existed lacks it: make it, so the shim can start at all.
# (test_codec.py checks separately that the module matches shim.proto.)
_LEAN = lean_codegen.ROOT / "protos/berth/shim/v1/shim_lean.py"
if not _LEAN.exists():
    lean_codegen.generate("protos/berth/shim/v1/shim.proto")

from tests.helpers.shim_env import ShimEnv  # noqa: E402  (needs the lean module)

RUNTIMES = ("runc", "lowrt")


def _runtime_available(name: str) -> bool:
    path = shutil.which(name)
    if not path:
        return False
    return subprocess.run([path, "--version"], capture_output=True).returncode == 0


@pytest.fixture(params=RUNTIMES)
def runtime(request) -> str:
    if not _runtime_available(request.param):
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture
def env(short_tmp, busybox_rootfs_template, runtime):
    e = ShimEnv(short_tmp, busybox_rootfs_template, runtime)
    yield e
    e.teardown()
