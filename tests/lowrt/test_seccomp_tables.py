"""The committed syscall tables are what lowrt/seccomp/gentables.py makes from the kernel
headers (for every arch whose headers this machine has)."""
from __future__ import annotations

import os
import shutil

import pytest

from lowrt.seccomp import gentables

HERE = os.path.dirname(gentables.__file__)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the C preprocessor")
@pytest.mark.parametrize("arch", sorted(gentables.ARCHES))
def test_table_is_reproducible_from_headers(arch):
    includes, header, *_ = gentables.ARCHES[arch]
    if not os.path.exists(os.path.join(includes[0], header)):
        pytest.skip(f"{includes[0]}/{header} is not installed (see gentables.py)")
    with open(os.path.join(HERE, f"table_{arch}.py")) as f:
        committed = f.read()
    assert gentables.render(arch, gentables.table(arch)) == committed


def test_tables_hold_known_numbers():
    from lowrt.seccomp import table_aarch64, table_arm, table_x32, table_x86, table_x86_64
    assert table_x86_64.SYSCALLS["read"] == 0 and table_x86_64.SYSCALLS["mkdir"] == 83
    assert table_x86.SYSCALLS["socketcall"] == 102 and table_x86.SYSCALLS["_llseek"] == 140
    assert table_x32.SYSCALLS["read"] == 0x40000000
    assert table_aarch64.SYSCALLS["openat"] == 56 and "open" not in table_aarch64.SYSCALLS
    assert table_arm.SYSCALLS["cacheflush"] == 0xF0002
    assert table_x86_64.AUDIT_ARCH == table_x32.AUDIT_ARCH == 0xC000003E
