"""`docker pull` and `docker push` of a 3-layer image of about 50 MB from Debian's docker-registry
on 127.0.0.1, against berthd and against Debian's dockerd 20.10, round after round (issue 10's
figures: berth's pull and push each at most 0.8x dockerd's). Then where berth's time goes in a
pull: HTTP transfer, sha256 of the blobs, gzip decompression, and unpacking to disk (the
unpacker's diff-ID hashing and file writes), each measured alone in this process.

Each pull starts cold (the image removed from that engine first, untimed); each push goes to a
fresh registry (started untimed), so every blob is uploaded.

    .venv/bin/python -m bench.registry_pull_push [--runs N]
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._harness import load_average, pair_ratio
from bench.berth_run import PrivateDockerd
from tests.helpers.engine_daemon import DOCKER, BerthDaemon
from tests.helpers.registry import OCILayout, Registry, layer_tar


def _layers() -> list[bytes]:
    """~50 MB of plain tars: busybox plus random data (incompressible, 20 MB), half-random
    text (compresses about 2:1, 20 MB) and small text files (10 MB)."""
    rnd = random.Random(10)
    words = [bytes(rnd.choice(b"abcdefghijklmnop") for _ in range(8)) for _ in range(4096)]
    text = b" ".join(rnd.choice(words) for _ in range(2_300_000))[:20 << 20]
    half = bytes(b if i % 2 else rnd.getrandbits(8) for i, b in enumerate(text[:1 << 20]))
    return [
        layer_tar({"bin/busybox": Path("/usr/bin/busybox").read_bytes(),
                   "data/random.bin": rnd.randbytes(20 << 20)}),
        layer_tar({"data/mixed.txt": half * 20}),
        layer_tar({f"doc/{i:04d}.txt": text[i * 10240:(i + 1) * 10240] for i in range(1024)}),
    ]


def _docker(env: dict, *args: str) -> None:
    p = subprocess.run([DOCKER, *args], env=env, capture_output=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.decode()[-500:]}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def breakdown(layout: OCILayout, reg: Registry, blobs: list[dict], tmp: Path) -> dict[str, float]:
    """Seconds for each part of a pull, measured alone over the image's layer blobs."""
    import aiohttp

    from engine.images import layers
    paths = [layout.path / "blobs" / "sha256" / b["digest"].split(":")[1] for b in blobs]
    out: dict[str, float] = {}

    async def fetch_all():
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async def one(d):
                async with s.get(f"http://{reg.host}/v2/bench/img/blobs/{d}") as r:
                    async for _ in r.content.iter_chunked(1 << 20):
                        pass
            await asyncio.gather(*(one(b["digest"]) for b in blobs))
    out["http (3 blobs in parallel, to nowhere)"] = _timed(lambda: asyncio.run(fetch_all()))
    out["sha256 of the compressed blobs"] = _timed(
        lambda: [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    out["gzip decompression"] = _timed(
        lambda: [gzip.decompress(p.read_bytes()) for p in paths])
    dest = tmp / "unpack"

    def unpack():
        for i, p in enumerate(paths):
            d = dest / str(i)
            d.mkdir(parents=True)
            layers.unpack_into(p, d)
    out["unpack_into (decompress + diff-ID sha256 + tar + disk)"] = _timed(unpack)
    shutil.rmtree(dest, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bt-bench-reg-", dir="/tmp"))
    (root / "berth").mkdir()
    (root / "dockerd").mkdir()
    berthd = BerthDaemon(root / "berth")
    dockerd = PrivateDockerd(root / "dockerd")
    reg = Registry("plain")
    try:
        reg.start()
        layout = OCILayout(root / "oci")
        desc = layout.image(_layers())
        layout.write_index([desc])
        manifest = json.loads((layout.path / "blobs" / "sha256" /
                               desc["digest"].split(":")[1]).read_bytes())
        total = sum(layer["size"] for layer in manifest["layers"])
        r = reg.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:latest",
                       f"docker://{reg.host}/bench/img:1")
        assert r.returncode == 0, r.stderr
        ref = f"{reg.host}/bench/img:1"
        print(f"image: 3 layers, {total / 1e6:.1f} MB compressed", flush=True)
        berthd.start()
        dockerd.start()
        engines = {"berth": berthd.env(), "dockerd": dockerd.env()}
        pulls: dict[str, list[float]] = {n: [] for n in engines}
        pushes: dict[str, list[float]] = {n: [] for n in engines}
        for rnd in range(args.runs + 1):          # round 0 warms up
            for name, env in engines.items():
                subprocess.run([DOCKER, "rmi", "-f", ref], env=env, capture_output=True)
                t = _timed(lambda: _docker(env, "pull", ref))
                if rnd:
                    pulls[name].append(t)
            for name, env in engines.items():
                target = Registry("plain").start()
                try:
                    dest = f"{target.host}/bench/pushed:{rnd}"
                    _docker(env, "tag", ref, dest)
                    t = _timed(lambda: _docker(env, "push", dest))
                    if rnd:
                        pushes[name].append(t)
                    _docker(env, "rmi", dest)
                finally:
                    target.stop()
        for what, times in (("pull", pulls), ("push", pushes)):
            b, d = statistics.median(times["berth"]), statistics.median(times["dockerd"])
            print(f"{what}: berth {b:.2f} s, dockerd {d:.2f} s, ratio "
                  f"{pair_ratio(times['berth'], times['dockerd']):.2f}x (median of {args.runs}; "
                  f"load average {load_average()})", flush=True)
        print("where berth's pull time goes (each part alone, this process):")
        for part, secs in breakdown(layout, reg, manifest["layers"], root).items():
            print(f"  {part}: {secs:.2f} s")
    finally:
        berthd.cleanup()
        dockerd.stop()
        reg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
