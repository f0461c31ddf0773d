"""Generate lowrt/seccomp/table_<arch>.py, the syscall number tables, from kernel headers.

    .venv/bin/python -m lowrt.seccomp.gentables      # rewrites the table modules in place

Sources: the host's linux-libc-dev (x86_64, x86, x32) and Debian's linux-libc-dev-<arch>-cross
packages (aarch64, arm, riscv64, ppc64le, s390x and s390):
    apt-get install linux-libc-dev-arm64-cross linux-libc-dev-armhf-cross \\
        linux-libc-dev-riscv64-cross linux-libc-dev-ppc64el-cross linux-libc-dev-s390x-cross
The C preprocessor resolves each header exactly as a program built for that arch would see
it (asm-generic's conditional blocks, __NR3264_ aliases, base offsets), so nothing here
re-implements the headers' logic.
"""
from __future__ import annotations

import ast
import operator
import os
import re
import subprocess
import sys

# arch: (include dirs, header, predefined macros, audit arch, bits, byte order)
ARCHES = {
    "x86_64": (["/usr/include/x86_64-linux-gnu", "/usr/include"], "asm/unistd_64.h", [],
               0xC000003E, 64, "little"),
    "x86": (["/usr/include/x86_64-linux-gnu", "/usr/include"], "asm/unistd_32.h", [],
            0x40000003, 32, "little"),
    # x32 shares x86_64's audit arch; its numbers carry __X32_SYSCALL_BIT.
    "x32": (["/usr/include/x86_64-linux-gnu", "/usr/include"], "asm/unistd_x32.h",
            ["__X32_SYSCALL_BIT=0x40000000"], 0xC000003E, 32, "little"),
    "aarch64": (["/usr/aarch64-linux-gnu/include"], "asm/unistd.h", ["__aarch64__"],
                0xC00000B7, 64, "little"),
    "arm": (["/usr/arm-linux-gnueabihf/include"], "asm/unistd.h", ["__ARM_EABI__", "__arm__"],
            0x40000028, 32, "little"),
    # riscv's asm/bitsperlong.h derives __BITS_PER_LONG from __SIZEOF_POINTER__, which -undef
    # leaves out: without it the header hands out the 32-bit names (fcntl64, mmap2...)
    "riscv64": (["/usr/riscv64-linux-gnu/include"], "asm/unistd.h",
                ["__riscv", "__LP64__", "__riscv_xlen=64", "__SIZEOF_POINTER__=8"], 0xC00000F3,
                64, "little"),
    "ppc64le": (["/usr/powerpc64le-linux-gnu/include"], "asm/unistd.h",
                ["__powerpc64__", "__LITTLE_ENDIAN__"], 0xC0000015, 64, "little"),
    "s390x": (["/usr/s390x-linux-gnu/include"], "asm/unistd.h", ["__s390x__"],
              0x80000016, 64, "big"),
    # s390x's 31-bit compat ABI, which docker's arch map puts next to s390x
    "s390": (["/usr/s390x-linux-gnu/include"], "asm/unistd_32.h", [], 0x00000016, 32, "big"),
}

# Architecture-private calls libseccomp also knows by name (ARM's __ARM_NR_*).
PRIVATE_PREFIXES = ("__ARM_NR_",)
SKIP = re.compile(r"^(syscalls|arch_specific_syscall|SYSCALL_BASE|ARM_BASE|OABI_SYSCALL_BASE"
                  r"|.*_BASE|BASE|SYSCALL_MASK)$")  # ARM's __ARM_NR_BASE, __NR_SYSCALL_MASK

