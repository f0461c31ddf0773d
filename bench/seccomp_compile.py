"""Compiling docker's default seccomp profile: lowrt's own compiler against libseccomp.

    .venv/bin/python bench/seccomp_compile.py [--pairs N]

The profile is the one berthd hands lowrt for a container with docker's default capabilities
on an amd64 host (x86_64, x86 and x32 in the filter). libseccomp is reached through ctypes and
driven as runc drives it (tests/helpers/libseccomp_oracle.py: seccomp_init, arch_add, one
rule_add per name, export_bpf), without runc's -ENOSYS stub, which costs nothing to speak of.

Two comparisons, each run as pairs taking turns (lowrt, libseccomp, lowrt, libseccomp...), so
that load which comes and goes hits both alike:
  in-process: the compile alone, modules and library already loaded (a long-lived caller);
  fresh process: what a lowrt start pays, timed inside a new interpreter from before the
    first import to the program in hand: lowrt imports its compiler and the syscall tables
    it needs, libseccomp's side imports ctypes, loads libseccomp.so.2 and sets up the
    prototypes. The interpreter's own start is left out (it is the same for both), and the
    bytecode of both sides is compiled beforehand.
Printed: each side's median, the median of the per-pair ratios (lowrt / libseccomp) and the
load average (the figures mean little above a load of about 0.5 per core).
"""
from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._harness import load_average, pair_ratio  # noqa: E402


def docker_default() -> dict:
    from engine import seccomp_profile
    from engine.spec import DEFAULT_CAPS
    host = seccomp_profile.Host("amd64", "SCMP_ARCH_X86_64", (6, 18))
    return seccomp_profile.to_oci(seccomp_profile.default_profile(), list(DEFAULT_CAPS), host)


# Run in a fresh interpreter: time from before the first import to the program in hand.
FRESH = {
    "lowrt": """
import json, sys, time
t = time.perf_counter()
from lowrt import seccomp
program = seccomp.compile(json.loads(sys.argv[1]))
print(time.perf_counter() - t, len(program) // 8)
""",
    "libseccomp": """
import json, sys, time
t = time.perf_counter()
from tests.helpers import libseccomp_oracle
program = libseccomp_oracle.export(json.loads(sys.argv[1]))
print(time.perf_counter() - t, len(program) // 8)
""",
}


def fresh(side: str, profile: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", FRESH[side], profile], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def report(name: str, a: list[float], b: list[float]) -> None:
    print(f"{name}: lowrt {statistics.median(a) * 1e3:.2f} ms, "
          f"libseccomp {statistics.median(b) * 1e3:.2f} ms, "
          f"ratio {pair_ratio(a, b):.2f}x (median of {len(a)} pairs; "
          f"load average {load_average()})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30)
    args = parser.parse_args()

    from lowrt import seccomp
    from tests.helpers import libseccomp_oracle
    config = docker_default()
    libseccomp_oracle.load()
    print(f"docker's default profile, amd64 host: {len(config['syscalls'])} rules, "
          f"{sum(len(r['names']) for r in config['syscalls'])} names, arches "
          f"{config['architectures']}; libseccomp {libseccomp_oracle.version()}; "
          f"load average {load_average()}", flush=True)

    def time_it(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    mine = lambda: seccomp.compile(config)  # noqa: E731
    theirs = lambda: libseccomp_oracle.export(config)  # noqa: E731
    for _ in range(2):
        mine(), theirs()
    a, b = [], []
    for _ in range(args.pairs):
        a.append(time_it(mine))
        b.append(time_it(theirs))
    print(f"  instructions: lowrt {len(mine()) // 8}, libseccomp {len(theirs()) // 8}")
    report("in-process compile", a, b)

    profile = json.dumps(config)
    # an editable install under PYTHONDONTWRITEBYTECODE would compile the sources on every
    # start, which no installed lowrt does: bytecode first, for both sides
    for tree in ("lowrt", "tests/helpers"):
        compileall.compile_dir(str(REPO / tree), quiet=1)
    fresh("lowrt", profile), fresh("libseccomp", profile)  # warm the page cache
    a, b = [], []
    for _ in range(args.pairs):
        a.append(fresh("lowrt", profile)[0])
        b.append(fresh("libseccomp", profile)[0])
    report("fresh process, imports + load + compile", a, b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
