"""`lowrt run` of /bin/true (create, start, wait, delete) against `runc run` and `crun run` on
the same bundle. Target: lowrt's median at most 1.0x runc's on a quiet machine.

    .venv/bin/python bench/lowrt_run.py [--runs N] [--pause MS] [--phases N] [--migration N]

Each runtime is a whole process, timed from fork to exit, and the runtimes take turns run by run
(lowrt, runc, crun, lowrt, runc, crun, ...): load that comes and goes hits each alike. Printed:
each one's median, the median of the per-round ratios against runc and against crun, and the
load average before and after (the figures mean little above a load of about 0.5 per core).

Each run starts after a pause (`--pause`, 100 ms), as a container started on a quiet machine
does: nothing was moved between cgroups in the last grace periods. Back to back, a run inherits
the kernel state the one before left, and on cgroup v1 that favours whichever runtime follows
the one that moved processes last: a migration right after another skips the wait for an RCU
grace period (`--migration`), and lowrt's start makes a few of them early on purpose
(lowrt/warmup.py). Measured here (`--carryover`), runc took 34-35 ms right after a 4 ms `sh`
that moved itself into its own cgroup and 44-49 ms after a plain `sh -c true` or a pause of
20 ms or more. The first comparison is also printed back to back, without the pause: runc's
figure there is partly lowrt's doing.

crun 1.8 refuses this host's hybrid cgroup layout (v1 controllers plus an empty cgroup2 at
/sys/fs/cgroup/unified): "mount point cgroup2 ... is not the root of the hierarchy". Where that
mount exists, crun runs in a private mount namespace without it,
`unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'`, which adds the unshare, the
sh and the umount to its time; so that the comparison with crun is fair, lowrt and runc run
in a second round of comparisons wrapped the same way. The first comparison is lowrt and runc
as callers run them, on the host's own layout. A third shows the three on a cgroup v2 layout:
on a hybrid host, the host's cgroup2 hierarchy mounted alone at /sys/fs/cgroup in a private
mount namespace (what a pure v2 host shows; lowrt then clones the container's process into its
cgroup). The controllers that the runtimes enable in its root are disabled again afterwards.

`--migration N` times the kernel's part that lowrt/warmup.py hides on v1: a process moved into
a cgroup with no migration in the last few hundred milliseconds (the first write waits for an
RCU grace period), against one moved right after another. `--carryover N` times runc after a
pause and then right after a migrating sh, a plain sh or nothing.

`--baseline LOWRT` adds another lowrt (an older checkout's script, say) to the first comparison,
and its ratio. `--runs 0` skips the comparisons. `--phases N` adds where lowrt's time goes: the interpreter's own start (`python3 -S -c pass`),
`lowrt --version` (interpreter, script and command line), and the medians of the steps that
`lowrt --debug run` logs.

lowrt's bytecode is compiled first, and its bundle (lowrt/bundle.py) made: an editable install
under PYTHONDONTWRITEBYTECODE would otherwise compile every module on every start and never
write the bundle, which no installed lowrt does.
"""
from __future__ import annotations

import argparse
import compileall
import filecmp
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._harness import command, load_average, pair_ratio, rotate, timed  # noqa: E402
from tests.helpers.rootfs import make_busybox_rootfs  # noqa: E402

LOWRT = str(Path(sys.executable).parent / "lowrt")
HYBRID_UNIFIED = "/sys/fs/cgroup/unified"


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
    """A runner that runs one fresh container id each time and fails loudly on a non-zero exit."""
    def run() -> None:
        argv = argv_for_id(f"bench-{next(ids)}")
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return run


def v2_view(argv: list[str]) -> list[str]:
    """argv run in a private mount namespace whose /sys/fs/cgroup is the cgroup2 hierarchy."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            'umount -R /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup; exec "$@"', "sh",
            *argv]


def private_mount_ns(argv: list[str]) -> list[str]:
    """argv run in a private mount namespace without the hybrid layout's empty cgroup2 mount."""
    return ["unshare", "-m", "sh", "-c", f'umount {HYBRID_UNIFIED} 2>/dev/null; exec "$@"', "sh",
            *argv]


def comparison(title: str, runners: dict, runs: int, pause: float) -> None:
    before = load_average()
    times = rotate(runners, runs=runs, warmup=2, pause=pause)
    after = load_average()
    medians = "; ".join(f"{name} {statistics.median(t) * 1e3:.1f} ms" for name, t in times.items())
    spacing = f"each after {pause * 1e3:.0f} ms idle" if pause else "back to back"
    print(f"{title}, {spacing}: {medians} (median of {runs} rounds)", flush=True)
    ours = times["lowrt"]
    for peer in ("runc", "crun", "baseline"):
        if peer in times:
            print(f"  lowrt/{peer}: {pair_ratio(ours, times[peer]):.2f}x (median of per-round ratios)",
                  flush=True)
    print(f"  load average before: {before}; after: {after}", flush=True)


def cpu_ms(fn, runs: int) -> float:
    """Median CPU time (user + system, all processes) of one run, in ms."""
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3)
    return statistics.median(samples)


