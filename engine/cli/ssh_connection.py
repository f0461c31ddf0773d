"""ssh:// hosts for the berth CLI, as the docker CLI reaches them."""
from __future__ import annotations

import socket
import subprocess
import tempfile
from urllib.parse import urlsplit

from .transport import TransportError


class SSHConnection:
    """ssh to the host running `berth system dial-stdio`, which bridges its stdin and stdout to
    the daemon's socket there (a path in the URL is passed as that berth's -H, as the docker
    CLI does). One ssh process a connection, as the docker CLI's; ssh's own errors (host key,
    authentication) are kept and shown if the daemon does not answer."""

    def __init__(self, host: str):
        parts = urlsplit(host)
        if not parts.hostname:
            raise TransportError(f"invalid host {host}: no host name")
        argv = ["ssh", "-T", "-o", "ConnectTimeout=30"]
        if parts.username:
            argv += ["-l", parts.username]
        if parts.port:
            argv += ["-p", str(parts.port)]
        argv += ["--", parts.hostname, "berth"]
        if parts.path and parts.path != "/":
            argv += ["-H", f"unix://{parts.path}"]
        argv += ["system", "dial-stdio"]
        self.host = host
        self._sock, theirs = socket.socketpair()
        self._errors = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs,
                                          stderr=self._errors)
        except OSError as e:
            self._sock.close()
            raise TransportError(f"cannot run ssh for {host}: {e.strerror or e}") from None
        finally:
            theirs.close()

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def makefile(self, mode: str = "rb"):
        return self._sock.makefile(mode)

    def fileno(self) -> int:
        return self._sock.fileno()

    def failure(self) -> str:
        """What ssh said, once it has exited (empty while it runs)."""
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return ""
        self._errors.seek(0)
        text = self._errors.read().decode(errors="replace").strip()
        return f"{text} (ssh exited with {self._proc.returncode})" if text else \
            f"ssh exited with {self._proc.returncode}"

    def close(self) -> None:
        self._sock.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._errors.close()
