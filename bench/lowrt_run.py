"""`lowrt run` of /bin/true (create, start, wait, delete) against `runc run` and `crun run` on
the same bundle, side by side. Target: lowrt's median at most 1.0x runc's.

    .venv/bin/python bench/lowrt_run.py [--runs N]

crun refuses this host's hybrid cgroup layout (v1 controllers plus an empty cgroup2 at
/sys/fs/cgroup/unified), so it runs in a private mount namespace where that mount is gone:
`unshare -m sh -c 'umount ...; exec crun ...'`, which adds the unshare and sh to its time.
lowrt's bytecode is compiled first: an editable install under PYTHONDONTWRITEBYTECODE would
otherwise compile every module on every start, which no installed lowrt does.
"""
from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._harness import compare, timed  # noqa: E402
from tests.helpers.rootfs import make_busybox_rootfs  # noqa: E402

LOWRT = str(Path(sys.executable).parent / "lowrt")


def make_bundle(top: Path) -> Path:
    bundle = top / "bundle"
    bundle.mkdir()
    make_busybox_rootfs(bundle / "rootfs")
    subprocess.run([LOWRT, "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def runner(argv_for_id, ids):
    def run() -> None:
        argv = argv_for_id(f"bench-{next(ids)}")
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return run


def cpu_ms(fn, runs: int) -> float:
    """Median CPU time (user + system, all processes) of one run, in ms."""
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("lowrt_run.py needs root")
    compileall.compile_dir(str(REPO / "lowrt"), quiet=1)
    top = Path(tempfile.mkdtemp(prefix="bt-bench-", dir="/tmp"))
    ids = itertools.count()
    try:
        bundle = str(make_bundle(top))
        lowrt = runner(lambda cid: [LOWRT, "--root", str(top / "lowrt"), "run", "-b", bundle, cid], ids)
        runc = runner(lambda cid: ["runc", "--root", str(top / "runc"), "run", "-b", bundle, cid], ids)
        crun_cmd = ('umount /sys/fs/cgroup/unified 2>/dev/null; '
                    f'exec crun --root {top}/crun run -b {bundle} "$0"')
        crun = runner(lambda cid: ["unshare", "-m", "sh", "-c", crun_cmd, cid], ids)
        compare("lowrt run /bin/true vs runc run", lowrt, runc, runs=args.runs)
        if shutil.which("crun"):
            compare("lowrt run /bin/true vs crun run (in unshare -m)", lowrt, crun, runs=args.runs)
        for name, fn in (("lowrt", lowrt), ("runc", runc)):
            print(f"cpu time per run, {name}: {cpu_ms(fn, max(5, args.runs // 3)):.1f} ms", flush=True)
        print(f"one lowrt run, for the record: {timed(lowrt) * 1e3:.1f} ms")
    finally:
        for tool, root in (("runc", "runc"), ("crun", "crun"), (LOWRT, "lowrt")):
            if (top / root).is_dir():
                for cid in os.listdir(top / root):
                    subprocess.run([tool, "--root", str(top / root), "delete", "-f", cid],
                                   capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
