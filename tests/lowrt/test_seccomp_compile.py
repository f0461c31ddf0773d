"""The seccomp BPF compiler, run on a BPF interpreter against synthetic seccomp_data and held
to an independent reference of the profile's meaning."""
from __future__ import annotations

import json
import os
import random

import pytest

from lowrt import seccomp
from lowrt.seccomp import compiler
from tests.helpers.lowrt_seccomp_bpf import (
    ALLOW, KILL_PROCESS, KILL_THREAD, LOG, TRAP, disassemble, errno_ret, profile_to_oci,
    reference, run, seccomp_data, table)

NATIVE = compiler.native_arch()
X64 = table("x86_64")
X86 = table("x86")
X32 = table("x32")
needs_x86_64 = pytest.mark.skipif(NATIVE != "x86_64", reason="x86_64 host layout")
PODMAN_PROFILE = "/usr/share/containers/seccomp.json"


def decide(prog, nr, arch="x86_64", args=()):
    return run(prog, seccomp_data(nr, arch, args))


@needs_x86_64
def test_allow_and_deny_by_name_with_errno_values():
    prog = seccomp.compile({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["uname"], "action": "SCMP_ACT_KILL"},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
        ]})
    assert decide(prog, X64["mkdir"]) == errno_ret(1)
    assert decide(prog, X64["rmdir"]) == errno_ret(1)
    assert decide(prog, X64["chmod"]) == errno_ret(13)
    assert decide(prog, X64["uname"]) == KILL_THREAD
    assert decide(prog, X64["reboot"]) == KILL_PROCESS
    assert decide(prog, X64["sync"]) == TRAP
    assert decide(prog, X64["getppid"]) == LOG
    assert decide(prog, X64["ptrace"]) == 0x7FF00005
    for name in ("read", "write", "openat", "exit_group", "clone3"):
        assert decide(prog, X64[name]) == ALLOW
    assert decide(prog, 0x3FFFFFFF) == ALLOW
    # x32's half of the range is "bad arch" when x32 is not in the filter, -1 included
    # (libseccomp's jge __X32_SYSCALL_BIT check does the same)
    assert decide(prog, 0xFFFFFFFF) == KILL_THREAD


@needs_x86_64
@pytest.mark.parametrize("default, errno, want", [
    ("SCMP_ACT_ERRNO", None, errno_ret(1)), ("SCMP_ACT_ERRNO", 22, errno_ret(22)),
    ("SCMP_ACT_KILL_PROCESS", None, KILL_PROCESS), ("SCMP_ACT_TRAP", None, TRAP),
    ("SCMP_ACT_LOG", None, LOG), ("SCMP_ACT_KILL_THREAD", None, KILL_THREAD),
])
def test_default_action_applies_to_what_no_rule_names(default, errno, want):
    config = {"defaultAction": default, "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
    if errno is not None:
        config["defaultErrnoRet"] = errno
    prog = seccomp.compile(config)
    assert decide(prog, X64["read"]) == ALLOW
    assert decide(prog, X64["openat"]) == want
    assert decide(prog, X64["close"]) == want


OPS = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
VALUES = [0, 1, 0xFFFFFFFF, 0x100000000, 0x1_0000_0005, 0x7_FFFF_FFFF, 0xDEAD_BEEF_0000_0010,
          2**64 - 1]


def _probes(value):
    """Arguments around value: each half one below, equal and one above."""
    hi, lo = value >> 32, value & 0xFFFFFFFF
    his = {h & 0xFFFFFFFF for h in (hi - 1, hi, hi + 1, 0, 0xFFFFFFFF)}
    los = {v & 0xFFFFFFFF for v in (lo - 1, lo, lo + 1, 0, 0xFFFFFFFF)}
    return sorted(h << 32 | v for h in his for v in los)


@needs_x86_64
@pytest.mark.parametrize("op", OPS)
def test_64bit_argument_comparisons_split_into_halves(op):
    for value in VALUES:
        value_two = value ^ 0x0000_0004_0000_0001 if op == "SCMP_CMP_MASKED_EQ" else 0
        if op == "SCMP_CMP_MASKED_EQ":
            value_two &= value
        config = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
             "args": [{"index": 3, "value": value, "valueTwo": value_two, "op": op}]}]}
        prog = seccomp.compile(config)
        for arg in _probes(value) + _probes(value_two):
            args = (7, 7, 7, arg, 7, 7)
            assert decide(prog, X64["getpid"], args=args) == reference(
                config, NATIVE, "x86_64", X64["getpid"], args), (op, hex(value), hex(arg))


