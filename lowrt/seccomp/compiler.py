"""OCI linux.seccomp -> classic BPF (struct sock_filter array), with no libseccomp.

Layout of the program:

    ld  arch                      ; seccomp_data.arch
    jeq AUDIT_ARCH_A -> section A ; one per audit arch in the filter
    ...
    ret KILL_THREAD               ; an arch not in the filter (libseccomp's bad-arch action)
  section:
    ld  nr
    binary search over nr         ; the whole u32 range cut into intervals, each with one
                                  ; outcome: a return, or a block of argument checks

x32 shares x86_64's audit arch and numbers its calls from __X32_SYSCALL_BIT (1 << 30), so
both ABIs live in one section as two halves of the range; a half whose ABI is not in the
filter is "bad arch". As runc does, calls numbered above the highest one the profile names
get ENOSYS instead of the default action (so that a libc probing a syscall newer than the
profile, clone3 say, falls back), unless the default allows, logs or traces, or already
returns ENOSYS; on s390x and s390 so does syscall 0, through which the kernel passes numbers too large
for the svc instruction.

Rules for one syscall follow what runc and libseccomp make of a profile: a rule whose action
is the default action is dropped (runc skips it); the first unconditional rule decides the
syscall outright (libseccomp lets it replace the conditional rules before it and ignores
every rule after it); otherwise the conditional rules are tried in the order given, first
match wins, then the default action. The conditions of one rule must all hold, except that
a rule naming the same argument twice becomes one rule per condition (runc's fallback for
libseccomp, which cannot AND two conditions on one argument). 64-bit comparisons are done
on the two 32-bit halves, high half first; 32-bit ABIs compare the low half only, as
libseccomp does. MASKED_EQ compares the masked argument with the masked value, and one whose
mask has no bit the ABI compares always holds: it is dropped, and a rule left without
conditions is unconditional on that ABI (libseccomp's reading, checked against it by
tests/lowrt/test_seccomp_libseccomp.py).

The program is emitted back to front: every jump then goes to code already placed, so its
offset is known, and a target beyond the 8-bit reach of a conditional jump is reached through
a `ja` (or a fresh `ret`) placed right after it.
"""
from __future__ import annotations

import importlib
import os
import struct

ENOSYS, EPERM = 38, 1
MAX_ERRNO = 4095

# struct sock_filter opcodes
LD_W_ABS = 0x20
ALU_AND_K = 0x54
JA = 0x05
JEQ_K, JGT_K, JGE_K = 0x15, 0x25, 0x35
RET_K = 0x06
BPF_MAXINSNS = 4096

# seccomp return values
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

# OCI architecture name -> table module
ARCHES = {
    "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_S390": "s390",
}
# Architectures libseccomp knows that lowrt has no table for.
KNOWN_UNSUPPORTED = {
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
}
NATIVE = {"x86_64": "x86_64", "i686": "x86", "i386": "x86", "aarch64": "aarch64",
          "armv7l": "arm", "armv8l": "arm", "riscv64": "riscv64", "ppc64le": "ppc64le",
          "s390x": "s390x"}
X32_BIT = 0x40000000
U32 = 1 << 32

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}

OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")


class SeccompError(Exception):
    """A seccomp profile that cannot be compiled; the message names the field and value."""


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