# Calls newer than the headers above (Debian 12's, Linux 6.1), which the kernels containers
# run on have. Since Linux 5.1 a new call takes the same number on every architecture (x32
# adds its bit), so each is listed once with the ABIs whose kernel syscall tables wire it;
# a header that has the name wins.
EVERY = ("x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "ppc64le", "s390x", "s390")
ADDED: dict[str, tuple[int, tuple[str, ...]]] = {
    "cachestat": (451, EVERY),                      # 6.5
    "fchmodat2": (452, EVERY),                      # 6.6
    "map_shadow_stack": (453, tuple(a for a in EVERY if a != "x32")),  # 6.6
    "futex_wake": (454, EVERY),                     # 6.7
    "futex_wait": (455, EVERY),
    "futex_requeue": (456, EVERY),
    "statmount": (457, EVERY),                      # 6.8
    "listmount": (458, EVERY),
    "lsm_get_self_attr": (459, EVERY),
    "lsm_set_self_attr": (460, EVERY),
    "lsm_list_modules": (461, EVERY),
    "mseal": (462, EVERY),                          # 6.10
    "setxattrat": (463, EVERY),                     # 6.13
    "getxattrat": (464, EVERY),
    "listxattrat": (465, EVERY),
    "removexattrat": (466, EVERY),
    "open_tree_attr": (467, EVERY),                 # 6.15
    "file_getattr": (468, EVERY),                   # 6.17
    "file_setattr": (469, EVERY),
    # older calls an architecture gained after 6.1
    "riscv_hwprobe": (258, ("riscv64",)),           # 6.4
    "memfd_secret": (447, ("s390x", "s390")),      # 6.5
    "uretprobe": (335, ("x86_64", "x32")),          # 6.11
    "uprobe": (336, ("x86_64", "x32")),             # 6.16
}
X32_BIT = 0x40000000


def _preprocess(arch: str, source: str, extra: list[str]) -> str:
    includes, header, defines, *_ = ARCHES[arch]
    cmd = ["gcc", "-E", "-P", "-nostdinc", "-undef", "-x", "c", "-"]
    cmd += [f"-I{d}" for d in includes] + [f"-D{d}" for d in defines + extra]
    return subprocess.run(cmd, input=f"#include <{header}>\n{source}", capture_output=True,
                          text=True, check=True).stdout


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.BitOr: operator.or_,
        ast.LShift: operator.lshift}


def _evaluate(expr: str) -> int:
    """An integer constant expression from a header (numbers, + - | <<, parentheses)."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"not a constant expression: {expr!r}")
    return ev(ast.parse(re.sub(r"(0x[0-9a-fA-F]+|\d+)[uUlL]+", r"\1", expr), mode="eval"))


def table(arch: str) -> dict[str, int]:
    includes, header, defines, *_ = ARCHES[arch]
    cmd = ["gcc", "-E", "-dM", "-nostdinc", "-undef", "-x", "c", "-"]
    cmd += [f"-I{d}" for d in includes] + [f"-D{d}" for d in defines]
    names = []
    for line in subprocess.run(cmd, input=f"#include <{header}>\n", capture_output=True,
                               text=True, check=True).stdout.splitlines():
        m = re.match(r"#define (__NR_|__ARM_NR_)(\w+) ", line)
        if m and not SKIP.match(m.group(2)):
            names.append((m.group(1), m.group(2)))
    probe = "\n".join(f"lowrt_syscall {name} = {prefix}{name}" for prefix, name in names)
    out = {}
    for line in _preprocess(arch, probe, []).splitlines():
        if line.startswith("lowrt_syscall "):
            _, name, _, expr = line.split(" ", 3)
            out[name] = _evaluate(expr)
    for name, (nr, abis) in ADDED.items():
        if arch in abis and name not in out:
            out[name] = nr | X32_BIT if arch == "x32" else nr
    return dict(sorted(out.items(), key=lambda kv: (kv[1], kv[0])))


def render(arch: str, syscalls: dict[str, int]) -> str:
    includes, header, _, audit, bits, order = ARCHES[arch]
    lines = [
        f'"""Syscall numbers for {arch}: generated by lowrt/seccomp/gentables.py from',
        f"{includes[0]}/{header}; do not edit by hand.\"\"\"",
        f"AUDIT_ARCH = {audit:#010x}",
        f"BITS = {bits}",
        f'BYTE_ORDER = "{order}"',
        "SYSCALLS = {",
    ]
    lines += [f'    "{name}": {nr:#x},' if nr >= 0x40000000 else f'    "{name}": {nr},'
              for name, nr in syscalls.items()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    for arch in ARCHES:
        syscalls = table(arch)
        with open(os.path.join(here, f"table_{arch}.py"), "w") as f:
            f.write(render(arch, syscalls))
        print(f"{arch}: {len(syscalls)} syscalls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
