"""Signal names and numbers as runc takes them, and forwarding to a process lowrt waits on.

The table is Linux's numbering (the same on x86_64 and arm64); `signal` is not imported because
it builds enums at import, which costs 7 ms here.
"""
from __future__ import annotations

import _signal
import os

from lowrt.errors import LowrtError

NUMBERS = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGIOT": 6,
    "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12,
    "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCLD": 17,
    "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23,
    "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29,
    "SIGPOLL": 29, "SIGPWR": 30, "SIGSYS": 31,
}
SIGRTMIN = _signal.SIGRTMIN
SIGRTMAX = _signal.SIGRTMAX
# What a foreground `run`/`exec` passes on to the container's process (not SIGCHLD, which is
# lowrt's own business, nor SIGWINCH, which the console relay turns into a resize).
FORWARDED = sorted({n for n in NUMBERS.values()} - {9, 19, 17, 28})


def parse(raw: str) -> int:
    """A number, or a name with or without SIG, any case: "9", "KILL", "sigterm", "RTMIN+3"."""
    if raw.isdigit():
        return int(raw)
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in NUMBERS:
        return NUMBERS[name]
    base, plus, offset = name.partition("+")
    if base in ("SIGRTMIN", "SIGRTMAX") and (not plus or offset.isdigit()):
        n = (SIGRTMIN if base == "SIGRTMIN" else SIGRTMAX) + (int(offset) if plus else 0)
        if SIGRTMIN <= n <= SIGRTMAX:
            return n
    raise LowrtError(f'unknown signal "{raw}"')


def exit_code(status: int) -> int:
    """A shell's view of a wait status: the exit code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Forwarder:
    """Pass the signals lowrt gets on to the container's process.

    Installed before the process exists, so that nothing sent to lowrt in between is lost:
    what arrives before the pid is known is delivered once it is.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []

    def install(self) -> None:
        for s in FORWARDED:
            try:
                _signal.signal(s, self._handle)
            except (OSError, ValueError):
                pass

    def _handle(self, signum, _frame) -> None:
        if self.pid:
            self._send(signum)
        else:
            self.pending.append(signum)

    def _send(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def wait(self, pid: int) -> int:
        """Reap every child (lowrt is a subreaper) until pid exits; returns its exit code.
        The handlers stay installed: a signal during the cleanup after goes nowhere."""
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))
        while True:
            try:
                wpid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                raise LowrtError(f"container process {pid} is not lowrt's child") from None
            if wpid == pid:
                return exit_code(status)
