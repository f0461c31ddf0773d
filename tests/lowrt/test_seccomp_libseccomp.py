"""lowrt's seccomp compiler held to libseccomp (Debian's libseccomp2) as an outside oracle.

Both programs, lowrt's and the one runc 1.1 would load (libseccomp's, behind runc's -ENOSYS
stub: tests/helpers/libseccomp_oracle.py), run on the BPF interpreter for every ABI in the
filter, syscall numbers across each ABI's table and argument values around every operand;
the test asserts they return the same action (errno and trace data included). The two
programs are laid out differently (libseccomp's priority-ordered if-chains, lowrt's binary
search), so only what they decide is compared.

Where the two differ by design, the difference is excluded here and named:
  - syscall tables: lowrt's come from newer kernel headers (and a list of calls added since)
    than Debian's libseccomp 2.5.4 knows, and a few names differ (ARM's sync_file_range2,
    which libseccomp calls arm_sync_file_range). A number whose name the two tables give
    differently is not compared, nor, where the profile's newest named call differs between
    the tables, the numbers between the two -ENOSYS boundaries runc and lowrt derive.
  - overlapping conditional rules: lowrt lets the first matching rule in the profile's order
    decide (tests/lowrt/test_seccomp_compile.py holds it to that); libseccomp orders a
    syscall's conditional rules in its own decision tree (in the cases seen: a rule on a
    higher argument index is tried first, EQ before a range on the same argument, a longer
    rule sharing a shorter one's conditions is dropped or refused), which a profile cannot
    state. Inputs where two conditional rules with different actions both match are not
    compared.
  - libseccomp 2.5.4 defects, which runc users on Debian 12 get and lowrt does not copy:
    (1) several conditional rules of one syscall that compare the same argument are merged
    into a tree that can lose one of them, so a call only that rule matches gets the
    default action (seen with LE and LT on one argument, and with NE in a rule next to a
    three-condition rule also testing it; libseccomp 2.6.1 fixes "incorrect 64-bit
    comparison merge that can weaken libseccomp filters", advisory GHSA-4q85-33p6-j5g6):
    such syscalls are left out of the generated profiles' comparison (docker's default,
    whose socket rules share argument 0, is compared in full and agrees);
    (2) an arch section emitted without loading the syscall number (see
    RuncFilter.defective): such a section is not compared, and the cases are counted.
  - syscall multiplexing: on x86, s390x, s390 and ppc64le libseccomp also turns a rule on a socket
    or SysV IPC call (socket, connect, shmget...) into a rule on socketcall/ipc with the call
    number in argument 0; lowrt filters the direct call only. The generated profiles name no
    such call; docker's default allows socketcall and ipc outright, so it agrees either way.
  - numbers outside every ABI's range (x86_64 numbers with bit 31 set, say) are not compared:
    runc's stub tells x86_64 from x32 by bit 30 alone, lowrt by the range the kernel uses.

BERTH_SECCOMP_DIFF_PROFILES raises the number of generated profiles (default 40) and
BERTH_SECCOMP_DIFF_SEED picks the seed (a failure names the seed and profile).
"""
from __future__ import annotations

import functools
import os
import random

import pytest

from engine import seccomp_profile
from engine.spec import DEFAULT_CAPS
from lowrt import seccomp
from lowrt.seccomp import compiler
from tests.helpers import lowrt_seccomp_bpf as bpf

from tests.helpers import libseccomp_oracle as oracle

try:
    oracle.load()
    UNAVAILABLE = ""
except oracle.OracleUnavailable as e:
    UNAVAILABLE = f"no oracle: {e}"

needs_oracle = pytest.mark.skipif(bool(UNAVAILABLE), reason=UNAVAILABLE or "-")

NATIVE = compiler.native_arch()
OCI = {v: k for k, v in bpf.OCI_ARCH.items()}
ABIS = list(OCI)
U64 = (1 << 64) - 1
PROFILES = int(os.environ.get("BERTH_SECCOMP_DIFF_PROFILES", "40"))
SEED = int(os.environ.get("BERTH_SECCOMP_DIFF_SEED", "20261207"))


