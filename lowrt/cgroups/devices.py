"""The device cgroup: OCI device rules as v1 devices.allow/deny lines, or as a v2 eBPF program.

Semantics shared by both: rules are read in order and the last one that matches a request
decides. A rule of type "a" with wildcard major and minor and access "rwm" resets the state:
it allows or denies everything, and earlier rules no longer matter. With no such rule the
starting state is "allow everything" (what a new v1 cgroup inherits from the root). An allow
rule matches a request when it grants every access bit requested; a deny rule matches when
it names any of them (denying "w" must stop an open for "rw").
"""
from __future__ import annotations

from lowrt.cgroups.fs import CgroupError

# runc's default allow list, appended after the config's own rules as runc does: mknod of
# anything, and the standard nodes every container gets (/dev/null, zero, full, tty, random,
# urandom, ptmx, pts/*, console, net/tun).
DEFAULT_RULES = (
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
)

# bpf_cgroup_dev_ctx.access_type: device type in the low 16 bits, access in the high 16
BPF_DEVCG_DEV = {"b": 1, "c": 2}
BPF_DEVCG_ACC = {"m": 1, "r": 2, "w": 4}


class Rule:
    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str, major: int | None, minor: int | None,
                 access: str):
        self.allow, self.type, self.major, self.minor = allow, type, major, minor
        self.access = "".join(c for c in "rwm" if c in access)

    @property
    def resets(self) -> bool:
        """Whether this rule allows or denies every device (and so forgets earlier rules)."""
        return (self.type == "a" and self.major is None and self.minor is None
                and self.access == "rwm")

    def v1_line(self) -> str:
        major = "*" if self.major is None else self.major
        minor = "*" if self.minor is None else self.minor
        return f"{self.type} {major}:{minor} {self.access}"

    def __repr__(self) -> str:
        return f"{'allow' if self.allow else 'deny'} {self.v1_line()}"


def parse_rules(devices: list, defaults: bool = True) -> list[Rule]:
    """Validate OCI linux.resources.devices entries; runc's defaults follow when asked."""
    if not isinstance(devices, list):
        raise CgroupError(f"linux.resources.devices: expected a list, got {devices!r}")
    rules = []
    for i, d in enumerate(list(devices) + (list(DEFAULT_RULES) if defaults else [])):
        where = f"linux.resources.devices[{i}]"
        if not isinstance(d, dict):
            raise CgroupError(f"{where}: expected an object, got {d!r}")
        allow = d.get("allow")
        if not isinstance(allow, bool):
            raise CgroupError(f"{where}: allow must be true or false, got {allow!r}")
        dtype = d.get("type") or "a"
        if dtype not in ("a", "b", "c"):
            raise CgroupError(f"{where}: invalid cgroup device type {dtype!r} (want a, b or c)")
        access = d.get("access")
        if not access or not isinstance(access, str) or set(access) - set("rwm"):
            raise CgroupError(f"{where}: device access {access!r} must be letters of \"rwm\"")
        numbers = []
        for key in ("major", "minor"):
            n = d.get(key)
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
                raise CgroupError(f"{where}: {key} must be a number, got {n!r}")
            numbers.append(None if n is None or n < 0 else n)  # -1 is runc's wildcard too
        rules.append(Rule(allow, dtype, numbers[0], numbers[1], access))
    return rules


def effective(rules: list[Rule]) -> tuple[bool, list[Rule]]:
    """(default allow?, the rules after the last reset): what actually decides a request."""
    default, start = True, 0
    for i, r in enumerate(rules):
        if r.resets:
            default, start = r.allow, i + 1
    return default, rules[start:]


def v1_writes(rules: list[Rule]) -> list[tuple[str, str]]:
    """(file, line) pairs for devices.allow/devices.deny, in order.

    The v1 kernel takes type "a" to mean everything whatever the rest of the line says, so an
    "a" rule that is narrower than that is written as a "b" and a "c" rule.
    """
    out = []
    for r in rules:
        target = "devices.allow" if r.allow else "devices.deny"
        if r.resets:
            out.append((target, "a"))
        elif r.type == "a":
            for t in ("b", "c"):
                out.append((target, Rule(r.allow, t, r.major, r.minor, r.access).v1_line()))
        else:
            out.append((target, r.v1_line()))
    return out


# Registers of the device filter: R1 holds the context on entry, then serves as scratch.
_R0, _R1, _TYPE, _ACCESS, _MAJOR, _MINOR = 0, 1, 2, 3, 4, 5


def bpf_program(rules: list[Rule]) -> bytes:
    """A BPF_PROG_TYPE_CGROUP_DEVICE program: returns 1 to allow the request, 0 to deny.

    The rules are tested newest first, so the first match is the last matching rule of the
    list; none matching falls through to the default.
    """
    from lowrt.cgroups import ebpf  # v2 only: v1 never needs the assembler
    default, live = effective(rules)
    prog = [
        ebpf.ldx_w(_TYPE, _R1, 0),
        ebpf.alu32_imm(ebpf.AND, _TYPE, 0xFFFF),
        ebpf.ldx_w(_ACCESS, _R1, 0),
        ebpf.alu32_imm(ebpf.RSH, _ACCESS, 16),
        ebpf.ldx_w(_MAJOR, _R1, 4),
        ebpf.ldx_w(_MINOR, _R1, 8),
    ]
    for r in reversed(live):
        block = []  # (kind, fields): jumps get their offset once the block's length is known
        if r.type != "a":
            block.append(("jne_imm", _TYPE, BPF_DEVCG_DEV[r.type]))
        if r.access != "rwm":
            mask = sum(BPF_DEVCG_ACC[c] for c in r.access)
            block.append(("raw", ebpf.mov32_reg(_R1, _ACCESS)))
            block.append(("raw", ebpf.alu32_imm(ebpf.AND, _R1, mask)))
            if r.allow:  # skip unless every requested bit is granted: (access & mask) == access
                block.append(("jne_reg", _R1, _ACCESS))
            else:  # skip unless some requested bit is named: (access & mask) != 0
                block.append(("jeq_imm", _R1, 0))
        if r.major is not None:
            block.append(("jne_imm", _MAJOR, r.major))
        if r.minor is not None:
            block.append(("jne_imm", _MINOR, r.minor))
        block.append(("raw", ebpf.alu32_imm(ebpf.MOV, _R0, int(r.allow))))
        block.append(("raw", ebpf.exit_()))
        for i, (kind, *args) in enumerate(block):
            skip = len(block) - i - 1  # to the first instruction after this block
            if kind == "raw":
                prog.append(args[0])
            elif kind == "jne_imm":
                prog.append(ebpf.jmp_imm(ebpf.JNE, args[0], args[1], skip))
            elif kind == "jeq_imm":
                prog.append(ebpf.jmp_imm(ebpf.JEQ, args[0], args[1], skip))
            else:
                prog.append(ebpf.jmp_reg(ebpf.JNE, args[0], args[1], skip))
    prog.append(ebpf.alu32_imm(ebpf.MOV, _R0, int(default)))
    prog.append(ebpf.exit_())
    return b"".join(prog)