_PHASE = re.compile(r'msg="\[(?P<since>[\d.]+) ms\] (?:create|run) [^:]+: (?P<what>.+?)(?: at [\d.]+ ms)?"')


def phases(root: Path, bundle: str, ids, runs: int) -> None:
    """Where a `lowrt run`'s time goes: medians over runs."""
    python = str(Path(sys.executable).parent / "python3")
    floor = statistics.median(timed(lambda: subprocess.run([python, "-S", "-c", "pass"]))
                              for _ in range(runs))
    version = statistics.median(timed(lambda: subprocess.run([LOWRT, "--version"],
                                                            stdout=subprocess.DEVNULL))
                                for _ in range(runs))
    steps: dict[str, list[float]] = {}
    walls = []
    for _ in range(runs):
        argv = [LOWRT, "--root", str(root), "--debug", "run", "-b", bundle, f"bench-{next(ids)}"]
        out: list[bytes] = []
        walls.append(timed(lambda: out.append(subprocess.run(argv, capture_output=True).stderr)))
        # runs and exited can reuse their names; the order of first sight is kept
        for m in _PHASE.finditer(out[0].decode(errors="replace")):
            what = re.sub(r"init \d+", "init", re.sub(r"exited \d+", "exited", m["what"]))
            steps.setdefault(what, []).append(float(m["since"]))
    print(f"where lowrt run's {statistics.median(walls) * 1e3:.1f} ms go (median of {runs}, "
          f"load average {load_average()}):", flush=True)
    print(f"  interpreter alone (python3 -S -c pass): {floor * 1e3:.1f} ms", flush=True)
    print(f"  lowrt --version (sh hop, interpreter, script, command line): {version * 1e3:.1f} ms",
          flush=True)
    print("  then, in ms since lowrt's log module was imported:", flush=True)
    for what, t in steps.items():
        print(f"    {statistics.median(t):6.1f}  {what}", flush=True)


