"""The OCI runtime's command line (runc's, which lowrt and crun share), run from the shim.

Each command runs to completion before the shim answers the request that needed it (runc's own
commands are short; a container's processes outlive them and are reaped separately). Errors come
from the runtime's `--log` file, where runc and lowrt write `{"level":"error","msg":…}`; only
what this command appended is read, so an old error is never reported again.
"""
from __future__ import annotations

import _signal  # see shim/reaper.py
import os
from _collections_abc import Callable  # see shim/loop.py

from shim.reaper import Reaper, RuntimeTimeout

TIMEOUT = 60.0              # for one runtime command; BERTH_SHIM_RUNTIME_TIMEOUT overrides it
_F_DUPFD_CLOEXEC = 1030
# every signal a runtime gets at its default, whatever the shim inherited (an ignored SIGHUP
# under nohup, Python's ignored SIGPIPE and SIGXFSZ). glibc keeps its own 32 and 33 out of
# reach, and its posix_spawn hands them on ignored: lowrt resets those itself.
_DEFAULT_SIGNALS = tuple(s for s in _signal.valid_signals()
                         if s not in (_signal.SIGKILL, _signal.SIGSTOP))


class RuntimeFailure(Exception):
    """A runtime command failed; str() is the runtime's own message when it gave one."""


def find_binary(name: str) -> str:
    """An absolute path for name (searched on PATH when it has no slash), or ValueError."""
    if "/" in name:
        path = os.path.abspath(name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
        raise ValueError(f"runtime {name}: not an executable file")
    default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for d in os.environ.get("PATH", default).split(":"):
        path = os.path.join(d or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    raise ValueError(f"runtime {name}: not found on PATH")


def _high_fd(fd: int) -> int:
    import fcntl
    return fcntl.fcntl(fd, _F_DUPFD_CLOEXEC, 10)


def spawn(argv: list[str], fds: dict[int, int], env: dict[str, str] | None = None) -> int:
    """Start argv with fds mapped (target fd -> our fd); every other fd of ours stays closed
    (they are all O_CLOEXEC). Signals we ignore are reset, so the program sees defaults."""
    # Move sources out of the way of the targets first, so that dup2(4 -> 3) cannot clobber an
    # fd 3 that is itself the source of target 5.
    temps = [_high_fd(src) for src in fds.values()]
    try:
        actions = [(os.POSIX_SPAWN_DUP2, tmp, target) for tmp, target in zip(temps, fds)]
        return os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                              file_actions=actions, setsigmask=(),
                              setsigdef=_DEFAULT_SIGNALS)
    finally:
        for tmp in temps:
            os.close(tmp)


class Runtime:
    def __init__(self, binary: str, root: str, log_path: str, reaper: Reaper,
                 debug: bool = False, timeout: float = TIMEOUT) -> None:
        self.binary = binary
        self.timeout = timeout
        self.root = root
        self.log_path = log_path
        self.reaper = reaper
        self.debug = debug
        self.name = os.path.basename(binary)

    def run(self, *args: str, stdio: tuple[int, int, int] | None = None,
            capture: bool = False, meanwhile: Callable[[], None] | None = None) -> bytes:
        """Run one runtime command and return its stdout (when capture) or raise RuntimeFailure.

        stdio: the fds the runtime gets as 0, 1, 2 (for create/exec: the container's own);
        otherwise /dev/null in, stdout captured or /dev/null, stderr captured for errors.
        meanwhile: work of the caller's to do while the command runs (the shim would only wait),
        rather than after it, when the answer to the request waits on it."""
        argv = [self.binary, "--root", self.root, "--log", self.log_path, "--log-format", "json"]
        if self.debug:
            argv.append("--debug")
        argv += args
        try:
            log_start = os.stat(self.log_path).st_size
        except FileNotFoundError:
            log_start = 0
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        out_r = out_w = -1
        try:
            if stdio is None:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                stdio = (null, out_w if capture else null, out_w)
            try:
                pid = spawn(argv, {0: stdio[0], 1: stdio[1], 2: stdio[2]})
            except OSError as e:
                raise RuntimeFailure(f"{self.name} {args[0]}: cannot run {self.binary}: "
                                    f"{e.strerror.lower()}") from None
            if out_w >= 0:
                os.close(out_w)
                out_w = -1
            if meanwhile is not None:
                meanwhile()
            try:
                status, output = self.reaper.wait_for(pid, self.timeout, out_r)
            except RuntimeTimeout as e:
                raise RuntimeFailure(f"{self.name} {args[0]}: {e}") from None
        finally:
            os.close(null)
            for fd in (out_r, out_w):
                if fd >= 0:
                    os.close(fd)
        if status != 0:
            message = self._logged_error(log_start)
            if not message and not capture and output:
                message = output.decode(errors="replace").strip().splitlines()[-1]
            raise RuntimeFailure(message or f"{self.name} {args[0]} exited with status {status}")
        return output

    def _logged_error(self, start: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                lines = f.read().splitlines()
        except OSError:
            return ""
        import json
        message = ""
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                message = str(entry.get("msg", "")).strip()
        return message

    # -- the commands -----------------------------------------------------------------------
    def create(self, cid: str, bundle: str, pid_file: str, stdio: tuple[int, int, int],
               console_socket: str | None = None,
               meanwhile: Callable[[], None] | None = None) -> None:
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        self.run(*args, cid, stdio=stdio, meanwhile=meanwhile)

    def start(self, cid: str) -> None:
        self.run("start", cid)

    def exec(self, cid: str, process_file: str, pid_file: str, stdio: tuple[int, int, int],
             console_socket: str | None = None) -> None:
        args = ["exec", "--process", process_file, "--detach", "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        self.run(*args, cid, stdio=stdio)

    def kill(self, cid: str, sig: int, all_: bool = False) -> None:
        self.run("kill", *(["--all"] if all_ else []), cid, str(sig))

    def delete(self, cid: str, force: bool = False) -> None:
        self.run("delete", *(["--force"] if force else []), cid)

    def pause(self, cid: str) -> None:
        self.run("pause", cid)

    def resume(self, cid: str) -> None:
        self.run("resume", cid)

    def update(self, cid: str, resources_file: str) -> None:
        self.run("update", "--resources", resources_file, cid)

    def ps(self, cid: str) -> list[int]:
        import json
        out = self.run("ps", "--format", "json", cid, capture=True)
        pids = json.loads(out or b"null") or []
        return [int(p) for p in pids]