def _base(abi: str) -> int:
    return compiler.X32_BIT if abi == "x32" else 0


@functools.cache
def agreed(abi: str) -> frozenset[int]:
    """The numbers of `abi` whose name(s) lowrt's table and libseccomp's agree on."""
    token = oracle.arch_token(OCI[abi])
    by_nr: dict[int, set[str]] = {}
    for name, nr in bpf.table(abi).items():
        by_nr.setdefault(nr, set()).add(name)
    out = set()
    for nr, names in by_nr.items():
        if all(oracle.resolve(token, n) == nr for n in names) and \
                oracle.resolve_num(token, nr) in names | {None}:
            out.add(nr)
    base = _base(abi)
    for nr in range(base, base + 1024):  # numbers neither table names
        if nr not in by_nr and oracle.resolve_num(token, nr) is None:
            out.add(nr)
    return frozenset(out)


def lowrt_top(config: dict, abi: str) -> int:
    table = bpf.table(abi)
    return max([table[n] for r in config.get("syscalls") or [] for n in r["names"]
                if n in table], default=-1)


def decide_lowrt(prog: bytes, abi: str, nr: int, args) -> int:
    big = abi in bpf.BIG_ENDIAN
    return bpf.run(prog, bpf.seccomp_data(nr, abi, args, big_endian=big), big_endian=big)


def operands(arg: dict) -> set[int]:
    """Argument values around one condition's operand: equal, one off either way, the other
    half changed, high bits set."""
    value, two = arg.get("value") or 0, arg.get("valueTwo") or 0
    out = {0, 1, U64, 0xFFFFFFFF, 1 << 32, 1 << 63}
    for v in ((two, value, value & two, two | (~value & U64)) if arg["op"] ==
              "SCMP_CMP_MASKED_EQ" else (value,)):
        out |= {v, v - 1, v + 1, v ^ (1 << 32), v | (1 << 63), v & 0xFFFFFFFF,
                v + (1 << 32), v - (1 << 32), (v >> 32) << 32, v ^ 1}
    return {v & U64 for v in out}


def arg_vectors(conditions: list[dict], rng: random.Random) -> list[tuple[int, ...]]:
    vectors = [(0,) * 6]
    by_index: dict[int, set[int]] = {}
    for c in conditions:
        by_index.setdefault(c["index"], set()).update(operands(c))
    for index, values in by_index.items():
        for v in sorted(values):
            args = [0] * 6
            args[index] = v
            vectors.append(tuple(args))
    pools = {i: sorted(v) for i, v in by_index.items()}
    for _ in range(40 if pools else 1):  # several conditions at once (rules AND them)
        args = [rng.getrandbits(64) if rng.random() < 0.2 else 0 for _ in range(6)]
        for i, pool in pools.items():
            args[i] = rng.choice(pool)
        vectors.append(tuple(args))
    return vectors


def shared_argument(config: dict, abi: str) -> set[int]:
    """The numbers of `abi` whose conditional rules (after runc's split) compare one
    argument in two rules: libseccomp 2.5.4's defect (1)."""
    table = bpf.table(abi)
    by_nr: dict[int, list[list[dict]]] = {}
    for rule in config.get("syscalls") or []:
        conds = rule.get("args") or []
        groups = ([[c] for c in conds] if len({c["index"] for c in conds}) < len(conds)
                  else [conds])
        for name in rule["names"]:
            if name in table and conds:
                by_nr.setdefault(table[name], []).extend(groups)
    out = set()
    for nr, groups in by_nr.items():
        seen: dict[int, list[str]] = {}
        for group in groups:
            for c in group:
                seen.setdefault(c["index"], []).append(c["op"])
        if any(len(ops) > 1 for ops in seen.values()):
            out.add(nr)
    return out


