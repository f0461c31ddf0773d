"""A private berthd for tests: its own socket, data root, exec root and cgroup parent under one
short /tmp/bt-* directory, started as the real program (which starts its own berth-supervisor),
and a cleanup that leaves nothing behind even when a test or the daemon failed: containers are
removed through the API, then anything still carrying the private paths (shims, a supervisor,
container processes in the private cgroup parent, mounts) is ended and removed."""
from __future__ import annotations

import functools
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
# The docker CLI on PATH: Debian's docker.io (20.10) on a fresh machine, often a newer one (28)
# first on PATH elsewhere; the tests hold for both. BERTH_TEST_DOCKER picks another.
DOCKER = os.environ.get("BERTH_TEST_DOCKER") or shutil.which("docker") or "docker"


@functools.cache
def docker_cli_major() -> int:
    """DOCKER's major version (20 for Debian's docker.io, 28, ...); 0 when it cannot say."""
    out = subprocess.run([DOCKER, "version", "--format", "{{.Client.Version}}"],
                         capture_output=True, text=True).stdout.strip()
    return int(out.split(".")[0]) if out.split(".")[0].isdigit() else 0


# No test may reach a registry outside this machine, yet a pull of a name that is on no test
# registry happens (the docker CLI pulls when a create answers 404). berthd and dockerd send
# registry traffic through these proxy variables, as Go's and aiohttp's clients do: to a port
# on the loopback where nothing listens, so it fails at once and without a DNS lookup. Loopback
# registries, the tests' own, are never proxied.
OFFLINE_REGISTRY_ENV = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                        "NO_PROXY": "127.0.0.1,localhost,::1"}


def daemon_env() -> dict[str, str]:
    """The environment a test daemon (berthd, Debian's dockerd) runs with."""
    return {**os.environ, **OFFLINE_REGISTRY_ENV}
CGROUP_ROOT = Path("/sys/fs/cgroup")


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


