"""`berth run --rm busybox true` against `docker run --rm busybox true` on Debian's dockerd, and
`exec <c> true` into a running container the same way.

Both engines are private instances under one /tmp/bt-* directory: berthd (with its own
berth-supervisor, berth-shim and lowrt) and dockerd 20.10 (with its own containerd, shim and
runc; `--iptables=false --bridge=none`). Both run their containers with `--network none`, so
the two do the same work (bench/network_run.py compares the bridged runs). The same
busybox rootfs is imported into dockerd; berth uses its built-in busybox image, made from the
same binary. A third line runs the docker CLI against berthd, to separate the engine from the
client's start-up.

Both engines give their containers docker's default seccomp profile (berth's own statement of
it, engine/seccomp_default.py, compiled by lowrt; dockerd's through runc and libseccomp).
`--init` runs each container with docker-init as pid 1 (Debian's tini-static on both sides);
`--unconfined` runs them without the profile instead (`--security-opt seccomp=unconfined`),
to see what the filter costs: the berth CLI has no --security-opt, so then only the docker
CLI's lines are run.

`--tls` serves both engines on 127.0.0.1 over mutual TLS as well (the same CA, a server
certificate for each, one client certificate, made by engine/tlscerts.py), and every client
reaches them there instead of through the unix socket.

    .venv/bin/python -m bench.berth_run [--runs N] [--only run|exec] [--init] [--unconfined]
                                        [--tls]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench._harness import command, compare
from tests.helpers.engine_daemon import DOCKER, VENV_BIN, BerthDaemon
from tests.helpers.full_v1_cgroups import (full_v1_cgroups,
                                            remove_cgroups_left_in_added_hierarchies)
from tests.helpers.netns import free_loopback_port
from tests.helpers.rootfs import make_busybox_rootfs


def make_certs(root: Path) -> tuple[Path, Path, Path]:
    """(berthd's, dockerd's and the client's certificate directories), one CA."""
    from engine import tlscerts
    tlscerts.make_ca(root / "ca")
    for name in ("berthd", "dockerd"):
        tlscerts.make_leaf(root / name, root / "ca", "127.0.0.1", server_names=["127.0.0.1"])
    tlscerts.make_leaf(root / "client", root / "ca", "bench", client=True)
    return root / "berthd", root / "dockerd", root / "client"


def tls_flags(certs: Path, port: int) -> tuple[str, ...]:
    return ("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert",
            str(certs / "ca.pem"), "--tlscert", str(certs / "cert.pem"), "--tlskey",
            str(certs / "key.pem"))


def tls_env(env: dict, port: int, client: Path) -> dict:
    return dict(env, DOCKER_HOST=f"tcp://127.0.0.1:{port}", BERTH_HOST=f"tcp://127.0.0.1:{port}",
                DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(client))


class PrivateDockerd:
    def __init__(self, root: Path, extra_args: tuple[str, ...] = ()):
        self.root = root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.pidfile = root / "docker.pid"
        self.log = root / "dockerd.log"
        self.cgroup_parent = f"/{root.name}"      # not /docker: removed again at stop
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.root / "cfg"))
        env.pop("DOCKER_CONTEXT", None)
        return env

    def start(self) -> None:
        argv = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root",
                str(self.root / "x"), "-H", self.host, "--pidfile", str(self.pidfile),
                "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--cgroup-parent", self.cgroup_parent, *self.extra_args]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(full_v1_cgroups(argv), stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)
        for _ in range(600):
            if subprocess.run([DOCKER, "version"], env=self.env(),
                              capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not start; see {self.log}")

    def import_busybox(self) -> None:
        rootfs = make_busybox_rootfs(self.root / "rootfs")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([DOCKER, "import", "-", "busybox"], stdin=tar.stdout, env=self.env(),
                       check=True, capture_output=True)
        tar.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # dockerd's managed containerd and shims carry the private root in their command lines
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if str(self.root).encode() in cmd:
                    try:
                        os.kill(int(entry), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        with open("/proc/self/mountinfo") as f:
            targets = [line.split()[4] for line in f]
        for target in sorted((t for t in targets if t.startswith(str(self.root))),
                             key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)
        for parent in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_parent}"):
            for child in sorted(parent.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                try:
                    child.rmdir()
                except OSError:
                    pass
        remove_cgroups_left_in_added_hierarchies(self.cgroup_parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", choices=("run", "exec"), help="one of the two comparisons")
    parser.add_argument("--init", action="store_true", help="run the containers with --init")
    parser.add_argument("--unconfined", action="store_true",
                        help="run the containers without the default seccomp profile")
    parser.add_argument("--tls", action="store_true",
                        help="reach both engines over mutual TLS on 127.0.0.1")
    args = parser.parse_args()
    run_flags = (["--init"] if args.init else []) + (
        ["--security-opt", "seccomp=unconfined"] if args.unconfined else [])
    label = " ".join(["run --rm --network none", *run_flags, "busybox true"]) + (" over TLS" if args.tls
                                                                   else "")
    root = Path(tempfile.mkdtemp(prefix="bt-brun-", dir="/tmp"))
    berth_tls = docker_tls = ()
    if args.tls:
        berthd_certs, dockerd_certs, client = make_certs(root / "certs")
        berth_port, docker_port = free_loopback_port(), free_loopback_port()
        berth_tls = tls_flags(berthd_certs, berth_port)
        docker_tls = tls_flags(dockerd_certs, docker_port)
    berthd = BerthDaemon(extra_args=berth_tls)
    dockerd = PrivateDockerd(root, docker_tls)
    try:
        berthd.start()
        dockerd.start()
        dockerd.import_busybox()
        berth_env, docker_env = berthd.env(), dockerd.env()
        if args.tls:
            berth_env = tls_env(berth_env, berth_port, client)
            docker_env = tls_env(docker_env, docker_port, client)
        if args.only != "exec":
            ours = command([str(VENV_BIN / "berth"), "run", "--rm", "--network", "none",
                            *run_flags, "busybox", "true"], env=berth_env)
            peer = command([DOCKER, "run", "--rm", "--network", "none", *run_flags, "busybox",
                            "true"], env=docker_env)
            docker_to_berthd = command([DOCKER, "run", "--rm", "--network", "none", *run_flags,
                                        "busybox", "true"], env=berth_env)
            if not args.unconfined:
                compare(f"berth {label} vs docker {label} (dockerd 20.10)", ours, peer,
                        runs=args.runs)
            compare(f"docker CLI: {label} on berthd vs on dockerd 20.10",
                    docker_to_berthd, peer, runs=args.runs)
        if args.only != "run":
            for env in (berth_env, docker_env):
                command([DOCKER, "run", "-d", "--name", "bench-exec", "--network", "none",
                         *run_flags, "busybox", "sleep", "600"], env=env)()
            peer = command([DOCKER, "exec", "bench-exec", "true"], env=docker_env)
            compare("berth exec c true vs docker exec c true (dockerd 20.10)",
                    command([str(VENV_BIN / "berth"), "exec", "bench-exec", "true"],
                            env=berth_env), peer, runs=args.runs)
            compare("docker CLI: exec c true on berthd vs on dockerd 20.10",
                    command([DOCKER, "exec", "bench-exec", "true"], env=berth_env), peer,
                    runs=args.runs)
            subprocess.run([DOCKER, "rm", "-f", "bench-exec"], env=docker_env,
                           capture_output=True)
    finally:
        dockerd.stop()
        berthd.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