def compare(config: dict, numbers: dict[str, list[int]], rng: random.Random,
            where: str, skip_shared_argument: bool = False) -> int:
    """Run both filters on every (abi, nr) given and argument vectors for it; fails on the
    first difference; returns the number of inputs compared."""
    mine = seccomp.compile(config)
    theirs = oracle.RuncFilter(config)
    checked = 0
    for abi, nrs in numbers.items():
        if theirs.defective(abi):
            DEFECTS.append(f"{where}: {abi}")
            continue
        ok = agreed(abi)
        if skip_shared_argument:
            ok = ok - shared_argument(config, abi)
        table = bpf.table(abi)
        low, high = sorted((lowrt_top(config, abi), theirs.last.get(abi, -1)))
        conds_by_nr: dict[int, list[dict]] = {}
        for rule in config.get("syscalls") or []:
            for name in rule["names"]:
                if name in table:
                    conds_by_nr.setdefault(table[name], []).extend(rule.get("args") or [])
        for nr in sorted(set(nrs)):
            if nr not in ok:
                continue  # the tables disagree on this number's name
            if low != high and low < nr <= high and OCI[abi] in (
                    config.get("architectures") or []):
                continue  # between the two -ENOSYS boundaries (see the module docstring)
            for args in arg_vectors(conds_by_nr.get(nr, []), rng):
                if overlapping(config, abi, nr, args):
                    continue
                want = theirs.decide(abi, nr, args)
                got = decide_lowrt(mine, abi, nr, args)
                checked += 1
                if got != want:
                    pytest.fail(f"{where}: {abi} syscall {nr:#x} "
                                f"({bpf_name(abi, nr)}) args {[hex(a) for a in args]}: "
                                f"lowrt {got:#x}, libseccomp+runc {want:#x}\n"
                                f"profile: {config}")
    return checked


def overlapping(config: dict, abi: str, nr: int, args) -> bool:
    """Whether two conditional rules with different actions match this call and no
    unconditional rule decides it (see the module docstring)."""
    table = bpf.table(abi)
    default = oracle.action(config["defaultAction"], config.get("defaultErrnoRet"))
    matched = set()
    for rule in config.get("syscalls") or []:
        if not any(table.get(n) == nr for n in rule["names"]):
            continue
        act = oracle.action(rule["action"], rule.get("errnoRet"))
        if act == default:
            continue
        conds = rule.get("args") or []
        if not conds:
            return False
        groups = ([[c] for c in conds] if len({c["index"] for c in conds}) < len(conds)
                  else [conds])
        for group in groups:
            if all(bpf._holds(c["op"], args[c["index"]], c.get("value") or 0,
                              c.get("valueTwo") or 0, bpf.BITS[abi]) for c in group):
                matched.add(act)
    return len(matched) > 1


DEFECTS: list[str] = []  # libseccomp programs with a section that never loads the number


def bpf_name(abi: str, nr: int) -> str:
    return ",".join(n for n, v in bpf.table(abi).items() if v == nr) or "?"


def filter_abis(config: dict) -> list[str]:
    return list(dict.fromkeys([NATIVE] + [bpf.OCI_ARCH[a] for a in
                                          config.get("architectures") or []]))


def all_numbers(abi: str) -> list[int]:
    """Every number of the ABI's table, the gaps between them and a margin above."""
    values = bpf.table(abi).values()
    base = _base(abi)
    top = max(v for v in values if v < base + 0x10000)
    return sorted(set(range(base, top + 16)) | set(values))


# -- docker's default profile, as berthd builds it -------------------------------------

HOSTS = {
    "amd64": seccomp_profile.Host("amd64", "SCMP_ARCH_X86_64", (6, 18)),
    "arm64": seccomp_profile.Host("arm64", "SCMP_ARCH_AARCH64", (6, 18)),
    "ppc64le": seccomp_profile.Host("ppc64le", "SCMP_ARCH_PPC64LE", (6, 18)),
    "s390x": seccomp_profile.Host("s390x", "SCMP_ARCH_S390X", (6, 18)),
    "riscv64": seccomp_profile.Host("riscv64", "SCMP_ARCH_RISCV64", (6, 18)),
}
CAPS = {"default caps": list(DEFAULT_CAPS),
        "with CAP_SYS_ADMIN": list(DEFAULT_CAPS) + ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE",
                                                    "CAP_SYS_NICE"]}


