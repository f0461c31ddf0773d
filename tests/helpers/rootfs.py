"""Tiny root filesystems for tests: the host's static busybox and its applets, nothing else."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def make_busybox_rootfs(dest: Path) -> Path:
    """Fill dest with bin/busybox, a symlink per applet, and the usual empty top-level dirs."""
    dest = Path(dest)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc", "root",
              "var", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for name in applets.stdout.split():
        link = dest / "bin" / name
        if name != "busybox" and not link.exists():
            os.symlink("busybox", link)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    os.chmod(dest / "tmp", 0o1777)
    return dest
