"""libseccomp as an outside oracle for lowrt's seccomp compiler.

An OCI `linux.seccomp` object (the dict lowrt.seccomp.compile takes) is turned into
libseccomp calls the way runc 1.1 does it through libseccomp-golang, and libseccomp's BPF
program is exported; `RuncFilter.decide` then runs that program on a seccomp_data together
with the -ENOSYS stub runc prepends to it (libcontainer/seccomp/patchbpf), so the answer is
what a runc user's container gets, not only what libseccomp emits.

What runc does with a profile, reproduced here:
  - seccomp_init(default action), then seccomp_arch_add for every listed architecture (the
    native one is always in the filter);
  - one rule per syscall name: the name is resolved on the native arch (a name libseccomp does
    not know at all is skipped; one it knows but not natively resolves to a negative pseudo
    number that libseccomp translates per arch, or drops where the arch lacks it);
  - a rule whose action equals the default action is skipped;
  - no args: seccomp_rule_add; args: seccomp_rule_add_array with all conditions ANDed, unless
    one argument index appears twice, then one rule per condition;
  - MASKED_EQ passes (value, valueTwo) as (mask, datum), the other operators value alone;
  - ERRNO and TRACE carry errnoRet, EPERM when it is absent;
  - the -ENOSYS stub: unless the default action is ALLOW/LOG/TRACE or defaultErrnoRet is
    ENOSYS, for each listed architecture a syscall number above the largest one the profile
    names (as libseccomp numbers it on that arch) gets ENOSYS before libseccomp's filter
    runs; x86_64 and x32 share the audit arch and are told apart by bit 30 (jset), and on
    s390x and s390 syscall 0 (the multiplexer for "large" numbers) gets ENOSYS as well.

libseccomp.so.2 is loaded on first use; `load()` raises OracleUnavailable if it cannot be.
"""
from __future__ import annotations

import ctypes
import os
import struct
import sys

from tests.helpers import lowrt_seccomp_bpf as bpf

ENOSYS, EPERM = 38, 1
NR_SCMP_ERROR = -1
X32_BIT = 0x40000000

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def ACT_ERRNO(n: int) -> int:
    return 0x00050000 | (n & 0xFFFF)


def ACT_TRACE(n: int) -> int:
    return 0x7FF00000 | (n & 0xFFFF)


CMP = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# OCI architecture -> libseccomp's arch name (seccomp_arch_resolve_name)
ARCH_NAMES = {"SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
              "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_ARM": "arm",
              "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_PPC64LE": "ppc64le",
              "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_S390": "s390"}