@needs_oracle
@pytest.mark.parametrize("caps", list(CAPS))
@pytest.mark.parametrize("host", list(HOSTS))
def test_docker_default_profile_decides_as_libseccomp_and_runc(host, caps):
    config = seccomp_profile.to_oci(seccomp_profile.default_profile(), CAPS[caps],
                                    HOSTS[host])
    rng = random.Random(SEED)
    numbers = {abi: all_numbers(abi) for abi in filter_abis(config)}
    assert compare(config, numbers, rng, f"docker default on {host}, {caps}") > 1000


# -- generated profiles -----------------------------------------------------------------

ACTIONS = ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW"]
# calls most ABIs have, some with a 32-bit twin, some of one ABI only
NAMES = ["read", "write", "openat", "close", "mmap", "mmap2", "clone", "personality",
         "ioctl", "fchmod", "fcntl", "fcntl64", "prctl", "kill", "getpid", "futex",
         "epoll_wait", "open", "arch_prctl", "set_tls", "cacheflush", "riscv_flush_icache",
         "s390_runtime_instr", "clone3", "process_madvise", "memfd_secret", "getrandom",
         "mknodat", "setns", "unshare"]


def _value(rng: random.Random) -> int:
    return rng.choice([0, 1, 2, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, (1 << 32) + 5, U64,
                       1 << 63, rng.getrandbits(8), rng.getrandbits(32), rng.getrandbits(64)])


def _arg(rng: random.Random, index: int) -> dict:
    op = rng.choice(list(compiler.OPS))
    arg = {"index": index, "op": op, "value": _value(rng)}
    if op == "SCMP_CMP_MASKED_EQ":
        mask = arg["value"] or 0xFF
        arg["value"] = mask
        arg["valueTwo"] = mask & _value(rng) if rng.random() < 0.8 else _value(rng)
    return arg


def _errno(rng: random.Random) -> int | None:
    return rng.choice([None, 1, 13, 38, 22, 0, 4094])


def generate(rng: random.Random) -> dict:
    config: dict = {"defaultAction": rng.choice(ACTIONS)}
    if config["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") and rng.random() < 0.6:
        config["defaultErrnoRet"] = _errno(rng) or 1
    arches = rng.sample(ABIS, rng.randint(0, 4))
    if arches or rng.random() < 0.5:
        config["architectures"] = [OCI[a] for a in arches]
    rules = []
    for _ in range(rng.randint(1, 10)):
        rule: dict = {"names": rng.sample(NAMES, rng.randint(1, 3)),
                      "action": rng.choice(ACTIONS)}
        if rule["action"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
            errno = _errno(rng)
            if errno is not None:
                rule["errnoRet"] = errno
        n = rng.choice([0, 0, 1, 1, 2, 3])
        indexes = rng.sample(range(6), n)
        if n >= 2 and rng.random() < 0.25:
            indexes[1] = indexes[0]  # the same argument twice: runc's one-rule-per-condition
        if n:
            rule["args"] = [_arg(rng, i) for i in indexes]
        rules.append(rule)
    config["syscalls"] = rules
    return config


def _numbers(config: dict, rng: random.Random) -> dict[str, list[int]]:
    out = {}
    for abi in filter_abis(config):
        table = bpf.table(abi)
        named = [table[n] for r in config["syscalls"] for n in r["names"] if n in table]
        base = _base(abi)
        picks = set(named) | {nr + 1 for nr in named} | {nr - 1 for nr in named} | {base}
        top = lowrt_top(config, abi)
        picks |= {top + 1, top + 2, base + 1023}
        picks |= set(rng.sample(sorted(table.values()), 12))
        out[abi] = sorted(p for p in picks if p >= base)
    return out


@needs_oracle
def test_generated_profiles_decide_as_libseccomp_and_runc():
    rng = random.Random(SEED)
    checked = refused = 0
    for i in range(PROFILES):
        config = generate(rng)
        try:
            oracle.RuncFilter(config)
        except oracle.OracleError:
            refused += 1  # runc would not start such a container; nothing to compare
            continue
        checked += compare(config, _numbers(config, rng), rng,
                           f"seed {SEED}, profile {i}", skip_shared_argument=True)
    assert refused <= PROFILES // 4, f"libseccomp refused {refused} of {PROFILES} profiles"
    defects = [d for d in DEFECTS if d.startswith(f"seed {SEED},")]
    assert len(defects) <= PROFILES // 4, f"libseccomp sections without ld [0]: {defects}"
    assert checked > PROFILES * 100


# -- what the oracle found in lowrt, each kept fixed (no libseccomp needed) ----------------

def _decide(config: dict, abi: str, nr: int, args=()) -> int:
    return decide_lowrt(seccomp.compile(config), abi, nr, args)


def test_masked_eq_ignores_datum_bits_outside_the_mask():
    # libseccomp's MASKED_EQ compares the masked argument with the masked datum; lowrt
    # compared it with the datum as given, so a datum bit outside the mask made the rule
    # match nothing
    config = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 0xF0, "valueTwo": 0x1234_5FA5}]}]}
    nr = bpf.table(NATIVE)["getpid"]
    assert _decide(config, NATIVE, nr, (0, 0xA0)) == bpf.errno_ret(1)
    assert _decide(config, NATIVE, nr, (0, 0xAF)) == bpf.errno_ret(1)
    assert _decide(config, NATIVE, nr, (0, 0xB0)) == bpf.ALLOW
    for abi in ("x86", "arm", "s390x", "aarch64"):
        config["architectures"] = [OCI[abi]]
        nr = bpf.table(abi)["getpid"]
        assert _decide(config, abi, nr, (0, 0x1_0000_00A0)) == bpf.errno_ret(1), abi
        assert _decide(config, abi, nr, (0, 0x50)) == bpf.ALLOW, abi


