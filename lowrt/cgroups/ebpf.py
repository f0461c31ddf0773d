"""Just enough of an eBPF assembler for the cgroup v2 device filter.

Each instruction is the kernel's `struct bpf_insn`: opcode byte, a byte holding the two
4-bit register fields (dst in the low nibble on little-endian hosts, the high one on big-endian,
because they are C bitfields), a signed 16-bit jump offset and a signed 32-bit immediate.
"""
from __future__ import annotations

import struct
import sys

# instruction classes
LDX, ALU, JMP = 0x01, 0x04, 0x05
# sizes and modes
W, MEM = 0x00, 0x60
# ALU operations
AND, RSH, MOV = 0x50, 0x70, 0xB0
# jump operations
JEQ, JNE, EXIT = 0x10, 0x50, 0x90
# operand source: immediate or register
K, X = 0x00, 0x08

_BIG = sys.byteorder == "big"
_INSN = struct.Struct("<BBhi" if not _BIG else ">BBhi")


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    regs = (dst << 4 | src) if _BIG else (src << 4 | dst)
    return _INSN.pack(code, regs, off, imm)


def decode(raw: bytes) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) for each instruction: the inverse of insn()."""
    out = []
    for i in range(0, len(raw), 8):
        code, regs, off, imm = _INSN.unpack_from(raw, i)
        dst, src = (regs >> 4, regs & 0xF) if _BIG else (regs & 0xF, regs >> 4)
        out.append((code, dst, src, off, imm))
    return out


def ldx_w(dst: int, src: int, off: int) -> bytes:
    """dst = *(u32 *)(src + off)"""
    return insn(LDX | W | MEM, dst, src, off)


def alu32_imm(op: int, dst: int, imm: int) -> bytes:
    return insn(ALU | op | K, dst, imm=imm)


def mov32_reg(dst: int, src: int) -> bytes:
    return insn(ALU | MOV | X, dst, src)


def jmp_imm(op: int, dst: int, imm: int, off: int) -> bytes:
    """if (dst <op> imm) goto pc + 1 + off"""
    return insn(JMP | op | K, dst, imm=imm, off=off)


def jmp_reg(op: int, dst: int, src: int, off: int) -> bytes:
    return insn(JMP | op | X, dst, src, off=off)


def exit_() -> bytes:
    return insn(JMP | EXIT)
