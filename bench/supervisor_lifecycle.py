"""A task's whole life through berth-supervisor against `ctr run --rm` on a private containerd.

berth: through the client library (one connection, as berthd holds it), create the container,
create the task, start it, wait for its exit, delete the task and the container: `/bin/true` on
a busybox rootfs, the supervisor's default runtime (lowrt) unless --runtime says otherwise.
containerd: `ctr run --rm --rootfs <the same rootfs> ID /bin/true` against containerd 1.6.20
(config with root, state and sockets under a temporary directory, CRI disabled) and its
containerd-shim-runc-v2 + runc. Prints medians and the ratio (target: at most 1.0).
The berth packages' bytecode is compiled first, so that the shims and runtimes measured start as
installed ones do (an editable checkout under PYTHONDONTWRITEBYTECODE, or edited since its last
run, would otherwise compile its modules in every process).

    .venv/bin/python -m bench.supervisor_lifecycle [--runs 15] [--runtime lowrt|runc]
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._containerd import remove_cgroup_parent, start_containerd, stop_containerd  # noqa: E402
from bench._harness import command, compare  # noqa: E402
from tests.helpers.rootfs import make_busybox_rootfs  # noqa: E402
from tests.helpers.supervisor_env import SupervisorProcess, busybox_spec  # noqa: E402


def _compile_bytecode() -> None:
    import compileall
    for package in ("lowrt", "shim", "supervisor", "protos"):
        compileall.compile_dir(REPO / package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--runtime", default="lowrt", help="berth-supervisor's runtime")
    args = parser.parse_args()
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
        if not shutil.which(tool):
            print(f"supervisor_lifecycle: {tool} is not installed", file=sys.stderr)
            return 1
    _compile_bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="bt-bench-", dir="/tmp"))
    sup = daemon = None
    ids = itertools.count()
    try:
        rootfs = make_busybox_rootfs(tmp / "rootfs")
        sup = SupervisorProcess(tmp / "sup", runtime=args.runtime).start()
        client = sup.client("bench")
        (tmp / "cd").mkdir()
        daemon, sock = start_containerd(tmp / "cd")
        fifo_dir = tmp / "fifo"
        spec = busybox_spec(["/bin/true"], root=str(rootfs), tmpfs_tmp=False)

        def ours() -> None:
            cid = f"b{os.getpid()}-{next(ids)}"
            client.create_container(cid, spec)
            client.create_task(cid)
            client.start(cid)
            status, _ = client.wait(cid)
            client.delete_task(cid)
            client.delete_container(cid)
            if status != 0:
                raise RuntimeError(f"{cid} exited {status}")

        def peer() -> None:
            cid = f"c{os.getpid()}-{next(ids)}"
            command(["ctr", "--address", str(sock), "-n", "bench", "run", "--rm",
                     "--fifo-dir", str(fifo_dir), "--rootfs", str(rootfs), cid, "/bin/true"])()

        compare(f"task create+start+wait+delete (berth-supervisor+{args.runtime} via gRPC vs "
                "ctr run --rm on containerd+runc)", ours, peer, runs=args.runs)
    finally:
        if daemon is not None:
            stop_containerd(daemon)
        if sup is not None:
            sup.cleanup()
        subprocess.run(["umount", "-R", str(tmp / "cd" / "root")], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        remove_cgroup_parent("bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
