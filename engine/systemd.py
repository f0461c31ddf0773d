"""systemd's two interfaces with a service berthd speaks: socket activation (the listening
sockets of berthd.socket, passed as fds from 3 on, for -H fd://) and readiness notification
(Type=notify: READY=1 once the API is served, STOPPING=1 at shutdown)."""
from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


def systemd_sockets(environ=os.environ) -> list[tuple[str, socket.socket]]:
    """The listening sockets systemd passed (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), as
    (name, socket); the variables are removed so that children do not take them too."""
    try:
        pid = int(environ.get("LISTEN_PID", ""))
        count = int(environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    if pid != os.getpid() or count <= 0:
        return []
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    out = []
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        name = names[i] if i < len(names) and names[i] else str(fd)
        out.append((name, socket.socket(fileno=fd)))
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(var, None)
    return out


def pick_systemd_sockets(which: str, passed: list[tuple[str, socket.socket]]
                         ) -> list[socket.socket]:
    """fd:// takes every socket systemd passed; fd://N the one at fd N, fd://NAME the ones
    named so (FileDescriptorName=)."""
    if not passed:
        raise ValueError("no sockets found via socket activation: make sure the service was "
                         "started by systemd (fd:// needs LISTEN_FDS and LISTEN_PID)")
    if not which:
        return [s for _, s in passed]
    picked = [s for name, s in passed if name == which or str(s.fileno()) == which]
    if not picked:
        raise ValueError(f"fd://{which}: no socket of that number or name was passed "
                         f"(passed: {', '.join(n for n, _ in passed)})")
    return picked


def notify(state: str) -> None:
    """Tell systemd the service's state, when it runs us with NOTIFY_SOCKET; nothing else."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):              # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError:
        pass                                 # systemd gone: nothing to tell