class BerthDaemon:
    def __init__(self, root: Path | None = None, *, extra_args: tuple[str, ...] = (),
                 ignored_signals: tuple[int, ...] = (), prefix: tuple[str, ...] = (),
                 hosts: tuple[str, ...] | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
        self.sock = self.root / "berth.sock"
        self.host = f"unix://{self.sock}"
        self.data_root = self.root / "data"
        self.exec_root = self.root / "x"
        self.cgroup_parent = f"/{self.root.name}"
        self.log = self.root / "berthd.log"
        self.docker_config = self.root / "docker-config"
        self.docker_config.mkdir(exist_ok=True)
        self.extra_args = extra_args
        self.prefix = prefix                    # runs berthd under it (nsenter --net=…)
        self.hosts = hosts or (self.host,)      # its -H; the API is still asked at self.sock
        self.ignored_signals = ignored_signals  # as nohup or a shell's trap '' leaves them
        self.proc: subprocess.Popen | None = None

    # process
    def argv(self) -> list[str]:
        hosts = [arg for h in self.hosts for arg in ("-H", h)]
        return [*self.prefix, str(VENV_BIN / "berthd"), *hosts, "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root), "--cgroup-parent", self.cgroup_parent,
                "--debug", *self.extra_args]

    def start(self, timeout: float = 60.0, **popen) -> "BerthDaemon":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL,
                                         env=popen.pop("env", None) or daemon_env(),
                                         preexec_fn=popen.pop("preexec_fn", self._ignore),
                                         **popen)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", "/_ping", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"berthd did not answer on {self.sock}:\n{self.log_tail()}")
            time.sleep(0.05)

    def _ignore(self) -> None:
        for sig in self.ignored_signals:
            signal.signal(sig, signal.SIG_IGN)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pid(self) -> int:
        return self.proc.pid

    def supervisor_pid(self) -> int | None:
        try:
            return int((self.exec_root / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def stop(self) -> int | None:
        """SIGTERM and wait; returns berthd's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    # clients
    def api(self, method: str, path: str, body=None, *, headers: dict | None = None,
            timeout: float = 30) -> Response:
        conn = _UnixHTTP(str(self.sock), timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(DOCKER_HOST=self.host, BERTH_HOST=self.host,
                   DOCKER_CONFIG=str(self.docker_config))
        env.pop("DOCKER_API_VERSION", None)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               ) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], input=input, capture_output=True,
                              env=self.env(), timeout=timeout)

    def berth(self, *args: str, input: bytes | None = None, timeout: float = 60,
              ) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "berth"), *args], input=input,
                              capture_output=True, env=self.env(), timeout=timeout)

    def docker_py(self):
        import docker
        return docker.DockerClient(base_url=self.host, timeout=60)

    def container_ids(self) -> set[str]:
        return {c["Id"] for c in self.api("GET", "/containers/json?all=1").json()}

    def remove_containers(self, ids=None) -> None:
        """Remove them with their anonymous volumes (`docker rm -fv`), which would otherwise
        stay in a shared daemon for a later test's prune to find."""
        for cid in (self.container_ids() if ids is None else ids):
            self.api("DELETE", f"/containers/{cid}?force=1&v=1", timeout=60)

    # cleanup
    def cleanup(self) -> None:
        """Remove every container, stop berthd (and with it the supervisor), then end and
        remove whatever still carries this instance's paths."""
        try:
            if self.proc and self.proc.poll() is None:
                self.remove_containers()
        except OSError:
            pass
        self.stop()
        self._reap_leftovers()
        # a berthd killed, or stopped with containers running, leaves its bridge, veths,
        # netns files and rules: its network state file names them
        from engine.network.manager import sweep
        sweep(self.data_root)
        shutil.rmtree(self.root, ignore_errors=True)

    def remove_cgroup_parent(self) -> None:
        """rmdir the (empty) cgroup parent the containers were made under, in every
        hierarchy; one still in use stays."""
        for controller in CGROUP_ROOT.iterdir():
            try:
                (controller / self.cgroup_parent.lstrip("/")).rmdir()
            except OSError:
                pass

    def _our_pids(self) -> list[int]:
        mine = str(self.root)
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if mine.encode() in f.read():
                        pids.add(int(entry))
            except OSError:
                continue
        for procs in CGROUP_ROOT.glob(f"*{self.cgroup_parent}/*/cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except (OSError, ValueError):
                continue
        pids.discard(os.getpid())
        return sorted(pids)

    def _reap_leftovers(self) -> None:
        for _ in range(3):
            pids = self._our_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                target = line.split()[4]
                if target.startswith(str(self.root) + "/"):
                    mounts.append(target)
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)
        for controller in CGROUP_ROOT.iterdir():
            parent = controller / self.cgroup_parent.lstrip("/")
            if parent.is_dir():
                for child in sorted(parent.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                    try:
                        child.rmdir()
                    except OSError:
                        pass


# fixtures, imported by tests/engine/conftest.py and tests/e2e/conftest.py


@pytest.fixture(scope="session")
def berthd():
    """One private berthd (and its supervisor) for a test session of a directory."""
    daemon = BerthDaemon()
    try:
        daemon.start()
    except BaseException:
        daemon.cleanup()
        raise
    yield daemon
    daemon.cleanup()


@pytest.fixture
def daemon(berthd):
    """The session's berthd; the containers a test makes are removed after it (and the cgroup
    parent their start made, so that BERTH_LEAK_CHECK=test finds nothing)."""
    before = berthd.container_ids()
    yield berthd
    berthd.remove_containers(berthd.container_ids() - before)
    if not berthd.container_ids():
        berthd.remove_cgroup_parent()


class Hijacked:
    """A raw connection to berthd for the hijacked and streamed endpoints (attach, wait, logs),
    where the tests need to see when headers and bytes arrive."""

    def __init__(self, daemon: BerthDaemon, method: str, path: str, *, upgrade: bool = True,
                 body=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(daemon.sock))
        extra = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else ""
        payload = json.dumps(body).encode() if body is not None else b""
        kind = "application/json" if body is not None else "text/plain"
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}"
                          f"Content-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n"
                          .encode() + payload)
        self.buf = b""

    def read_head(self) -> tuple[int, dict]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before headers: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    def read_all(self) -> bytes:
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        data, self.buf = self.buf, b""
        return data

    def read_chunked(self) -> bytes:
        """A chunked body, up to its last chunk (the connection stays open: keep-alive)."""
        while not (self.buf.endswith(b"0\r\n\r\n") and dechunk_complete(self.buf)):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        data, self.buf = self.buf, b""
        return dechunk(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def half_close(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


def demux(data: bytes) -> list[tuple[int, bytes]]:
    """Frames of the multiplexed stream: (stream, payload)."""
    frames = []
    while data:
        assert len(data) >= 8, f"torn frame header {data!r}"
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        frames.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return frames


def dechunk(data: bytes) -> bytes:
    """The body of a chunked HTTP response."""
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def dechunk_complete(data: bytes) -> bool:
    """Whether data holds a whole chunked body, its zero-length last chunk included."""
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return False
        try:
            size = int(size_line, 16)
        except ValueError:
            return False
        if size == 0:
            return rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            return False
        data = rest[size + 2:]
    return False