# seccomp_attr_set attributes for the profile's flags (they change how the filter is
# loaded, not the program; set anyway so an unsupported one fails as it would under runc)
FLAG_ATTRS = {"SECCOMP_FILTER_FLAG_TSYNC": 4, "SECCOMP_FILTER_FLAG_LOG": 6,
              "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7}


class OracleUnavailable(Exception):
    """libseccomp.so.2 cannot be loaded here."""


class OracleError(Exception):
    """libseccomp refused the profile (runc would fail to start the container)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """libseccomp.so.2, with the prototypes the oracle uses (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise OracleUnavailable(f"libseccomp.so.2 cannot be loaded: {e}") from None
    vp, u32, i, ui = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint
    for name, res, args in [
        ("seccomp_init", vp, [u32]), ("seccomp_release", None, [vp]),
        ("seccomp_arch_add", i, [vp, u32]), ("seccomp_arch_remove", i, [vp, u32]),
        ("seccomp_arch_native", u32, []), ("seccomp_arch_resolve_name", u32, [ctypes.c_char_p]),
        ("seccomp_syscall_resolve_name_arch", i, [u32, ctypes.c_char_p]),
        ("seccomp_syscall_resolve_num_arch", vp, [u32, i]),
        ("seccomp_rule_add_array", i, [vp, u32, i, ui, ctypes.POINTER(_ArgCmp)]),
        ("seccomp_attr_set", i, [vp, i, u32]), ("seccomp_export_bpf", i, [vp, i]),
        ("seccomp_version", ctypes.POINTER(ctypes.c_uint * 3), []),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _lib = lib
    return lib


def version() -> str:
    """libseccomp's version, "2.5.4"."""
    major, minor, micro = load().seccomp_version().contents
    return f"{major}.{minor}.{micro}"


def arch_token(oci_arch: str) -> int:
    lib = load()
    token = lib.seccomp_arch_resolve_name(ARCH_NAMES[oci_arch].encode())
    if token == 0:
        raise OracleError(f"libseccomp does not know architecture {oci_arch}")
    return token


def resolve(token: int, name: str) -> int:
    """libseccomp's number for `name` on the arch `token`: a pseudo number (< -1) where the
    arch lacks it, NR_SCMP_ERROR where libseccomp does not know the name."""
    return load().seccomp_syscall_resolve_name_arch(token, name.encode())


def resolve_num(token: int, nr: int) -> str | None:
    """libseccomp's name for syscall `nr` on the arch `token`, None if it has none."""
    lib = load()
    p = lib.seccomp_syscall_resolve_num_arch(token, nr)
    if not p:
        return None
    try:
        return ctypes.string_at(p).decode()
    finally:
        _libc.free(ctypes.c_void_p(p))


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


def action(name: str, errno_ret: int | None) -> int:
    """runc's getAction."""
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return ACT_TRAP
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_LOG":
        return ACT_LOG
    if name == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if name == "SCMP_ACT_NOTIFY":
        return ACT_NOTIFY
    raise OracleError(f"unknown action {name!r}")


def _conditions(args: list[dict]) -> list[_ArgCmp]:
    out = []
    for a in args:
        op = a["op"]
        value, value_two = a.get("value") or 0, a.get("valueTwo") or 0
        if op == "SCMP_CMP_MASKED_EQ":
            out.append(_ArgCmp(a["index"], CMP[op], value, value_two))
        else:
            out.append(_ArgCmp(a["index"], CMP[op], value, 0))
    return out


BIG_ENDIAN = {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"}


def export(config: dict, arches: list[str] | None = None) -> bytes:
    """libseccomp's program for the profile, built as runc builds it (without the stub).

    arches: the architectures to build it for (default: the profile's). libseccomp keeps
    one byte order in a filter (seccomp_arch_add answers EDOM otherwise, and runc fails), so
    a profile listing s390x (or s390) is checked on a little-endian host by building its
    big-endian part alone: `arches` names those, and the native arch is then removed from the
    filter (what runc on an s390x host builds)."""
    lib = load()
    default = action(config["defaultAction"], config.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OracleError(f"seccomp_init({default:#x}) failed")
    try:
        native = lib.seccomp_arch_native()
        listed = config.get("architectures") or [] if arches is None else arches
        if arches is not None and native not in [arch_token(a) for a in arches]:
            rc = lib.seccomp_arch_remove(ctx, native)
            if rc < 0:
                raise OracleError(f"seccomp_arch_remove(native): {os.strerror(-rc)}")
        for a in listed:
            rc = lib.seccomp_arch_add(ctx, arch_token(a))
            if rc < 0 and rc != -17:  # -EEXIST: the native arch, already there
                raise OracleError(f"seccomp_arch_add({a}): {os.strerror(-rc)}")
        for flag in config.get("flags") or []:
            rc = lib.seccomp_attr_set(ctx, FLAG_ATTRS[flag], 1)
            if rc < 0:
                raise OracleError(f"seccomp_attr_set({flag}): {os.strerror(-rc)}")
        for i, rule in enumerate(config.get("syscalls") or []):
            act = action(rule["action"], rule.get("errnoRet"))
            if act == default:
                continue  # runc: "ignoring syscall ... action is the default action"
            conds = _conditions(rule.get("args") or [])
            indexes = [c.arg for c in conds]
            if len(set(indexes)) < len(indexes):
                groups = [[c] for c in conds]  # runc's fallback: one rule per condition
            else:
                groups = [conds]
            for name in rule["names"]:
                nr = lib.seccomp_syscall_resolve_name_arch(native, name.encode())
                if nr == NR_SCMP_ERROR:
                    continue  # runc: "unknown seccomp syscall ... ignored"
                for group in groups:
                    array = (_ArgCmp * max(1, len(group)))(*group)
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(group), array)
                    if rc < 0:
                        raise OracleError(f"syscalls[{i}] {name}: seccomp_rule_add_array: "
                                          f"{os.strerror(-rc)}")
        fd = os.memfd_create("libseccomp-oracle")
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise OracleError(f"seccomp_export_bpf: {os.strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            program = b"".join(chunks)
            if any(a in BIG_ENDIAN for a in listed) != (sys.byteorder == "big"):
                program = _from_foreign_order(program)
            return program
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _is_action(k: int) -> bool:
    return k in (ACT_KILL_PROCESS, ACT_KILL_THREAD, ACT_NOTIFY, ACT_LOG, ACT_ALLOW) or \
        k & 0xFFFF0000 in (ACT_TRAP, 0x00050000, 0x7FF00000)


def _from_foreign_order(program: bytes) -> bytes:
    """A program libseccomp wrote for a filter of the other byte order, in host order.

    libseccomp writes a program in its filter's byte order (under runc that is the host's,
    so runc never sees this path). In 2.5.4 some `ret` instructions of such a program come
    out unswapped (a deduplicated return block converted once too few); each `ret` is
    therefore taken in whichever order makes it a seccomp action."""
    out = []
    for i in range(0, len(program), 8):
        code, jt, jf, k = struct.unpack_from(">HBBI", program, i)
        if code == 0x06 and not _is_action(k):
            swapped = int.from_bytes(k.to_bytes(4, "big"), "little")
            if _is_action(swapped):
                k = swapped
        out.append(struct.pack("=HBBI", code, jt, jf, k))
    return b"".join(out)


def last_syscalls(config: dict) -> dict[str, int]:
    """runc's findLastSyscalls: per listed ABI (lowrt's arch names), the largest number
    libseccomp gives a name in the profile; empty where runc adds no stub."""
    if config.get("defaultErrnoRet") == ENOSYS:
        return {}
    if config["defaultAction"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        return {}
    out = {}
    for a in config.get("architectures") or []:
        token = arch_token(a)
        largest = 0
        for rule in config.get("syscalls") or []:
            for name in rule["names"]:
                nr = resolve(token, name)
                # ScmpSyscall is an int32: pseudo numbers (negative) never win
                if nr > largest:
                    largest = nr
        if largest:
            out[bpf.OCI_ARCH[a]] = largest
    return out


class RuncFilter:
    """The filter a runc 1.1 container gets for a profile: runc's -ENOSYS stub, then
    libseccomp's program."""

    def __init__(self, config: dict):
        listed = config.get("architectures") or []
        big = [a for a in listed if a in BIG_ENDIAN]
        little = [a for a in listed if a not in BIG_ENDIAN]
        # abi -> program; see export() for the byte orders
        self.programs: dict[str, bytes] = {}
        self.last = last_syscalls(config)
        if big and sys.byteorder == "little":
            program = export(config, big)
            for a in big:
                self.programs[bpf.OCI_ARCH[a]] = program
            config = {**config, "architectures": little}
        self.program = export(config)

    def defective(self, abi: str) -> bool:
        """Whether libseccomp's program compares syscall numbers for `abi` without loading one.

        libseccomp 2.5.4 sometimes emits an arch's section without its `ld [0]` (seen with
        pseudo-syscall rules, e.g. fcntl64 on aarch64, next to a native section whose code
        it shares), so that section compares the audit arch value as if it were the syscall
        number and every call gets the default action. A fault of that libseccomp, not a
        meaning to compare against."""
        program = self.programs.get(abi, self.program)
        insns = bpf._decode(program)
        audit = bpf.AUDIT[abi]
        pc = 1  # the arch dispatch: ld [4], then jeq #AUDIT_ARCH chained on false
        while pc < len(insns) and insns[pc][0] == 0x15:
            code, jt, jf, k = insns[pc]
            if k == audit:
                # a section starts by loading the number, or is one return (no rules)
                return insns[pc + 1 + jt][0] not in (0x20, 0x06)
            pc += 1 + jf
        return False

    def stub(self, abi: str, nr: int) -> int | None:
        """The stub's verdict for syscall `nr` of `abi`: ENOSYS, or None (on to the filter)."""
        nr &= 0xFFFFFFFF
        if abi in ("x86_64", "x32"):
            mine = "x32" if nr & X32_BIT else "x86_64"  # jset (1<<30)
            last = self.last.get(mine)
            return ACT_ERRNO(ENOSYS) if last is not None and nr > last else None
        last = self.last.get(abi)
        if last is None:
            return None
        if abi in ("s390x", "s390") and nr == 0:
            return ACT_ERRNO(ENOSYS)
        return ACT_ERRNO(ENOSYS) if nr > last else None

    def decide(self, abi: str, nr: int, args=()) -> int:
        big = abi in bpf.BIG_ENDIAN
        verdict = self.stub(abi, nr)
        if verdict is not None:
            return verdict
        program = self.programs.get(abi, self.program)
        return bpf.run(program, bpf.seccomp_data(nr, abi, args, big_endian=big),
                       big_endian=big)


def insn_count(program: bytes) -> int:
    return len(program) // struct.calcsize("=HBBI")
