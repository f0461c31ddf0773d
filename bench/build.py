"""`docker build` (the classic builder) of a 6-step Dockerfile -- COPY of 200 small files and
two RUNs -- on berthd and on Debian's dockerd 20.10, alternated round by round: a cold build
(--no-cache: every step made again) and an unchanged rebuild (every step from the cache).
Both daemons get the docker CLI 20.10 with the same context; dockerd's RUNs use --network none
as berth's container tests do, and berthd's too so the two do the same work.

    .venv/bin/python -m bench.build [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench._harness import load_average, pair_ratio, rotate
from tests.helpers.engine_daemon import BerthDaemon
from tests.helpers.peer_dockerd import PeerDockerd

DOCKER_20 = "/usr/bin/docker"
DOCKERFILE = """\
FROM busybox
COPY files/ /app/files/
RUN cat /app/files/* | wc -c > /app/size
ENV MODE=bench
RUN ls /app/files | wc -l > /app/count
CMD ["cat", "/app/size", "/app/count"]
"""


def make_context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "files").mkdir(parents=True)
    for i in range(200):
        (ctx / "files" / f"f{i:03d}.txt").write_text(f"file {i}\n" * (1 + i % 20))
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


def builder(env: dict, ctx: Path, tag: str, *extra: str):
    def run() -> None:
        p = subprocess.run([DOCKER_20, "build", "--network", "none", *extra, "-t", tag,
                            str(ctx)], env={**env, "DOCKER_BUILDKIT": "0"},
                           capture_output=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"docker build: {p.stderr.decode()[-500:]}")
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        root = Path(tmp)
        ctx = make_context(root)
        (root / "berth").mkdir()
        berthd = BerthDaemon(root / "berth")
        peer = None
        try:
            berthd.start()
            peer = PeerDockerd(root / "dockerd")
            ours_env, peer_env = berthd.env(), peer.daemon.env
            for name, extra in (("cold build (--no-cache)", ("--no-cache",)),
                                ("unchanged rebuild (all cache)", ())):
                times = rotate({"berth": builder(ours_env, ctx, "bench-build", *extra),
                                "dockerd": builder(peer_env, ctx, "bench-build", *extra)},
                               runs=args.runs)
                ours, theirs = times["berth"], times["dockerd"]
                print(f"{name}: berth {statistics.median(ours) * 1e3:.0f} ms, dockerd "
                      f"{statistics.median(theirs) * 1e3:.0f} ms, ratio "
                      f"{pair_ratio(ours, theirs):.2f}x (median of {args.runs}; load "
                      f"{load_average()})", flush=True)
        finally:
            if peer is not None:
                peer.daemon.stop()
            berthd.cleanup()


if __name__ == "__main__":
    main()