def test_masked_eq_with_no_mask_bit_on_the_abi_makes_the_rule_unconditional():
    # a mask with only high bits tests nothing on a 32-bit ABI: libseccomp drops the
    # condition and the rule, now unconditional and first, decides the call there
    config = {"defaultAction": "SCMP_ACT_TRAP", "architectures": ["SCMP_ARCH_ARM"],
              "syscalls": [
                  {"names": ["futex"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [
                      {"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 1 << 63,
                       "valueTwo": 1 << 63}]},
                  {"names": ["futex"], "action": "SCMP_ACT_LOG"}]}
    arm, native = bpf.table("arm")["futex"], bpf.table(NATIVE)["futex"]
    assert _decide(config, "arm", arm) == bpf.errno_ret(38)
    # on a 64-bit ABI the mask tests bit 63: a conditional rule, and the plain one wins
    assert _decide(config, NATIVE, native, (1 << 63,)) == bpf.LOG
    assert _decide(config, NATIVE, native) == bpf.LOG


def test_s390x_hosts_get_docker_default_with_31_bit_s390():
    # docker's arch map puts s390 next to s390x; lowrt had no table for it and refused the
    # profile, so no container with the default profile started on an s390x host
    config = seccomp_profile.to_oci(seccomp_profile.default_profile(), list(DEFAULT_CAPS),
                                    HOSTS["s390x"])
    assert config["architectures"] == ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    s390 = bpf.table("s390")
    assert s390["socketcall"] == 102 and s390["exit"] == 1 and s390["cachestat"] == 451
    assert _decide(config, "s390", s390["read"]) == bpf.ALLOW
    assert _decide(config, "s390", s390["socketcall"]) == bpf.ALLOW
    assert _decide(config, "s390", s390["reboot"]) == bpf.errno_ret(1)
    assert _decide(config, "s390", 0) == bpf.errno_ret(38)
    assert _decide(config, "s390", 470) == bpf.errno_ret(38)
    assert _decide(config, "s390x", bpf.table("s390x")["read"]) == bpf.ALLOW


def test_s390x_syscall_zero_gets_enosys_like_runc():
    # s390x passes numbers too large for the svc instruction through syscall 0; runc's stub
    # answers ENOSYS there as for any number above the profile's newest call
    config = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_S390X"],
              "syscalls": [{"names": ["exit", "read", "openat"], "action": "SCMP_ACT_ALLOW"}]}
    assert _decide(config, "s390x", 0) == bpf.errno_ret(38)
    assert _decide(config, "s390x", bpf.table("s390x")["exit"]) == bpf.ALLOW
    assert _decide(config, "s390x", 2) == bpf.errno_ret(1)  # a gap below the newest call
    # no stub where the default allows, as runc
    config["defaultAction"] = "SCMP_ACT_ALLOW"
    config["syscalls"][0]["action"] = "SCMP_ACT_KILL"
    assert _decide(config, "s390x", 0) == bpf.ALLOW


