"""Compiled filters installed for real: a forked child loads one and reports what the
kernel then does to its syscalls."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys
import threading

import pytest

from lowrt import seccomp
from lowrt.seccomp import compiler
from tests.helpers.lowrt_seccomp_bpf import profile_to_oci, table

pytestmark = pytest.mark.skipif(compiler.native_arch() != "x86_64",
                                reason="syscall numbers below are x86_64's")
NR = table("x86_64")
PODMAN_PROFILE = "/usr/share/containers/seccomp.json"
libc = ctypes.CDLL(None, use_errno=True)


def raw_syscall(nr, *args):
    """(return value, errno) of a raw syscall."""
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args))
    return ret, ctypes.get_errno()


def in_child(config, body, flags=0, before=None):
    """Fork; the child installs the compiled filter, then runs body() and sends back its
    JSON-able result. Returns (result or None, wait status, /proc/<pid>/status lines)."""
    program = seccomp.compile(config)
    results_r, results_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(results_r)
            os.close(go_w)
            if before:
                before()
            seccomp.install(program, flags)
            os.write(results_w, b"installed\n")
            os.read(go_r, 1)  # wait while the parent reads our status
            out = json.dumps(body()).encode()
            os.write(results_w, out)
            os._exit(0)
        except BaseException as err:  # report, never return into pytest
            try:
                os.write(results_w, json.dumps({"child error": repr(err)}).encode())
            finally:
                os._exit(1)
    os.close(results_w)
    os.close(go_r)
    with os.fdopen(results_r, "rb") as r:
        first = r.readline()
        status = []
        if first == b"installed\n":
            with open(f"/proc/{pid}/status") as f:
                status = [ln.strip() for ln in f if ln.startswith("Seccomp")]
            os.write(go_w, b"g")
        os.close(go_w)
        data = r.read()
    _, wstatus = os.waitpid(pid, 0)
    result = json.loads(data or (first if first != b"installed\n" else b"null"))
    return result, wstatus, status


ALLOW_ALL = {"defaultAction": "SCMP_ACT_ALLOW"}


def test_mkdir_denied_with_eperm_and_status_shows_mode_2(short_tmp):
    config = {**ALLOW_ALL, "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}

    def body():
        out = {}
        try:
            os.mkdir(short_tmp / "denied")
            out["mkdir"] = "ok"
        except OSError as err:
            out["mkdir"] = err.errno
        (short_tmp / "file").write_text("still allowed")
        out["write"] = (short_tmp / "file").read_text()
        return out

    result, wstatus, status = in_child(config, body)
    assert result == {"mkdir": errno.EPERM, "write": "still allowed"}
    assert os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == 0
    assert "Seccomp:\t2".replace("\t", "") in [s.replace("\t", "") for s in status]
    assert not (short_tmp / "denied").exists()


def test_getpid_denied_only_when_its_argument_matches():
    config = {**ALLOW_ALL, "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 0, "value": 0x1234, "op": "SCMP_CMP_EQ"}]},
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTTY,
         "args": [{"index": 1, "value": 0x1_0000_0005, "op": "SCMP_CMP_EQ"}]}]}

    def body():
        return {"match": raw_syscall(NR["getpid"], 0x1234),
                "other": raw_syscall(NR["getpid"], 0x1235)[0] == os.getpid(),
                "64 match": raw_syscall(NR["getppid"], 0, 0x1_0000_0005),
                "low half only": raw_syscall(NR["getppid"], 0, 5)[0] == os.getppid(),
                "high half only": raw_syscall(NR["getppid"], 0, 0x1_0000_0000)[0] > 0}

    result, _, _ = in_child(config, body)
    assert result == {"match": [-1, errno.EXDEV], "other": True,
                      "64 match": [-1, errno.ENOTTY], "low half only": True,
                      "high half only": True}


def test_uname_kills_the_process():
    config = {**ALLOW_ALL, "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    result, wstatus, status = in_child(config, lambda: os.uname().sysname)
    assert result is None
    assert os.WIFSIGNALED(wstatus) and os.WTERMSIG(wstatus) == signal.SIGSYS
    assert any(s.replace("\t", "") == "Seccomp:2" for s in status)


def test_tsync_filters_every_thread(short_tmp):
    config = {**ALLOW_ALL, "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    flags = seccomp.flags({"flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                     "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    holder = {}

    def start_thread():
        gate = threading.Event()

        def other():
            gate.wait()
            try:
                os.mkdir(short_tmp / "from-thread")
                holder["thread"] = "ok"
            except OSError as err:
                holder["thread"] = err.errno
        holder["t"] = threading.Thread(target=other)
        holder["t"].start()
        holder["gate"] = gate

    def body():
        holder["gate"].set()
        holder["t"].join()
        return holder["thread"]

    result, _, _ = in_child(config, body, flags=flags, before=start_thread)
    assert result == errno.EPERM


def test_calls_newer_than_the_profile_get_enosys():
    names = [n for n, nr in NR.items() if nr < NR["futex_waitv"] and n != "mkdir"]
    config = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                           {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": errno.EROFS}]}

    def body():
        return {"futex_waitv": raw_syscall(NR["futex_waitv"], 0, 0, 0, 0, 0),
                "mkdir": raw_syscall(NR["mkdir"], 0, 0)}

    result, _, _ = in_child(config, body)
    assert result == {"futex_waitv": [-1, errno.ENOSYS], "mkdir": [-1, errno.EROFS]}


@pytest.mark.skipif(not os.path.exists(PODMAN_PROFILE), reason="no containers-common profile")
def test_a_real_default_profile_lets_a_shell_run():
    with open(PODMAN_PROFILE) as f:
        config = profile_to_oci(json.load(f), "amd64", {"CAP_CHOWN", "CAP_KILL"})

    def body():
        return {"add_key": raw_syscall(NR["add_key"], 0, 0, 0, 0, 0),
                "pid": raw_syscall(NR["getpid"])[0] == os.getpid()}

    result, wstatus, status = in_child(config, body)
    assert result == {"add_key": [-1, errno.ENOSYS], "pid": True}
    assert any(s.replace("\t", "") == "Seccomp:2" for s in status)
    assert os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == 0


class _NoImports:
    """A meta path finder that refuses every import not already made: what a child that
    dropped to uid 65534 meets when the checkout sits under a 0700 /root."""

    def find_spec(self, name, path=None, target=None):
        raise ImportError(f"{name}: the checkout is out of this user's reach")


def test_installing_without_privilege_fails_clearly_from_a_checkout_the_user_cannot_read():
    # The installing code is imported before the drop (as lowrt's init preloads it): a
    # fresh Debian root with the checkout in /root failed here with ModuleNotFoundError.
    import lowrt.linux.seccomp  # noqa: F401

    def drop():
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        sys.meta_path.insert(0, _NoImports())

    result, wstatus, _ = in_child(ALLOW_ALL, lambda: "unreachable", before=drop)
    assert os.WEXITSTATUS(wstatus) == 1
    assert "seccomp set filter" in result["child error"]
    assert "permission denied" in result["child error"]
