"""Detach keys (`--detach-keys`, default ctrl-p,ctrl-q): typed in a terminal session they end it
and leave the container (or exec'd process) running. Typed in a real terminal (tmux) through the
docker CLI and the berth CLI, and sent on a raw attach, where berthd itself must see them (the
docker CLI also watches its own terminal, so a CLI test alone would not show berthd's part)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.helpers.engine_daemon import DOCKER, VENV_BIN, Hijacked

needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")


class Tmux:
    """A tmux server of the test's own, running one command in a 120x40 window."""

    def __init__(self, name: str, command: str, env: dict):
        self.socket = f"bt-{name}-{os.getpid()}"
        self.env = env
        self._tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, env=self.env, timeout=30, check=True).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the screen:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


def running(daemon, name: str) -> bool:
    return daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == b"true"


@needs_tmux
@pytest.mark.parametrize("cli", ["docker", "berth"])
@pytest.mark.parametrize("flag, keys", [(None, ("C-p", "C-q")),
                                        ("ctrl-x,x", ("C-x", "x"))])
def test_detach_keys_in_a_terminal_leave_the_container_running(daemon, cli, flag, keys):
    program = DOCKER if cli == "docker" else str(VENV_BIN / "berth")
    name = f"detach-{cli}-{'custom' if flag else 'default'}"
    extra = f"--detach-keys {flag} " if flag else ""
    tmux = Tmux(name, f"{program} run -it {extra}--name {name} busybox sh; "
                      "echo CLIENT-EXIT=$?; sleep 60", daemon.env())
    try:
        tmux.wait_for("/ #")
        tmux.keys("echo typed-$((40+2))", "Enter")
        tmux.wait_for("typed-42")
        tmux.keys(*keys)
        tmux.wait_for("CLIENT-EXIT=0")
        assert running(daemon, name)
        # the shell got none of the keys: it still reads a clean line
        p = daemon.docker("exec", name, "sh", "-c", "cat /proc/1/cmdline")
        assert p.returncode == 0
    finally:
        tmux.kill()
        daemon.docker("rm", "-f", name)


def _tty_container(daemon, name: str) -> str:
    p = daemon.docker("run", "-dit", "--name", name, "busybox", "sh")
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


@pytest.mark.parametrize("query, keys", [("", b"\x10\x11"),
                                         ("&detachKeys=ctrl-x,y", b"\x18y")])
def test_berthd_ends_a_tty_attach_on_the_detach_keys(daemon, query, keys):
    cid = _tty_container(daemon, "detach-raw" + ("-custom" if query else ""))
    conn = Hijacked(daemon, "POST", f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1"
                                    f"&stderr=1{query}")
    try:
        assert conn.read_head()[0] == 101
        conn.send(b"echo raw-$((1+1))\n")
        while b"raw-2" not in conn.buf:
            chunk = conn.sock.recv(65536)
            assert chunk, conn.buf
            conn.buf += chunk
        conn.send(keys)
        conn.read_all()                 # berthd closes the session
    finally:
        conn.close()
    assert running(daemon, cid)


def test_invalid_detach_keys_are_refused(daemon):
    cid = _tty_container(daemon, "detach-invalid")
    r = daemon.api("POST", f"/containers/{cid}/attach?stream=1&stdin=1&detachKeys=ctrl-1")
    assert r.status == 400 and b"Invalid detach keys (ctrl-1) provided" in r.body
    r = daemon.api("POST", f"/containers/{cid}/exec",
                   {"Cmd": ["sh"], "Tty": True, "AttachStdin": True, "DetachKeys": "ctrl-"})
    assert r.status == 400 and b"Invalid detach keys (ctrl-) provided" in r.body


def test_berthd_ends_an_exec_session_on_its_detach_keys(daemon):
    cid = _tty_container(daemon, "detach-exec")
    r = daemon.api("POST", f"/containers/{cid}/exec",
                   {"Cmd": ["sh", "-c", "sleep 300"], "Tty": True, "AttachStdin": True,
                    "AttachStdout": True, "DetachKeys": "ctrl-a,b"})
    assert r.status == 201, r
    eid = r.json()["Id"]
    conn = Hijacked(daemon, "POST", f"/exec/{eid}/start", body={"Tty": True})
    try:
        assert conn.read_head()[0] == 101
        started = time.monotonic()
        conn.send(b"\x01b")
        conn.read_all()
        assert time.monotonic() - started < 5     # not after the exec's output timeout
    finally:
        conn.close()
    assert daemon.api("GET", f"/exec/{eid}/json").json()["Running"]
