"""Handles on host paths must not reach the container (CVE-2024-21626): not as an fd of the
created-but-not-started init, not as the program's cwd through /proc/self/fd/N."""
from __future__ import annotations

import os
import subprocess

from tests.helpers.lowrt_env import make_bundle


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_created_init_holds_no_handle_on_the_hosts_proc(rt, bundle, cid):
    """The exec FIFO is reopened through the container's own /proc, as runc does: the host's,
    held until `start`, would be /proc/<init>/fd/N/1/root, the host's root, to a process
    that may look at the init's fds."""
    b = bundle(["true"])
    rt.run("create", "--bundle", str(b), cid)
    pid = rt.state(cid)["pid"]
    host_proc = _identity("/proc")
    held = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
            if _identity(f"/proc/{pid}/fd/{fd}") == host_proc}
    assert held == {}
    rt.run("start", cid)


def test_cwd_through_an_inherited_host_directory_is_refused(rt, short_tmp, busybox_rootfs_template,
                                                            cid):
    """A cwd of /proc/self/fd/3, fd 3 a directory of the host's handed down with
    --preserve-fds: chdir succeeds, to outside the container's root. getcwd says so and the
    container is refused before its program runs."""
    b = short_tmp / "bundle"
    make_bundle(b, busybox_rootfs_template, ["sh", "-c", "ls ..; echo escaped"],
                process={"cwd": "/proc/self/fd/3"})
    argv = rt.argv("run", "--preserve-fds", "1", "--bundle", str(b), cid)
    out = subprocess.run(["sh", "-c", f'exec 3<{short_tmp}; exec "$@"', "sh", *argv],
                         capture_output=True, timeout=30)
    assert out.returncode != 0
    assert b"escaped" not in out.stdout
    assert b"outside the container's root" in out.stderr, out.stderr
    subprocess.run(rt.argv("delete", "--force", cid), capture_output=True)
