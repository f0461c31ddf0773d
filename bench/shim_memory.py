"""Resident memory per shim: berth-shim against containerd's containerd-shim-runc-v2.

Ten idle containers (`sleep`) on each side, from the same busybox rootfs and both on runc:
berth's through berth-shim directly (as berth-supervisor drives it), containerd's through a
private containerd and `ctr run -d --rootfs`. Prints the median VmRSS per shim process in the
harness's format (target: ratio at most 1.0), and the median PSS for information (RSS counts
the interpreter's and the Go runtime's shared pages in full for every process).

    .venv/bin/python -m bench.shim_memory [--containers 10] [--runtime runc]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._containerd import remove_cgroup_parent, start_containerd, stop_containerd  # noqa: E402
from bench._harness import print_result  # noqa: E402
from tests.helpers.rootfs import make_busybox_rootfs  # noqa: E402
from tests.helpers.shim_env import ShimEnv  # noqa: E402

SETTLE_SECONDS = 1.0


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of pid in kB."""
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def measure_berth(tmp: Path, template: Path, count: int, runtime: str) -> list[tuple[int, int]]:
    envs = []
    try:
        for i in range(count):
            d = tmp / f"b{i}"
            d.mkdir()
            env = ShimEnv(d, template, runtime)
            envs.append(env)
            log = f"berth-jsonfile://{d}/ctr-json.log"
            env.create(["sleep", "1000"], stdout=log, stderr=log, stdin="berth-attach:")
            env.client.start(env.id)
        time.sleep(SETTLE_SECONDS)
        return [_memory_kb(env.shim_pid) for env in envs]
    finally:
        for env in envs:
            env.teardown()


def _containerd_shims(address: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            pids.append(int(entry))
    return pids


def measure_containerd(tmp: Path, rootfs: Path, count: int) -> list[tuple[int, int]]:
    daemon, sock = start_containerd(tmp)
    ctr = ["ctr", "--address", str(sock), "--namespace", "bench"]
    ids = [f"bench-{os.getpid()}-{i}" for i in range(count)]
    try:
        for cid in ids:
            out = subprocess.run(ctr + ["run", "-d", "--rootfs", str(rootfs), cid, "/bin/sleep",
                                        "1000"], capture_output=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"ctr run {cid}: {out.stderr.decode(errors='replace')}")
        time.sleep(SETTLE_SECONDS)
        shims = _containerd_shims(str(sock))
        if len(shims) != count:
            raise RuntimeError(f"expected {count} containerd shims, found {len(shims)}")
        return [_memory_kb(pid) for pid in shims]
    finally:
        for cid in ids:
            subprocess.run(ctr + ["task", "kill", "-s", "SIGKILL", cid], capture_output=True)
        for cid in ids:
            for _ in range(50):
                if subprocess.run(ctr + ["task", "delete", cid],
                                  capture_output=True).returncode == 0:
                    break
                if b"not found" in subprocess.run(ctr + ["task", "ls", "-q"],
                                                  capture_output=True).stdout:
                    break
                time.sleep(0.1)
            subprocess.run(ctr + ["container", "delete", cid], capture_output=True)
        stop_containerd(daemon)
        for pid in _containerd_shims(str(sock)):   # none should be left; never leave one
            os.kill(pid, signal.SIGKILL)
        remove_cgroup_parent("bench")


def _compile_bytecode() -> None:
    """Measure the shim as installed, with its modules' .pyc files current: from a checkout run
    under PYTHONDONTWRITEBYTECODE, or edited since its last run, every shim would compile its
    modules at start instead, and hold ~2 MB more for it."""
    import compileall
    for package in ("shim", "protos", "lowrt/cgroups"):
        compileall.compile_dir(REPO / package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--runtime", default="runc", help="the OCI runtime berth-shim drives")
    args = parser.parse_args()
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2", args.runtime):
        if not shutil.which(tool):
            print(f"shim_memory: {tool} is not installed", file=sys.stderr)
            return 1
    _compile_bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="bt-mem-", dir="/tmp"))
    try:
        template = make_busybox_rootfs(tmp / "rootfs")
        ours = measure_berth(tmp, template, args.containers, args.runtime)
        (tmp / "cd").mkdir()
        peer = measure_containerd(tmp / "cd", template, args.containers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for index, name in ((0, "RSS"), (1, "PSS")):
        a = statistics.median(m[index] for m in ours) / 1024
        b = statistics.median(m[index] for m in peer) / 1024
        print_result({"name": f"shim {name} per container ({args.containers} idle, "
                              f"berth-shim+{args.runtime} vs containerd-shim-runc-v2)",
                      "ours": a, "peer": b, "ratio": a / b, "runs": args.containers,
                      "unit": "MB"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
