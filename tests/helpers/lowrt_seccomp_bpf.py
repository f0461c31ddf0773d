"""For the seccomp tests: a classic-BPF interpreter over a synthetic seccomp_data, a
disassembler, an independent reference of what a profile decides, and the conversion of a
docker/podman profile file (archMap, includes/excludes) to an OCI linux.seccomp object."""
from __future__ import annotations

import functools
import importlib
import struct

AUDIT = {"x86_64": 0xC000003E, "x32": 0xC000003E, "x86": 0x40000003, "aarch64": 0xC00000B7,
         "arm": 0x40000028, "riscv64": 0xC00000F3, "ppc64le": 0xC0000015, "s390x": 0x80000016,
         "s390": 0x00000016}
OCI_ARCH = {"SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
            "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_ARM": "arm",
            "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_PPC64LE": "ppc64le",
            "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_S390": "s390"}
ALLOW, KILL_THREAD, KILL_PROCESS, TRAP, LOG = 0x7FFF0000, 0, 0x80000000, 0x30000, 0x7FFC0000


def errno_ret(e: int) -> int:
    return 0x50000 | e


def table(arch: str) -> dict[str, int]:
    return importlib.import_module(f"lowrt.seccomp.table_{arch}").SYSCALLS


def seccomp_data(nr: int, arch: str, args=(0, 0, 0, 0, 0, 0), big_endian: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    args = list(args) + [0] * (6 - len(args))
    return struct.pack(f"{order}iIQ6Q", nr if nr < 1 << 31 else nr - (1 << 32), AUDIT[arch],
                       0x1000, *args)


@functools.lru_cache(maxsize=64)
def _decode(prog: bytes) -> tuple[tuple[int, int, int, int], ...]:
    """The instructions of a program, decoded once (the differential tests run one program
    on thousands of inputs)."""
    insns = tuple(struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8))
    assert 0 < len(insns) <= 4096
    return insns


def run(prog: bytes, data: bytes, big_endian: bool = False) -> int:
    """Execute a seccomp cBPF program on seccomp_data; returns the filter's return value.
    big_endian: the data is a big-endian kernel's (its loads read big-endian words)."""
    word = ">I" if big_endian else "<I"
    insns = _decode(prog)
    acc = 0
    pc = 0
    while True:
        assert 0 <= pc < len(insns), "fell off the program"
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            assert k % 4 == 0 and k + 4 <= len(data), f"bad load offset {k}"
            acc = struct.unpack_from(word, data, k)[0]
        elif code == 0x54:  # and #k
            acc &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):
            cond = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if cond else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} is not expected in a seccomp filter")


_JUMPS = {0x15: "jeq", 0x25: "jgt", 0x35: "jge", 0x45: "jset"}


def disassemble(prog: bytes) -> list[str]:
    out = []
    for i in range(0, len(prog), 8):
        code, jt, jf, k = struct.unpack_from("=HBBI", prog, i)
        n = i // 8
        if code == 0x20:
            out.append(f"ld [{k}]")
        elif code == 0x54:
            out.append(f"and #{k:#x}")
        elif code == 0x05:
            out.append(f"ja {n + 1 + k}")
        elif code in _JUMPS:
            out.append(f"{_JUMPS[code]} #{k:#x}, {n + 1 + jt}, {n + 1 + jf}")
        elif code == 0x06:
            out.append(f"ret #{k:#x}")
        else:
            out.append(f"?? {code:#x}")
    return out


# -- the reference: the documented semantics, evaluated directly ------------------------

def _action(name, errno):
    return {
        "SCMP_ACT_ALLOW": ALLOW, "SCMP_ACT_KILL": KILL_THREAD, "SCMP_ACT_KILL_THREAD": KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": KILL_PROCESS, "SCMP_ACT_TRAP": TRAP, "SCMP_ACT_LOG": LOG,
        "SCMP_ACT_ERRNO": errno_ret(1 if errno is None else errno),
        "SCMP_ACT_TRACE": 0x7FF00000 | (1 if errno is None else errno),
    }[name]


