"""`docker run --rm busybox true` on the default bridge and with `--network none`, against
berthd and against Debian's dockerd 20.10 with a bridge of its own, round after round (issue 12's
figures: berth's bridge run at most 0.8x dockerd's, its bridge/none ratio at most dockerd's).

Both engines are private instances under one /tmp/bt-* directory, reached by the same docker
CLI. dockerd gets a bridge the bench makes (`-b`, an address in RFC 2544's 198.18.0.0/15) and
its iptables rules (as a stock dockerd has them); its chains, which dockerd 20.10 leaves at exit,
are removed after it, and the bench refuses to run where DOCKER chains exist already (another
dockerd's, which it must not touch). berthd uses its own default bridge (berth-<hash>).

    .venv/bin/python -m bench.network_run [--runs N]
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench._harness import command, load_average, pair_ratio, rotate
from bench.berth_run import PrivateDockerd
from tests.helpers.engine_daemon import DOCKER, BerthDaemon

DOCKER_BRIDGE_ADDRESS = "198.18.60.1/24"


def _iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def docker_chains() -> list[tuple[str, str]]:
    """(table, chain) of every DOCKER* chain there is."""
    out, table = [], ""
    for line in _iptables_save().splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":DOCKER"):
            out.append((table, line.split()[0][1:]))
    return out


def remove_docker_rules(bridge: str, subnet: str) -> None:
    """What dockerd left in the built-in chains: the jumps into its DOCKER* chains and the
    rules naming its bridge or subnet (its FORWARD accepts, its MASQUERADE), then the DOCKER*
    chains themselves."""
    table = ""
    for line in _iptables_save().splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and not line.split()[1].startswith("DOCKER") and (
                " -j DOCKER" in line or f" {bridge} " in f"{line} " or f" {subnet} " in line):
            subprocess.run(["iptables", "-w", "-t", table, "-D", *line.split()[1:]],
                           capture_output=True)
    chains = docker_chains()
    for t, chain in chains:
        subprocess.run(["iptables", "-w", "-t", t, "-F", chain], capture_output=True)
    for t, chain in chains:
        subprocess.run(["iptables", "-w", "-t", t, "-X", chain], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if docker_chains():
        raise SystemExit("DOCKER iptables chains exist already (another dockerd's): not run")
    root = Path(tempfile.mkdtemp(prefix="bt-netb-", dir="/tmp"))
    bridge = f"btdk{os.getpid() % 100000}"
    berthd = BerthDaemon()
    dockerd = PrivateDockerd(root, ("--iptables=true", "-b", bridge))
    try:
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", DOCKER_BRIDGE_ADDRESS, "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        berthd.start()
        dockerd.start()
        dockerd.import_busybox()
        runners = {}
        for engine, env in (("berthd", berthd.env()), ("dockerd", dockerd.env())):
            for net in ("bridge", "none"):
                runners[f"{engine} {net}"] = command(
                    [DOCKER, "run", "--rm", "--network", net, "busybox", "true"], env=env)
        times = rotate(runners, runs=args.runs, warmup=2)
        med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        for name, ms in med.items():
            print(f"docker run --rm --network {name.split()[1]} busybox true on {name.split()[0]}"
                  f": {ms:.1f} ms (median of {args.runs})")
        print(f"berthd bridge / dockerd bridge: "
              f"{pair_ratio(times['berthd bridge'], times['dockerd bridge']):.2f}x")
        ours = pair_ratio(times["berthd bridge"], times["berthd none"])
        peer = pair_ratio(times["dockerd bridge"], times["dockerd none"])
        print(f"bridge / none: berthd {ours:.2f}x, dockerd {peer:.2f}x")
        print(f"load average {load_average()}", flush=True)
    finally:
        dockerd.stop()
        berthd.cleanup()
        remove_docker_rules(bridge, str(ipaddress.IPv4Interface(DOCKER_BRIDGE_ADDRESS).network))
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
