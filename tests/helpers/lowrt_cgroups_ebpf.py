"""For the device-filter tests: a disassembler and an interpreter for the eBPF subset
lowrt.cgroups.devices emits, and the reference decision the program must agree with."""
from __future__ import annotations

from lowrt.cgroups import ebpf
from lowrt.cgroups.devices import Rule, effective

_ALU = {ebpf.AND: "&=", ebpf.RSH: ">>=", ebpf.MOV: "="}
_JMP = {ebpf.JEQ: "==", ebpf.JNE: "!="}


def disassemble(prog: bytes) -> list[str]:
    """bpftool-like text, one line per instruction; raises on anything outside the subset."""
    out = []
    for code, dst, src, off, imm in ebpf.decode(prog):
        cls, op, source = code & 0x07, code & 0xF0, code & 0x08
        if code == ebpf.LDX | ebpf.W | ebpf.MEM:
            out.append(f"r{dst} = *(u32 *)(r{src} + {off})")
        elif cls == ebpf.ALU and op in _ALU:
            operand = f"w{src}" if source == ebpf.X else str(imm)
            out.append(f"w{dst} {_ALU[op]} {operand}")
        elif cls == ebpf.JMP and op == ebpf.EXIT:
            out.append("exit")
        elif cls == ebpf.JMP and op in _JMP:
            operand = f"r{src}" if source == ebpf.X else str(imm)
            out.append(f"if r{dst} {_JMP[op]} {operand} goto +{off}")
        else:
            raise ValueError(f"instruction {code:#x} is outside the device-filter subset")
    return out


def run(prog: bytes, access_type: int, major: int, minor: int) -> int:
    """Execute the program on a bpf_cgroup_dev_ctx; returns R0."""
    insns = ebpf.decode(prog)
    ctx = {0: access_type, 4: major, 8: minor}
    regs: list[int | str] = [0] * 11
    regs[1] = "ctx"
    pc = 0
    for _ in range(10_000):
        code, dst, src, off, imm = insns[pc]
        cls, op, source = code & 0x07, code & 0xF0, code & 0x08
        pc += 1
        if code == ebpf.LDX | ebpf.W | ebpf.MEM:
            assert regs[src] == "ctx", "load from something other than the context"
            regs[dst] = ctx[off]
        elif cls == ebpf.ALU:
            value = regs[src] if source == ebpf.X else imm & 0xFFFFFFFF
            if op == ebpf.MOV:
                regs[dst] = value & 0xFFFFFFFF
            elif op == ebpf.AND:
                regs[dst] = regs[dst] & value & 0xFFFFFFFF
            elif op == ebpf.RSH:
                regs[dst] = (regs[dst] & 0xFFFFFFFF) >> value
            else:
                raise ValueError(f"alu op {op:#x}")
        elif cls == ebpf.JMP and op == ebpf.EXIT:
            return regs[0]
        elif cls == ebpf.JMP:
            value = regs[src] if source == ebpf.X else imm
            taken = regs[dst] == value if op == ebpf.JEQ else regs[dst] != value
            if taken:
                pc += off
        else:
            raise ValueError(f"instruction {code:#x}")
        assert 0 <= pc < len(insns), "jumped out of the program"
    raise AssertionError("no exit within 10000 steps")


def reference(rules: list[Rule], dtype: str, major: int, minor: int, access: str) -> bool:
    """The decision the semantics in lowrt.cgroups.devices give one request."""
    default, live = effective(rules)
    want = set(access)
    for r in reversed(live):
        if r.type not in ("a", dtype):
            continue
        if r.major is not None and r.major != major or r.minor is not None and r.minor != minor:
            continue
        granted = set(r.access)
        if r.allow and want <= granted or not r.allow and want & granted:
            return r.allow
    return default