@needs_x86_64
def test_32bit_abi_compares_the_low_half_only():
    config = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
              "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    prog = seccomp.compile(config)
    nr = X86["personality"]
    assert run(prog, seccomp_data(nr, "x86", (8,))) == errno_ret(1)
    assert run(prog, seccomp_data(nr, "x86", (0x5_0000_0008,))) == errno_ret(1)
    assert run(prog, seccomp_data(nr, "x86", (9,))) == ALLOW
    # on x86_64 the full 64 bits count
    assert decide(prog, X64["personality"], args=(0x5_0000_0008,)) == ALLOW
    assert decide(prog, X64["personality"], args=(8,)) == errno_ret(1)


@needs_x86_64
def test_several_conditions_and_rules_for_one_syscall():
    config = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
    ]}
    prog = seccomp.compile(config)
    sock = X64["socket"]
    assert decide(prog, sock, args=(16, 3, 9)) == errno_ret(22)
    assert decide(prog, sock, args=(16, 3, 0)) == ALLOW
    assert decide(prog, sock, args=(2, 1, 9)) == ALLOW
    assert decide(prog, X64["clone"], args=(0x11,)) == ALLOW
    assert decide(prog, X64["clone"], args=(0x10000000 | 0x11,)) == errno_ret(1)
    # the unconditional rule decides write outright; the conditional one after it is
    # ignored, as libseccomp ignores it
    assert decide(prog, X64["write"], args=(2,)) == ALLOW