def action(name: object, errno_ret: object, where: str) -> int:
    """An OCI action name (with its errnoRet) as the seccomp return value."""
    if errno_ret is not None and (isinstance(errno_ret, bool) or not isinstance(errno_ret, int)
                                  or not 0 <= errno_ret <= 0xFFFF):
        raise SeccompError(f"{where}: errnoRet {errno_ret!r} is not an errno number")
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return RET_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return RET_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return RET_TRAP
    if name == "SCMP_ACT_ERRNO":
        if errno_ret is not None and errno_ret >= MAX_ERRNO:
            # the kernel would clamp it to MAX_ERRNO, and libseccomp (so runc) refuses it
            raise SeccompError(f"{where}: errnoRet {errno_ret} is not below the kernel's "
                               f"MAX_ERRNO ({MAX_ERRNO})")
        return RET_ERRNO | (EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return RET_TRACE | (EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_LOG":
        return RET_LOG
    if name == "SCMP_ACT_ALLOW":
        return RET_ALLOW
    if name == "SCMP_ACT_NOTIFY":
        raise SeccompError(f"{where}: SCMP_ACT_NOTIFY (seccomp user notification) is not "
                           "supported by lowrt")
    raise SeccompError(f"{where}: unknown seccomp action {name!r}")


def flags(config: dict) -> int:
    """The seccomp(2) flags a profile asks for."""
    out = 0
    for name in config.get("flags") or []:
        if name == "SECCOMP_FILTER_FLAG_NEW_LISTENER":
            raise SeccompError("linux.seccomp.flags: SECCOMP_FILTER_FLAG_NEW_LISTENER (user "
                               "notification) is not supported by lowrt")
        if name not in FLAGS:
            raise SeccompError(f"linux.seccomp.flags: unknown flag {name!r}")
        out |= FLAGS[name]
    return out


class Arch:
    """One ABI's table: its audit arch, word size, byte order and syscall numbers."""

    def __init__(self, name: str):
        table = importlib.import_module(f"lowrt.seccomp.table_{name}")
        self.name = name
        self.audit = table.AUDIT_ARCH
        self.bits = table.BITS
        self.big_endian = table.BYTE_ORDER == "big"
        self.syscalls: dict[str, int] = table.SYSCALLS
        self.lo, self.hi = {"x86_64": (0, X32_BIT), "x32": (X32_BIT, U32)}.get(name, (0, U32))

    def arg_offsets(self, index: int) -> tuple[int, int]:
        """(offset of the high half, offset of the low half) of seccomp_data.args[index]."""
        base = 16 + 8 * index
        return (base, base + 4) if self.big_endian else (base + 4, base)


_arch_cache: dict[str, Arch] = {}


def arch(name: str) -> Arch:
    if name not in _arch_cache:
        _arch_cache[name] = Arch(name)
    return _arch_cache[name]


def native_arch() -> str:
    machine = os.uname().machine
    try:
        return NATIVE[machine]
    except KeyError:
        raise SeccompError(f"no seccomp syscall table for this machine ({machine})") from None


class Condition:
    __slots__ = ("index", "op", "value", "value_two")

    def __init__(self, index: int, op: str, value: int, value_two: int):
        self.index, self.op, self.value, self.value_two = index, op, value, value_two


class Rule:
    __slots__ = ("nr_names", "action", "conditions")

    def __init__(self, names: list[str], action: int, conditions: list[Condition]):
        self.nr_names = names
        self.action = action
        self.conditions = conditions


def _parse_arg(arg: object, where: str) -> Condition:
    if not isinstance(arg, dict):
        raise SeccompError(f"{where}: expected an object, got {arg!r}")
    index = arg.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
        raise SeccompError(f"{where}: index {index!r} must be 0 to 5")
    op = arg.get("op")
    if op not in OPS:
        raise SeccompError(f"{where}: unknown comparison operator {op!r}")
    values = []
    for key in ("value", "valueTwo"):
        v = arg.get(key) or 0
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 64:
            raise SeccompError(f"{where}: {key} {v!r} must be an unsigned 64-bit number")
        values.append(v)
    return Condition(index, op, values[0], values[1])


def parse(config: dict) -> tuple[int, list[str], list[Rule], set[str]]:
    """Validate a profile: (default action, ABI names, rules, the ABIs that get the ENOSYS
    range)."""
    if not isinstance(config, dict):
        raise SeccompError(f"linux.seccomp: expected an object, got {config!r}")
    if config.get("listenerPath"):
        raise SeccompError("linux.seccomp.listenerPath: seccomp user notification is not "
                           "supported by lowrt")
    if "defaultAction" not in config:
        raise SeccompError("linux.seccomp.defaultAction is required")
    default_errno = config.get("defaultErrnoRet")
    default = action(config["defaultAction"], default_errno, "linux.seccomp.defaultAction")
    names = []
    listed = []
    for a in config.get("architectures") or []:
        if a in ARCHES:
            listed.append(ARCHES[a])
        elif a in KNOWN_UNSUPPORTED:
            raise SeccompError(f"linux.seccomp.architectures: {a} has no syscall table in "
                               f"lowrt (it has: {', '.join(sorted(ARCHES))})")
        else:
            raise SeccompError(f"linux.seccomp.architectures: unknown architecture {a!r}")
    # The native ABI is always in the filter, as libseccomp's filters always hold it.
    for name in [native_arch()] + listed:
        if name not in names:
            names.append(name)
    rules = []
    for i, entry in enumerate(config.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(entry, dict):
            raise SeccompError(f"{where}: expected an object, got {entry!r}")
        syscall_names = entry.get("names")
        if not isinstance(syscall_names, list) or not syscall_names or not all(
                isinstance(n, str) and n for n in syscall_names):
            raise SeccompError(f"{where}: names must be a non-empty list of syscall names")
        act = action(entry.get("action"), entry.get("errnoRet"), f"{where}.action")
        conds = [_parse_arg(a, f"{where}.args[{j}]")
                 for j, a in enumerate(entry.get("args") or [])]
        if len({c.index for c in conds}) < len(conds):
            rules.extend(Rule(syscall_names, act, [c]) for c in conds)
        else:
            rules.append(Rule(syscall_names, act, conds))
    default_kind = config["defaultAction"]
    enosys = default_kind not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE") and not (
        default_kind == "SCMP_ACT_ERRNO" and default_errno == ENOSYS)
    # runc stubs ENOSYS only for the architectures the profile lists
    return default, names, rules, set(listed) if enosys else set()


class _Asm:
    """A back-to-front assembler. A label is the number of instructions emitted so far right
    after its instruction was emitted; a jump emitted when `n` are placed reaches label L with
    offset n - L."""

    def __init__(self):
        self.rev: list[tuple[int, int, int, int]] = []
        self.rets: dict[int, int] = {}

    def here(self) -> int:
        return len(self.rev)

    def _put(self, code: int, jt: int, jf: int, k: int) -> int:
        self.rev.append((code, jt, jf, _u32(k)))
        return len(self.rev)

    def stmt(self, code: int, k: int = 0) -> int:
        return self._put(code, 0, 0, k)

    def ret(self, value: int) -> int:
        label = self._put(RET_K, 0, 0, value)
        self.rets[value] = label
        return label

    def resolve(self, target, reach: int) -> int:
        """A label for target no further than `reach` from the next instruction; a target is
        a label (int) or ("ret", value)."""
        if isinstance(target, tuple):
            label = self.rets.get(target[1])
            if label is None or self.here() - label > reach:
                label = self.ret(target[1])
            return label
        if self.here() - target > reach:
            return self._put(JA, 0, 0, self.here() - target)
        return target

    def jump(self, code: int, k: int, true, false) -> int:
        # 254, not 255: placing the other target's trampoline may add one in between
        lt = self.resolve(true, 254)
        lf = self.resolve(false, 254)
        return self._put(code, self.here() - lt, self.here() - lf, k)

    def program(self) -> bytes:
        pack = struct.Struct("=HBBI").pack
        return b"".join(pack(*insn) for insn in reversed(self.rev))


def _condition(asm: _Asm, abi: Arch, c: Condition, passed, failed) -> int:
    """Emit one argument comparison; returns its label."""
    hi_off, lo_off = abi.arg_offsets(c.index)
    if c.op == "SCMP_CMP_MASKED_EQ":
        # the masked argument against the masked datum, as libseccomp defines the operator:
        # a datum bit outside the mask does not make the condition impossible
        mask, value = c.value, c.value_two & c.value
    else:
        mask, value = None, c.value
    vh, vl = value >> 32, _u32(value)
    # The low half: the last comparison, deciding pass or fail.
    low = {
        "SCMP_CMP_EQ": (JEQ_K, passed, failed), "SCMP_CMP_NE": (JEQ_K, failed, passed),
        "SCMP_CMP_GT": (JGT_K, passed, failed), "SCMP_CMP_GE": (JGE_K, passed, failed),
        "SCMP_CMP_LT": (JGE_K, failed, passed), "SCMP_CMP_LE": (JGT_K, failed, passed),
        "SCMP_CMP_MASKED_EQ": (JEQ_K, passed, failed),
    }[c.op]
    asm.jump(low[0], vl, low[1], low[2])
    if mask is not None:
        asm.stmt(ALU_AND_K, _u32(mask))
    label = asm.stmt(LD_W_ABS, lo_off)
    if abi.bits == 32:
        return label
    # The high half first: equal goes on to the low half, otherwise it decides alone.
    if c.op in ("SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"):
        asm.jump(JEQ_K, vh, label, failed)
    elif c.op == "SCMP_CMP_NE":
        asm.jump(JEQ_K, vh, label, passed)
    else:
        above, below = ((passed, failed) if c.op in ("SCMP_CMP_GT", "SCMP_CMP_GE")
                        else (failed, passed))
        eq = asm.jump(JEQ_K, vh, label, below)
        asm.jump(JGT_K, vh, above, eq)
    if mask is not None:
        asm.stmt(ALU_AND_K, mask >> 32)
    return asm.stmt(LD_W_ABS, hi_off)


def _syscall_block(asm: _Asm, abi: Arch, conditional: list[Rule], fallback: int) -> int:
    """Argument-checking rules for one syscall, then the fallback return."""
    nxt = ("ret", fallback)
    for rule in reversed(conditional):
        target = ("ret", rule.action)
        for c in reversed(rule.conditions):
            target = _condition(asm, abi, c, target, nxt)
        nxt = target
    return asm.resolve(nxt, 255)


def _search(asm: _Asm, intervals: list[tuple[int, object]]):
    """Binary search over [(start, outcome)], intervals sorted and covering the range;
    returns a jump target."""
    if len(intervals) == 1:
        outcome = intervals[0][1]
        if isinstance(outcome, int):
            return ("ret", outcome)
        return outcome(asm)
    mid = len(intervals) // 2
    right = _search(asm, intervals[mid:])
    left = _search(asm, intervals[:mid])
    return asm.jump(JGE_K, intervals[mid][0], right, left)


def _outcome(abi: Arch, nr_rules: list[Rule], default: int):
    """A syscall's outcome: its return value, or a function that emits its argument checks."""
    for r in nr_rules:
        if not r.conditions:
            return r.action
    return lambda asm: _syscall_block(asm, abi, nr_rules, default)


def _always(c: Condition, abi: Arch) -> bool:
    """A condition no argument can fail on this ABI: MASKED_EQ whose mask has no bit in the
    part of the argument the ABI compares."""
    return c.op == "SCMP_CMP_MASKED_EQ" and (c.value if abi.bits == 64 else _u32(c.value)) == 0


def _on_abi(rule: Rule, abi: Arch) -> Rule:
    """The rule as it stands on one ABI: conditions that always hold are dropped, so a rule
    made of them only is unconditional there (and, as libseccomp has it, decides the call
    if it comes first)."""
    kept = [c for c in rule.conditions if not _always(c, abi)]
    if len(kept) == len(rule.conditions):
        return rule
    return Rule(rule.nr_names, rule.action, kept)


def _section(asm: _Asm, abis: list[Arch], default: int, rules: list[Rule], enosys: set[str],
             debug: list[str] | None) -> int:
    """The code for one audit arch (one or, on x86_64 with x32, two ABIs)."""
    cuts: dict[int, object] = {0: RET_KILL_THREAD}  # start -> outcome; bad arch until an ABI claims
    for abi in abis:
        table = abi.syscalls
        by_nr: dict[int, list[Rule]] = {}
        top = -1  # the newest syscall the profile names, whatever its rule does
        for rule in rules:
            rule = _on_abi(rule, abi)
            for name in rule.nr_names:
                nr = table.get(name)
                if nr is None:
                    if debug is not None:
                        debug.append(f"seccomp: syscall {name!r} is unknown on {abi.name}, "
                                     "skipped")
                    continue
                if nr > top:
                    top = nr
                if rule.action == default:
                    continue
                same = by_nr.get(nr)
                if same is None:
                    by_nr[nr] = [rule]
                else:
                    same.append(rule)
        cuts[abi.lo] = default
        for nr, nr_rules in by_nr.items():
            if len(nr_rules) == 1 and not nr_rules[0].conditions:
                cuts[nr] = nr_rules[0].action  # the common case: a plain rule
            else:
                cuts[nr] = _outcome(abi, nr_rules, default)
            if nr + 1 < abi.hi and nr + 1 not in cuts:
                cuts[nr + 1] = default
        # top 0 counts as none, as in runc (whose largest-syscall search starts from 0)
        if abi.name in enosys and top > 0 and top + 1 < abi.hi:
            cuts[top + 1] = RET_ERRNO | ENOSYS
            if abi.name in ("s390x", "s390"):
                # s390's syscall 0 is the kernel's way in for numbers too large for the svc
                # instruction; one the kernel does not know stays 0, so runc answers ENOSYS
                # for it too (or libc would see EPERM for a call newer than the profile)
                cuts[0] = RET_ERRNO | ENOSYS
                if 1 not in cuts:
                    cuts[1] = default
        if abi.hi < U32 and abi.hi not in cuts:
            cuts[abi.hi] = RET_KILL_THREAD
    intervals: list[tuple[int, object]] = []
    for start in sorted(cuts):
        outcome = cuts[start]
        if intervals and isinstance(outcome, int) and outcome == intervals[-1][1]:
            continue  # same return as the interval before: merge
        intervals.append((start, outcome))
    target = _search(asm, intervals)
    asm.resolve(target, 0)
    return asm.stmt(LD_W_ABS, 0)


def compile(config: dict, debug: list[str] | None = None) -> bytes:
    """Compile an OCI linux.seccomp object to a classic BPF program for seccomp(2).

    Unknown syscall names are skipped (as libseccomp and runc skip them); if `debug` is a
    list, a note for each is appended to it.
    """
    default, names, rules, enosys = parse(config)
    by_audit: dict[int, list[Arch]] = {}
    for name in names:
        abi = arch(name)
        by_audit.setdefault(abi.audit, []).append(abi)
    asm = _Asm()
    sections = []
    for audit, abis in reversed(list(by_audit.items())):
        sections.append((audit, _section(asm, abis, default, rules, enosys, debug)))
    nxt = ("ret", RET_KILL_THREAD)  # an arch not in the filter
    for audit, label in sections:  # already reversed: the first arch ends up first
        nxt = asm.jump(JEQ_K, audit, label, nxt)
    asm.resolve(nxt, 0)
    asm.stmt(LD_W_ABS, 4)
    if asm.here() > BPF_MAXINSNS:
        raise SeccompError(f"linux.seccomp: the filter needs {asm.here()} BPF instructions, "
                           f"more than the kernel's limit of {BPF_MAXINSNS}")
    return asm.program()