def own_cgroup() -> tuple[str, str]:
    """The hierarchy's mount to move processes in (v1's pids, else the v2 one) and our cgroup
    in it."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    if "pids" in own:   # v1 (or hybrid): the pids hierarchy
        return "/sys/fs/cgroup/pids", own["pids"]
    return "/sys/fs/cgroup", own.get("", "/")  # pure v2: a cgroup below the root


def carryover(root: Path, bundle: str, ids, runs: int, pause: float) -> None:
    """runc's median, each run after a pause, then right after an sh that moves itself into
    its own cgroup, a plain sh, or nothing: what a run hands on to the one right after it."""
    mount, home = own_cgroup()
    procs = f"{mount}{home.rstrip('/')}/cgroup.procs"
    before = {"a migrating sh": command(["sh", "-c", f"echo 0 > {procs}"]),
              "a plain sh": command(["sh", "-c", "true"]),
              f"{pause * 1e3:.0f} ms idle": lambda: None}
    runc = runner(lambda cid: ["runc", "--root", str(root), "run", "-b", bundle, cid], ids)
    after: dict[str, list[float]] = {what: [] for what in before}
    for _ in range(runs):
        for what, fn in before.items():
            time.sleep(pause)
            fn()
            after[what].append(timed(runc))
    print("runc right after " + "; ".join(f"{what}: {statistics.median(t) * 1e3:.1f} ms"
                                          for what, t in after.items())
          + f" (median of {runs}; load average {load_average()})", flush=True)


def migration(runs: int) -> None:
    """Median time of a write to cgroup.procs: cold (nothing migrated for 200 ms) and warm."""
    mount, home = own_cgroup()
    test = f"{mount}/bt-migration-{os.getpid()}"
    os.mkdir(test)
    cold, warm = [], []
    try:
        for _ in range(runs):
            pid = os.fork()
            if pid == 0:
                time.sleep(5)
                os._exit(0)
            try:
                time.sleep(0.2)  # well past any migration of ours
                for samples in (cold, warm):
                    start = time.perf_counter()
                    with open(f"{test}/cgroup.procs", "w") as f:
                        f.write(str(pid))
                    samples.append(time.perf_counter() - start)
                    with open(f"{mount}{home.rstrip('/')}/cgroup.procs", "w") as f:
                        f.write(str(pid))  # back, then again at once: warm
            finally:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
    finally:
        os.rmdir(test)
    print(f"cgroup migration ({mount}): cold {statistics.median(cold) * 1e3:.2f} ms "
          f"(min {min(cold) * 1e3:.2f}, max {max(cold) * 1e3:.2f}), right after another "
          f"{statistics.median(warm) * 1e3:.2f} ms (median of {runs}; load average "
          f"{load_average()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds per comparison")
    parser.add_argument("--pause", type=float, default=100.0, metavar="MS",
                        help="idle time before each timed run (0: back to back only)")
    parser.add_argument("--phases", type=int, default=0, metavar="N",
                        help="also time lowrt's steps over N runs")
    parser.add_argument("--migration", type=int, default=0, metavar="N",
                        help="also time N cold and warm cgroup migrations")
    parser.add_argument("--carryover", type=int, default=0, metavar="N",
                        help="also time runc N times right after a migration, a plain sh and "
                             "the pause")
    parser.add_argument("--baseline", metavar="LOWRT",
                        help="another lowrt script (an older checkout's, say) to take turns with "
                             "the others in the first comparison, as \"baseline\"")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("lowrt_run.py needs root")
    source_script = REPO / "lowrt" / "bin" / "lowrt"
    if Path(LOWRT).is_file() and not filecmp.cmp(LOWRT, source_script, shallow=False):
        print(f"warning: {LOWRT} differs from {source_script}: reinstall (pip install -e .) to time "
              "the current script", flush=True)
    compileall.compile_dir(str(REPO / "lowrt"), quiet=1)
    from lowrt import bundle
    bundle.build(str(REPO / "lowrt"))  # what an installed lowrt writes on its first run
    top = Path(tempfile.mkdtemp(prefix="bt-bench-", dir="/tmp"))
    ids = itertools.count()
    crun = shutil.which("crun")
    hybrid = os.path.ismount(HYBRID_UNIFIED)
    try:
        bundle = str(make_bundle(top))

        def argv(tool: str, sub: str):
            return lambda cid: [tool, "--root", str(top / sub), "run", "-b", bundle, cid]

        def wrapped(tool: str, sub: str, wrap=private_mount_ns):
            return lambda cid: wrap(argv(tool, sub)(cid))

        host = {"lowrt": runner(argv(LOWRT, "lowrt"), ids), "runc": runner(argv("runc", "runc"), ids)}
        if crun and not hybrid:
            host["crun"] = runner(argv(crun, "crun"), ids)
        if args.baseline:
            host["baseline"] = runner(argv(args.baseline, "lowrt"), ids)
        pause = args.pause / 1e3
        if args.runs:
            comparison("run /bin/true, host namespaces", host, args.runs, pause)
            if pause:
                comparison("run /bin/true, host namespaces", host, args.runs, 0.0)
        if crun and hybrid and args.runs:
            private = {"lowrt": runner(wrapped(LOWRT, "lowrt-ns"), ids),
                       "runc": runner(wrapped("runc", "runc-ns"), ids),
                       "crun": runner(wrapped(crun, "crun-ns"), ids)}
            comparison("run /bin/true, each in unshare -m without the cgroup2 mount", private,
                       args.runs, pause)
        if crun and hybrid and args.runs:
            control = f"{HYBRID_UNIFIED}/cgroup.subtree_control"
            enabled = set(Path(control).read_text().split())
            try:
                v2 = {"lowrt": runner(wrapped(LOWRT, "lowrt-ns", v2_view), ids),
                      "runc": runner(wrapped("runc", "runc-ns", v2_view), ids),
                      "crun": runner(wrapped(crun, "crun-ns", v2_view), ids)}
                probe = subprocess.run(wrapped(crun, "crun-ns", v2_view)("bench-crun-probe"),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if probe.returncode != 0:  # here: it cannot raise RLIMIT_MEMLOCK for its filter
                    why = probe.stderr.decode(errors="replace").strip().splitlines()
                    print(f"  (crun left out on the v2 layout: {why[-1][-120:] if why else ''})",
                          flush=True)
                    del v2["crun"]
                    # what it made before it failed (it leaves the cgroup behind)
                    subprocess.run(v2_view([crun, "--root", str(top / "crun-ns"), "delete", "-f",
                                            "bench-crun-probe"]), capture_output=True)
                    try:
                        os.rmdir(f"{HYBRID_UNIFIED}/bench-crun-probe")
                    except OSError:
                        pass
                comparison("run /bin/true, each in unshare -m with cgroup2 alone at "
                           "/sys/fs/cgroup (a v2 layout)", v2, args.runs, pause)
            finally:
                for c in set(Path(control).read_text().split()) - enabled:
                    try:
                        Path(control).write_text(f"-{c}")
                    except OSError:
                        pass  # in use by a cgroup of someone else's
        for name, fn in (("lowrt", host["lowrt"]), ("runc", host["runc"])) if args.runs else ():
            print(f"cpu time per run, {name}: {cpu_ms(fn, max(5, args.runs // 3)):.1f} ms", flush=True)
        if args.phases:
            phases(top / "lowrt", bundle, ids, args.phases)
        if args.migration:
            migration(args.migration)
        if args.carryover:
            carryover(top / "runc", bundle, ids, args.carryover, pause or 0.1)
    finally:
        for tool, sub in (("runc", "runc"), ("runc", "runc-ns"), (crun, "crun"), (crun, "crun-ns"),
                          (LOWRT, "lowrt"), (LOWRT, "lowrt-ns")):
            if tool and (top / sub).is_dir():
                for cid in os.listdir(top / sub):
                    delete = [tool, "--root", str(top / sub), "delete", "-f", cid]
                    if sub.endswith("-ns"):
                        delete = private_mount_ns(delete)
                    subprocess.run(delete, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