@needs_x86_64
def test_rule_merging_follows_runc_and_libseccomp():
    config = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        # an unconditional rule replaces the conditional rules before it
        {"names": ["read"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        # a rule with the default action is dropped, so it cannot shadow a later one
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["write"], "action": "SCMP_ACT_LOG"},
        # two conditions on one argument: runc adds one rule per condition (OR)
        {"names": ["close"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
        # on different arguments they must all hold (AND)
        {"names": ["dup2"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
    ]}
    prog = seccomp.compile(config)
    assert decide(prog, X64["read"], args=(3,)) == ALLOW
    assert decide(prog, X64["write"]) == LOG
    assert decide(prog, X64["close"], args=(1,)) == ALLOW
    assert decide(prog, X64["close"], args=(2,)) == ALLOW
    assert decide(prog, X64["close"], args=(3,)) == errno_ret(1)
    assert decide(prog, X64["dup2"], args=(1, 2)) == ALLOW
    assert decide(prog, X64["dup2"], args=(1, 3)) == errno_ret(1)


@needs_x86_64
def test_arch_check_comes_first_and_x32_is_told_apart_by_its_bit():
    config = {"defaultAction": "SCMP_ACT_ALLOW",
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    prog = seccomp.compile(config)
    assert disassemble(prog)[0] == "ld [4]"
    assert decide(prog, X64["mkdir"]) == errno_ret(1)
    assert decide(prog, X32["mkdir"], "x32") == errno_ret(1)
    assert decide(prog, X32["read"], "x32") == ALLOW
    assert decide(prog, X86["mkdir"], "x86") == KILL_THREAD   # x86 is not in this filter
    assert decide(prog, X64["mkdir"], "aarch64") == KILL_THREAD
    no_x32 = seccomp.compile({**config, "architectures": ["SCMP_ARCH_X86_64"]})
    assert decide(no_x32, X32["read"], "x32") == KILL_THREAD
    assert decide(no_x32, X64["read"]) == ALLOW


def test_other_architectures_use_their_own_numbers():
    config = {"defaultAction": "SCMP_ACT_ALLOW",
              "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_S390X"],
              "syscalls": [{"names": ["openat", "cacheflush"], "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 1, "value": 1 << 40, "op": "SCMP_CMP_GE"}]}]}
    prog = seccomp.compile(config)
    for abi in ("aarch64", "arm"):
        for name in ("openat", "cacheflush"):
            nr = table(abi).get(name)
            if nr is None:
                continue
            for arg in (0, 1 << 40, 1 << 41):
                args = (0, arg)
                assert run(prog, seccomp_data(nr, abi, args)) == reference(
                    config, NATIVE, abi, nr, args), (abi, name, arg)
    nr = table("s390x")["openat"]
    # a big-endian kernel's seccomp_data holds the high half of an argument first
    assert run(prog, seccomp_data(nr, "s390x", (0, 1 << 41), big_endian=True),
               big_endian=True) == errno_ret(1)
    assert run(prog, seccomp_data(nr, "s390x", (0, 1 << 39), big_endian=True),
               big_endian=True) == ALLOW


@needs_x86_64
def test_calls_newer_than_the_profile_get_enosys_as_under_runc():
    config = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": ["read", "mkdir"], "action": "SCMP_ACT_ALLOW"}]}
    prog = seccomp.compile(config)
    assert decide(prog, X64["write"]) == errno_ret(1)   # below the newest named: EPERM
    assert decide(prog, X64["mkdir"] + 1) == errno_ret(38)
    assert decide(prog, X64["clone3"]) == errno_ret(38)      # above it: ENOSYS
    assert decide(prog, 0x3FFFFFFF) == errno_ret(38)
    for variant in ({"defaultAction": "SCMP_ACT_ALLOW"}, {"defaultErrnoRet": 38},
                    {"architectures": []}):
        prog = seccomp.compile({**config, **variant})
        assert decide(prog, X64["clone3"]) == reference({**config, **variant}, NATIVE,
                                                        "x86_64", X64["clone3"])
        assert decide(prog, X64["clone3"]) != errno_ret(38) or variant == {
            "defaultErrnoRet": 38}


@needs_x86_64
def test_unknown_names_are_skipped_with_a_note():
    notes = []
    prog = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": [
        {"names": ["no_such_call", "newfstatat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]},
        debug=notes)
    assert decide(prog, X64["mkdir"]) == errno_ret(1)
    assert decide(prog, X64["newfstatat"]) == errno_ret(1)
    assert any("no_such_call" in n and "x86_64" in n for n in notes)
    assert any("newfstatat" in n and "on x86," in n for n in notes)  # x86 has fstatat64


@pytest.mark.parametrize("config, words", [
    ({}, "defaultAction is required"),
    ({"defaultAction": "SCMP_ACT_SOMETIMES"}, "unknown seccomp action 'SCMP_ACT_SOMETIMES'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]},
     "SCMP_ARCH_MIPS has no syscall table"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}, "SCMP_ACT_NOTIFY"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}, "listenerPath"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
     r"syscalls\[0\]: names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, r"args\[0\]: index 6"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]}, "SCMP_CMP_SIMILAR"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}, "unsigned 64-bit"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM"}, "errnoRet 'EPERM'"),
])
def test_bad_profiles_are_refused_naming_what_is_wrong(config, words):
    with pytest.raises(seccomp.SeccompError, match=words):
        seccomp.compile(config)


def test_flags():
    assert seccomp.flags({}) == 0
    assert seccomp.flags({"flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}) == 7
    with pytest.raises(seccomp.SeccompError, match="NEW_LISTENER"):
        seccomp.flags({"flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]})
    with pytest.raises(seccomp.SeccompError, match="unknown flag 'FLAG_X'"):
        seccomp.flags({"flags": ["FLAG_X"]})


def _random_profile(rng, abis, n_rules):
    names = sorted(set(table("x86_64")) | set(table("x86")))
    actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG",
               "SCMP_ACT_TRAP"]
    syscalls = []
    for _ in range(n_rules):
        rule = {"names": rng.sample(names, rng.randint(1, 6)), "action": rng.choice(actions)}
        if rule["action"] == "SCMP_ACT_ERRNO" and rng.random() < 0.5:
            rule["errnoRet"] = rng.randint(1, 200)
        if rng.random() < 0.4:
            rule["args"] = [{"index": rng.randint(0, 5), "op": rng.choice(OPS),
                             "value": rng.choice(VALUES + [rng.getrandbits(64)]),
                             "valueTwo": rng.choice([0, 1, rng.getrandbits(64)])}
                            for _ in range(rng.randint(1, 3))]
        syscalls.append(rule)
    return {"defaultAction": rng.choice(actions[:3]), "architectures": abis,
            "syscalls": syscalls}


@needs_x86_64
@pytest.mark.parametrize("seed", range(12))
def test_random_profiles_agree_with_the_reference(seed):
    rng = random.Random(seed)
    abis = rng.choice([[], ["SCMP_ARCH_X86_64"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                  "SCMP_ARCH_X32"]])
    # big profiles force far jumps through trampolines
    config = _random_profile(rng, abis, rng.choice([5, 40, 300]))
    prog = seccomp.compile(config)
    for abi in ("x86_64", "x86", "x32"):
        nrs = sorted(set(table(abi).values()))
        for nr in rng.sample(nrs, 60) + [nrs[0], nrs[-1] + 1, nrs[-1] + 1000]:
            args = tuple(rng.choice(VALUES + [rng.getrandbits(64), rng.getrandbits(32)])
                         for _ in range(6))
            got = run(prog, seccomp_data(nr, abi, args))
            assert got == reference(config, NATIVE, abi, nr, args), (seed, abi, nr)


@needs_x86_64
def test_long_programs_reach_far_targets():
    names = sorted(X64)
    config = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": [n], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 0, "value": i, "op": "SCMP_CMP_NE"},
                                     {"index": 1, "value": i << 33, "op": "SCMP_CMP_LT"}]}
                           for i, n in enumerate(names)]}
    prog = seccomp.compile(config)
    assert len(prog) // 8 > 3000
    assert any(line.startswith("ja ") for line in disassemble(prog))
    for i, n in enumerate(names):
        for args in ((i, 0), (i + 1, 0), (i + 1, i << 33), (i + 1, max(0, (i << 33) - 1))):
            assert decide(prog, X64[n], args=args) == reference(
                config, NATIVE, "x86_64", X64[n], args)


@pytest.mark.skipif(not os.path.exists(PODMAN_PROFILE), reason="no containers-common profile")
@needs_x86_64
def test_a_real_default_profile_compiles_and_decides_as_written():
    with open(PODMAN_PROFILE) as f:
        profile = json.load(f)
    config = profile_to_oci(profile, "amd64", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"})
    assert len(config["syscalls"]) > 20
    prog = seccomp.compile(config)
    assert len(prog) // 8 < 1500
    rng = random.Random(1)
    for abi in ("x86_64", "x86", "x32"):
        nrs = sorted(set(table(abi).values()))
        for nr in nrs:
            args = tuple(rng.choice([0, 9, 16, 1 << 40]) for _ in range(6))
            assert run(prog, seccomp_data(nr, abi, args)) == reference(
                config, NATIVE, abi, nr, args), (abi, nr)
    assert decide(prog, X64["read"]) == ALLOW
    assert decide(prog, X64["add_key"]) == errno_ret(38)  # not named: its defaultErrnoRet


def test_program_header_disassembly():
    prog = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    if NATIVE != "x86_64":
        pytest.skip("x86_64 numbers")
    mkdir = X64["mkdir"]
    # intervals: [0, mkdir) allow, mkdir errno, (mkdir, x32 bit) allow, x32 half bad arch
    assert disassemble(prog) == [
        "ld [4]",
        "jeq #0xc000003e, 2, 8",
        "ld [0]",
        f"jge #{mkdir + 1:#x}, 6, 4",
        f"jge #{mkdir:#x}, 5, 7",
        "ret #0x50001",
        "jge #0x40000000, 8, 7",
        "ret #0x7fff0000",
        "ret #0x0",
    ]
