"""berthd as a service: the sockets systemd hands over (-H fd://, tested by handing berthd a
listening socket with LISTEN_FDS as systemd would), readiness notification, the unix socket's
mode and group, and the unit files (systemd-analyze verify; no systemd runs as pid 1 here)."""
from __future__ import annotations

import grp
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers.engine_daemon import VENV_BIN, BerthDaemon

UNITS = Path(__file__).resolve().parents[2] / "engine" / "systemd_units"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_socket_activation_serves_the_socket_systemd_passed_and_notifies_readiness(short_tmp):
    sock_path = short_tmp / "activated.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(sock_path))
    listening.listen()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_tmp / "notify.sock"))
    notify.settimeout(60)
    # as systemd: the socket at fd 3, LISTEN_FDS=1 and LISTEN_PID naming berthd itself (the
    # shell's pid, which exec hands on to berthd)
    daemon = BerthDaemon(hosts=("fd://",), prefix=(
        "sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=berthd.socket exec "$0" "$@"'))
    daemon.sock, daemon.host = sock_path, f"unix://{sock_path}"

    def on_fd_3():
        os.dup2(listening.fileno(), 3)
    try:
        daemon.start(preexec_fn=on_fd_3, pass_fds=(3,),
                     env={**os.environ, "NOTIFY_SOCKET": str(short_tmp / "notify.sock")})
        assert notify.recv(100) == b"READY=1"
        assert daemon.api("GET", "/_ping").body == b"OK"
        assert "API listening on unix://" in daemon.log.read_text()
        p = daemon.docker("run", "--rm", "busybox", "echo", "activated")
        assert (p.returncode, p.stdout) == (0, b"activated\n"), p.stderr
        for var in ("LISTEN_PID", "LISTEN_FDS"):   # not handed on to the supervisor
            environ = Path(f"/proc/{daemon.supervisor_pid()}/environ").read_bytes()
            assert var.encode() + b"=" not in environ
        daemon.stop()
        assert notify.recv(100) == b"STOPPING=1"
    finally:
        daemon.cleanup()
        listening.close()
        notify.close()


def test_a_tcp_socket_from_systemd_is_not_served_without_tls(short_tmp):
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()

    def on_fd_3():
        os.dup2(listening.fileno(), 3)
    try:
        p = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"',
                            str(VENV_BIN / "berthd"), "-H", "fd://", "--data-root",
                            str(short_tmp / "d"), "--exec-root", str(short_tmp / "x")],
                           capture_output=True, timeout=60, preexec_fn=on_fd_3, pass_fds=(3,))
    finally:
        listening.close()
    assert p.returncode == 1
    assert b"refusing to serve fd:// (a TCP socket) without --tlsverify" in p.stderr
    assert not (short_tmp / "x" / "supervisor.sock").exists()


def test_fd_without_sockets_from_systemd_is_refused(short_tmp):
    p = subprocess.run([str(VENV_BIN / "berthd"), "-H", "fd://", "--data-root",
                        str(short_tmp / "d"), "--exec-root", str(short_tmp / "x")],
                       capture_output=True, timeout=60)
    assert p.returncode == 1
    assert b"no sockets found via socket activation" in p.stderr
    assert not (short_tmp / "x" / "supervisor.sock").exists()


def test_unix_socket_is_0660_and_owned_by_the_group(short_tmp):
    group = grp.getgrgid(1).gr_name       # a system group every Debian has ("daemon")
    daemon = BerthDaemon(extra_args=("-G", group))
    try:
        daemon.start()
        st = os.stat(daemon.sock)
        assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (0, 1)
    finally:
        daemon.cleanup()


def test_a_named_group_that_does_not_exist_is_refused(short_tmp):
    daemon = BerthDaemon(extra_args=("-G", "no-such-group-here"))
    with pytest.raises(RuntimeError, match="group 'no-such-group-here' not found"):
        daemon.start()
    assert daemon.proc.returncode == 1
    daemon.cleanup()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_unit_files_pass_systemd_analyze_verify(tmp_path):
    """As installed: ExecStart names the berthd the README links to /usr/local/bin."""
    for name in ("berthd.service", "berthd.socket"):
        text = (UNITS / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/local/bin/berthd",
                                                  str(VENV_BIN / "berthd")))
    p = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "berthd.service"),
                        str(tmp_path / "berthd.socket")], capture_output=True, text=True,
                       timeout=60)
    assert (p.returncode, p.stderr) == (0, "")
    service = (UNITS / "berthd.service").read_text()
    assert "ExecStart=/usr/local/bin/berthd -H fd://" in service
    assert "KillMode=process" in service and "Type=notify" in service
