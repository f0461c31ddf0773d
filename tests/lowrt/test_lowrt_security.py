"""Safety: seccomp, no fd of lowrt's reaching the container, a non-dumpable runtime, ids."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.helpers.lowrt_env import make_bundle

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                 # with an argument condition: personality(0xffffffff) (a query) is refused
                 {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                  "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}],
}


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_profile_applies(rt, probe, probe_rootfs, short_tmp, cid, nnp):
    seen = probe(linux={"seccomp": DENY_MKDIR}, process={"noNewPrivileges": nnp})
    assert seen["seccomp"] == 2 and seen["no_new_privs"] == int(nnp)
    b = short_tmp / "mk"
    make_bundle(b, probe_rootfs, ["sh", "-c", "mkdir /tmp/x && echo made"], root={"readonly": False},
                linux={"seccomp": DENY_MKDIR}, process={"noNewPrivileges": nnp})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"Operation not permitted" in out.stderr


def test_invalid_seccomp_profile_is_refused(rt, bundle, cid):
    b = bundle(["true"], linux={"seccomp": {"defaultAction": "SCMP_ACT_BOGUS"}})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"seccomp" in out.stderr and not (rt.root / cid).exists()


def test_no_fd_of_the_caller_reaches_the_container(rt, probe_rootfs, short_tmp, cid):
    b = short_tmp / "b"
    make_bundle(b, probe_rootfs, ["/probe"])
    secret = short_tmp / "secret"
    secret.write_text("x")
    # fds 3..5 open in lowrt's caller (not close-on-exec), none asked to be preserved
    out = subprocess.run(["sh", "-c", f'exec 3<{secret} 4<{secret} 5<{secret}; exec "$@"', "sh",
                          *rt.argv("run", "-b", str(b), cid)], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)["fds"]) == {"0", "1", "2"}


def test_a_created_containers_init_holds_no_fd_of_lowrts_or_its_callers(rt, bundle, short_tmp,
                                                                          cid):
    # the init is in the container from `create` on (an exec'd process may look at it):
    # it holds its stdio, the exec FIFO, its pipes to lowrt and a handle on /proc, nothing else
    b = bundle(["true"])
    secret = short_tmp / "secret"
    secret.write_text("x")
    with open(short_tmp / "err", "w+b") as err:   # a file: the init keeps its stdio open
        out = subprocess.run(["sh", "-c", f'exec 3<{secret} 4<{secret}; exec "$@"', "sh",
                              *rt.argv("create", "-b", str(b), cid)],
                             stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=30)
        assert out.returncode == 0, (short_tmp / "err").read_text()
    pid = json.loads(rt.run("state", cid).stdout)["pid"]
    assert unexpected_fds(pid) == {}
    rt.run("delete", "--force", cid)


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def unexpected_fds(pid: int) -> dict[str, str]:
    """The fds above stdio that a created container's init should not hold. Its own root and
    the host's /proc (its way to the exec FIFO) are expected; they are told from a leaked
    handle by what they open, not by name: seen from the host, a handle on the container's
    root, on the host's root and on a proc mount of another mount namespace all read "/"."""
    expected = {_identity(f"/proc/{pid}/root"), _identity("/proc")}
    unexpected = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = f"/proc/{pid}/fd/{fd}"
        target = os.readlink(link)
        if int(fd) <= 2 or target.endswith("/exec.fifo") or target.startswith("pipe:"):
            continue
        if _identity(link) not in expected:
            unexpected[fd] = target
    return unexpected


def test_fd_check_tells_a_handle_on_the_hosts_root_from_the_containers(busybox_rootfs):
    # chrooted into a rootfs and holding the host's /, which reads "/" as its own root would
    host_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = subprocess.Popen(["chroot", str(busybox_rootfs), "sleep", "30"], pass_fds=(host_root,))
    finally:
        os.close(host_root)
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{p.pid}/root") != "/":
                break
            time.sleep(0.05)
        assert os.readlink(f"/proc/{p.pid}/fd/{host_root}") == "/"
        assert unexpected_fds(p.pid) == {str(host_root): "/"}
    finally:
        p.kill()
        p.wait()


def test_preserve_fds_and_listen_fds(rt, probe_rootfs, short_tmp, cid):
    b = short_tmp / "b"
    make_bundle(b, probe_rootfs, ["/probe"])
    secret = short_tmp / "secret"
    secret.write_text("x")
    env = dict(os.environ, LISTEN_FDS="1")
    out = subprocess.run(["sh", "-c", f'exec 3<{secret} 4<{secret} 5<{secret}; exec "$@"', "sh",
                          *rt.argv("run", "--preserve-fds", "1", "-b", str(b), cid)],
                         capture_output=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert set(seen["fds"]) == {"0", "1", "2", "3", "4"}  # LISTEN_FDS's one, then one preserved
    # (the path as seen from the host's root: it ends with ours even when we run chrooted)
    assert seen["fds"]["3"].endswith(str(secret)) and seen["fds"]["4"].endswith(str(secret))
    assert "LISTEN_FDS=1" in seen["env"] and "LISTEN_PID=1" in seen["env"]


def test_preserve_fds_that_are_not_open_is_an_error(rt, bundle, cid):
    b = bundle(["true"])
    out = rt.run("run", "--preserve-fds", "5", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"preserved-fd" in out.stderr and not (rt.root / cid).exists()


def test_runtime_is_not_dumpable_inside_the_container(rt, bundle, cid):
    """Until exec, the init is lowrt's Python: the container must not reach its binary or
    memory through /proc (CVE-2019-5736's way in)."""
    b = bundle(["sleep", "30"])
    rt.run("create", "-b", str(b), cid)
    before = rt.run("exec", cid, "sh", "-c", "readlink /proc/1/exe; cat /proc/1/environ", check=False)
    assert b"Permission denied" in before.stderr and b"python" not in before.stdout
    rt.run("start", cid)
    deadline = time.monotonic() + 20
    while rt.run("exec", cid, "readlink", "/proc/1/exe", check=False).stdout.strip() != b"/bin/busybox":
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "x y", "caf\u00e9", "../escape", "a\nb"])
def test_invalid_ids_are_refused(rt, bundle, bad):
    b = bundle(["true"])
    out = rt.run("create", "-b", str(b), "--", bad, check=False)
    assert out.returncode == 1 and b"invalid container id" in out.stderr
    assert not any(rt.root.iterdir()) if rt.root.exists() else True


def test_duplicate_id_is_refused_and_the_first_container_is_untouched(rt, bundle, cid):
    b = bundle(["sleep", "30"])
    rt.run("create", "-b", str(b), cid)
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"container with id exists" in out.stderr
    assert rt.state(cid)["status"] == "created"