def _holds(op, arg, value, value_two, bits):
    if bits == 32:
        arg, value, value_two = arg & 0xFFFFFFFF, value & 0xFFFFFFFF, value_two & 0xFFFFFFFF
    return {
        "SCMP_CMP_EQ": arg == value, "SCMP_CMP_NE": arg != value, "SCMP_CMP_LT": arg < value,
        "SCMP_CMP_LE": arg <= value, "SCMP_CMP_GT": arg > value, "SCMP_CMP_GE": arg >= value,
        "SCMP_CMP_MASKED_EQ": arg & value == value_two & value,  # both masked
    }[op]


BITS = {"x86_64": 64, "x32": 32, "x86": 32, "aarch64": 64, "arm": 32, "riscv64": 64,
        "ppc64le": 64, "s390x": 64, "s390": 32}
BIG_ENDIAN = {"s390x", "s390"}  # ABIs whose seccomp_data is big-endian


def reference(config: dict, native: str, abi: str | None, nr: int, args=()) -> int:
    """What the profile decides for syscall `nr` of ABI `abi` (None: an arch not in it)."""
    args = list(args) + [0] * (6 - len(args))
    listed = [OCI_ARCH[a] for a in config.get("architectures") or []]
    abis = {native, *listed}
    if abi not in abis:
        return KILL_THREAD
    default = _action(config["defaultAction"], config.get("defaultErrnoRet"))
    names = table(abi)
    matching = []
    for r in config.get("syscalls") or []:
        if not any(names.get(n) == nr for n in r["names"]):
            continue
        act = _action(r["action"], r.get("errnoRet"))
        if act == default:
            continue  # runc drops rules that do what the default does
        conds = r.get("args") or []
        if len({a["index"] for a in conds}) < len(conds):  # runc: one rule per condition
            groups = [[a] for a in conds]
        else:
            groups = [conds]
        for group in groups:
            # a MASKED_EQ whose mask has no bit this ABI compares always holds: libseccomp
            # drops it, and a rule left without conditions is unconditional
            mask = (1 << BITS[abi]) - 1
            matching.append((act, [a for a in group if not (
                a["op"] == "SCMP_CMP_MASKED_EQ" and a.get("value", 0) & mask == 0)]))
    for act, conds in matching:  # the first unconditional rule decides outright
        if not conds:
            return act
    for act, conds in matching:
        if all(_holds(a["op"], args[a["index"]], a.get("value", 0), a.get("valueTwo", 0),
                      BITS[abi]) for a in conds):
            return act
    known = [names[n] for r in config.get("syscalls") or [] for n in r["names"] if n in names]
    enosys = (abi in listed and config["defaultAction"] not in
              ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
              and config.get("defaultErrnoRet") != 38)
    if enosys and known and max(known) > 0 and nr > max(known):  # runc: 0 counts as none
        return errno_ret(38)
    return default


# -- docker/podman profile files ---------------------------------------------------------

def profile_to_oci(profile: dict, go_arch: str = "amd64", caps: set[str] = frozenset()) -> dict:
    """What docker/podman hand the runtime: arches from archMap, rules filtered by
    includes/excludes for this architecture and capability set."""
    native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[go_arch]
    arches = []
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == native:
            arches = [native] + entry.get("subArchitectures", [])

    def applies(rule):
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and go_arch not in inc["arches"]:
            return False
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            return False
        if exc.get("arches") and go_arch in exc["arches"]:
            return False
        if exc.get("caps") and set(exc["caps"]) & caps:
            return False
        return True

    out = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": []}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for rule in profile.get("syscalls") or []:
        if applies(rule):
            r = {"names": rule["names"], "action": rule["action"]}
            for key in ("args", "errnoRet"):
                if rule.get(key):
                    r[key] = rule[key]
            out["syscalls"].append(r)
    return out
