"""Side-by-side timing: berth's command and its real peer's, alternated, median of several runs.

Benchmarks print `name: berth median, peer median, ratio` so the figures can go straight into an
issue note. They are never run as tests: targets are judged from their output.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence

Runner = Callable[[], object]


def command(argv: Sequence[str], **kwargs) -> Runner:
    """A runner that executes argv and fails loudly if it does not exit 0."""
    def run() -> None:
        proc = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return run


def timed(fn: Runner) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, ours: Runner, peer: Runner, *, runs: int = 15, warmup: int = 2,
            unit: str = "ms") -> dict:
    """Alternate ours and peer (so drift hits both alike); print each side's median, the median
    of the per-pair ratios, and the load average."""
    for _ in range(warmup):
        ours()
        peer()
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(timed(ours))
        b.append(timed(peer))
    scale = {"ms": 1e3, "s": 1.0}[unit]
    ma, mb = statistics.median(a) * scale, statistics.median(b) * scale
    # the ratio of each pair, run back to back, then their median: load that comes and goes
    # hits both halves of a pair alike
    ratio = statistics.median(x / y for x, y in zip(a, b))
    result = {"name": name, "ours": ma, "peer": mb, "ratio": ratio, "runs": runs, "unit": unit}
    print_result(result)
    return result


def print_result(r: dict) -> None:
    load = os.getloadavg()[0]
    print(f"{r['name']}: berth {r['ours']:.1f} {r['unit']}, peer {r['peer']:.1f} {r['unit']}, "
          f"ratio {r['ratio']:.2f}x (median of {r['runs']}; load average {load:.2f})", flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def rotate(runners: dict[str, Runner], *, runs: int = 15, warmup: int = 1,
           pause: float = 0.0) -> dict[str, list[float]]:
    """Run each runner in turn, round after round (a, b, c, a, b, c, ...), so that load which
    comes and goes hits every one of them alike; returns each one's times in seconds, round by
    round (index i of every list is the same round). `pause` seconds of idle before each timed
    run keep a run from inheriting what the one before left in the kernel."""
    for _ in range(warmup):
        for fn in runners.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, fn in runners.items():
            if pause:
                time.sleep(pause)
            times[name].append(timed(fn))
    return times


def pair_ratio(ours: Sequence[float], peer: Sequence[float]) -> float:
    """The median of the per-round ratios ours/peer: each pair ran back to back."""
    return statistics.median(x / y for x, y in zip(ours, peer))
