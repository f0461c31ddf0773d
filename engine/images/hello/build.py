"""Builds hello.c into a static binary. Run by setup.py at install time, and by berthd when an
install (an editable one made before this step existed, say) has no binary yet. Stdlib only:
setup.py runs it before the package is importable."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "hello.c"
BINARY = SOURCE.with_name("hello")


def build(out: Path = BINARY) -> Path:
    """Compile hello.c to out with `gcc -static -Os -s`; raises RuntimeError naming what failed."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise RuntimeError("cannot build the hello-world program: no C compiler (gcc) found")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".building")
    proc = subprocess.run([cc, "-static", "-Os", "-s", "-o", str(tmp), str(SOURCE)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"cannot build {SOURCE} with {cc} -static: {proc.stderr.strip()}")
    tmp.rename(out)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else BINARY))