def test_no_enosys_range_when_the_newest_named_call_is_number_zero():
    # runc looks for the largest number above 0: a profile naming only read (0 on x86_64)
    # gets no stub there, so write keeps the default action rather than ENOSYS
    config = {"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    assert _decide(config, "x86_64", 1) == bpf.KILL_THREAD
    assert _decide(config, "x86_64", 0) == bpf.KILL_PROCESS
    config["syscalls"][0]["names"] = ["write"]
    assert _decide(config, "x86_64", 2) == bpf.errno_ret(38)


def test_riscv64_table_has_the_64_bit_call_names():
    # riscv's headers size longs by __SIZEOF_POINTER__; without it the table held the
    # 32-bit names, and docker's default denied fcntl, mmap, lseek, fstat... on riscv64
    table = bpf.table("riscv64")
    assert {n: table.get(n) for n in ("fcntl", "mmap", "lseek", "fstat", "newfstatat",
                                      "statfs", "fadvise64", "sendfile", "truncate")} == {
        "fcntl": 25, "mmap": 222, "lseek": 62, "fstat": 80, "newfstatat": 79, "statfs": 43,
        "fadvise64": 223, "sendfile": 71, "truncate": 45}
    assert not {"fcntl64", "mmap2", "llseek", "fstat64", "statfs64"} & set(table)
    config = seccomp_profile.to_oci(seccomp_profile.default_profile(), list(DEFAULT_CAPS),
                                    HOSTS["riscv64"])
    for name in ("fcntl", "mmap", "lseek", "fstat"):
        assert _decide(config, "riscv64", table[name]) == bpf.ALLOW, name


def test_arm_table_holds_no_header_constants():
    assert not {"BASE", "SYSCALL_MASK"} & set(bpf.table("arm"))
    assert bpf.table("arm")["cacheflush"] == 0xF0002


NEWER = {"cachestat": 451, "fchmodat2": 452, "futex_wake": 454, "futex_wait": 455,
         "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
         "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "removexattrat": 466,
         "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469}


@pytest.mark.parametrize("abi", ABIS)
def test_tables_know_calls_newer_than_the_headers(abi):
    # the headers are Linux 6.1's; containers run on newer kernels, and docker's default
    # allows calls since added (fchmodat2, which glibc 2.39 uses, cachestat, mseal...)
    table = bpf.table(abi)
    base = _base(abi)
    assert {n: table.get(n) for n in NEWER} == {n: nr + base for n, nr in NEWER.items()}
    assert ("map_shadow_stack" in table) == (abi != "x32")
    assert table.get("memfd_secret", 447 + base) == 447 + base


def test_docker_default_allows_newer_calls_instead_of_enosys():
    config = seccomp_profile.to_oci(seccomp_profile.default_profile(), list(DEFAULT_CAPS),
                                    HOSTS["amd64"])
    table = bpf.table("x86_64")
    for name in ("fchmodat2", "cachestat", "futex_wait", "mseal", "listmount", "getxattrat"):
        assert _decide(config, "x86_64", table[name]) == bpf.ALLOW, name
    assert _decide(config, "x86_64", table["uretprobe"]) == bpf.ALLOW
    assert _decide(config, "x86_64", 470) == bpf.errno_ret(38)  # newer than the profile


@pytest.mark.parametrize("errno", [4095, 4096, 0xFFFF])
def test_errno_at_or_above_max_errno_is_refused(errno):
    # the kernel clamps SECCOMP_RET_ERRNO data to MAX_ERRNO; libseccomp refuses such an
    # action, so runc fails to start the container: lowrt refuses too, naming the value
    for config in ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno},
                   {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                       {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]}):
        with pytest.raises(seccomp.SeccompError, match=f"errnoRet {errno} .*MAX_ERRNO"):
            seccomp.compile(config)
    assert _decide({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4094}, NATIVE,
                   0) == bpf.errno_ret(4094)
