"""Fixtures for lowrt's tests: a private runtime root, and bundles over a busybox rootfs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.lowrt_env import Runtime, make_bundle, unique_id

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """lowrt's tests run as root. (A conftest's pytestmark is not read by pytest; a hook is.)
    Hooks in a conftest see the whole session's items, so only this directory's are marked."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lowrt's tests run as root")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def probe_rootfs(busybox_rootfs_template):
    """The busybox rootfs plus /probe (tests/helpers/lowrt_probe.c, built static): a program
    that prints, as JSON, what a process inside the container sees. Every directory above it
    can be searched by anyone, so a container's root mapped to another uid reaches it."""
    import shutil
    import subprocess
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="bt-probe-", dir="/tmp"))
    top.chmod(0o755)
    root = top / "rootfs"
    shutil.copytree(busybox_rootfs_template, root, symlinks=True)
    root.chmod(0o755)
    source = Path(__file__).resolve().parent.parent / "helpers" / "lowrt_probe.c"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(root / "probe"), str(source)], check=True)
    yield root
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def probe(rt, short_tmp, probe_rootfs):
    """probe(*probe_args, **config changes) -> what /probe saw, run by `lowrt run`."""
    import json

    def run(*args, name="probe-bundle", expect_code=0, **changes):
        path = short_tmp / name
        make_bundle(path, probe_rootfs, ["/probe", *args], **changes)
        out = rt.run("run", "--bundle", str(path), unique_id(), check=False)
        assert out.returncode == expect_code, out.stderr.decode(errors="replace")
        return json.loads(out.stdout)
    return run


@pytest.fixture(scope="session")
def v2vm_dir(tmp_path_factory):
    """Work files of tests/helpers/lowrt_cgroups_v2vm.sh, its kernel package among them: one
    download a session (LOWRT_V2VM_DIR keeps them across sessions)."""
    return os.environ.get("LOWRT_V2VM_DIR") or str(tmp_path_factory.mktemp("v2vm"))


@pytest.fixture(scope="session")
def userns_ok():
    """Skip unless this process may make a user namespace (a chrooted one may not)."""
    import subprocess
    if subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces cannot be made here (chrooted, or disabled)")


@pytest.fixture(scope="session")
def pty_ok():
    import os
    try:
        master, slave = os.openpty()
    except OSError:
        pytest.skip("no pseudo-terminals here (no devpts)")
    os.close(master)
    os.close(slave)
