"""berth-shim's command line: `start` (fork the daemon) and `delete` (clean up after a dead one;
one still running is asked to shut down first, and killed if it will not).

    berth-shim --namespace NS --id ID --bundle DIR --socket PATH --runtime BIN
               --runtime-root DIR [--debug] start
    berth-shim --namespace NS --id ID --bundle DIR --runtime BIN --runtime-root DIR delete

The options are parsed by hand: the daemon is forked from this process and keeps everything it
has imported, and argparse alone would cost each container's shim ~0.7 MB and ~10 ms.

BERTH_SHIM_RUNTIME_TIMEOUT (seconds, default 60), read when the command starts: how long one
runtime command may run before it is killed and its request answered with an error.
"""
from __future__ import annotations

import os
import sys

USAGE = ("usage: berth-shim --namespace NS --id ID --bundle DIR [--socket PATH] --runtime BIN "
         "--runtime-root DIR [--debug] start|delete")
TIMEOUT_ENV = "BERTH_SHIM_RUNTIME_TIMEOUT"
LIVE_SHIM_ANSWER = 1.0      # delete: how long a live shim has to answer Shutdown
LIVE_SHIM_EXIT = 5.0        # ... and then to exit
_VALUED = {"--namespace": "namespace", "--id": "id", "--bundle": "bundle", "--socket": "socket",
           "--runtime": "runtime", "--runtime-root": "runtime_root"}


class UsageError(Exception):
    pass


def parse(argv: list[str]) -> tuple[dict, str]:
    opts: dict = {"debug": False, "namespace": "default"}
    verb = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _VALUED:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"option {name} needs a value")
                value = argv[i]
            opts[_VALUED[name]] = value
        elif arg == "--debug":
            opts["debug"] = True
        elif arg in ("-h", "--help"):
            raise UsageError("")
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        elif verb is None:
            verb = arg
        else:
            raise UsageError(f"unexpected argument {arg}")
        i += 1
    if verb not in ("start", "delete"):
        raise UsageError(f"unknown command {verb}" if verb else "no command given")
    needed = ["id", "bundle", "runtime", "runtime_root"] + (["socket"] if verb == "start" else [])
    missing = [n for n in needed if not opts.get(n)]
    if missing:
        raise UsageError("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return opts, verb


def runtime_timeout() -> float:
    """The limit on one runtime command: BERTH_SHIM_RUNTIME_TIMEOUT, or the default."""
    from shim.runtime import TIMEOUT
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: not a positive number of seconds")
    return value


def _fail(msg: str, code: int = 1) -> int:
    sys.stderr.write(f"berth-shim: {msg}\n")
    return code


def _socket_in_use(path: str) -> bool:
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start(opts: dict) -> int:
    from shim.runtime import find_binary
    bundle = os.path.abspath(opts["bundle"])
    if not os.path.isdir(bundle):
        return _fail(f"bundle {bundle}: not a directory")
    try:
        runtime = find_binary(opts["runtime"])
        timeout = runtime_timeout()
    except ValueError as e:
        return _fail(str(e))
    sock = os.path.abspath(opts["socket"])
    if len(sock.encode()) > 107:
        return _fail(f"socket path {sock} is longer than a unix socket address allows (107 bytes)")
    if os.path.exists(sock) and _socket_in_use(sock):
        return _fail(f"socket {sock} is in use by another shim")
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    os.makedirs(opts["runtime_root"], exist_ok=True)

    from shim.daemon import Options, serve
    options = Options(namespace=opts["namespace"], id=opts["id"], bundle=bundle, socket=sock,
                      runtime=runtime, runtime_root=os.path.abspath(opts["runtime_root"]),
                      runtime_timeout=timeout, debug=opts["debug"])
    ready_r, ready_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        code = 1
        try:
            code = serve(options, ready_w)
        finally:
            os._exit(code)
    os.close(ready_w)
    answer = bytearray()
    while chunk := os.read(ready_r, 4096):
        answer += chunk
    os.close(ready_r)
    if answer != b"ok":
        os.waitpid(pid, 0)
        detail = answer.decode(errors="replace").removeprefix("error: ") or "it exited at once"
        return _fail(f"shim for {opts['id']} did not start: {detail}")
    sys.stdout.write(sock + "\n")
    return 0


def _shim_socket(bundle: str) -> str:
    try:
        with open(os.path.join(bundle, "address")) as f:
            return f.read().strip().removeprefix("unix://")
    except OSError:
        return ""


def _live_shim(bundle: str, cid: str) -> int:
    """The pid of a shim still serving bundle, or 0. shim.pid alone could name a reused pid: the
    process must also have been started for cid and work in the bundle (the daemon moves
    there); a zombie has neither."""
    try:
        with open(os.path.join(bundle, "shim.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return 0
    started_for = (b"\0--id\0" + cid.encode() + b"\0") in cmdline or \
        (b"\0--id=" + cid.encode() + b"\0") in cmdline
    return pid if started_for and cwd == os.path.realpath(bundle) else 0


def _wait_gone(pid: int, timeout: float) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _stop_live_shim(bundle: str, cid: str) -> str:
    """containerd runs `shim delete` only once the shim is gone. If ours still runs, deleting the
    container under it would leave it serving a container that no longer exists, forever: ask
    it to shut down first, and kill it if it does not answer or does not go. Returns what was
    done, or "" when no shim was running."""
    import signal

    from shim.client import ShimClient
    from shim.errors import ShimError
    pid = _live_shim(bundle, cid)
    if not pid:
        return ""
    try:
        with ShimClient(_shim_socket(bundle), timeout=LIVE_SHIM_ANSWER) as client:
            client.shutdown(cid, now=True)
        if _wait_gone(pid, LIVE_SHIM_EXIT):
            return f"shim {pid} was still running: it was shut down"
        why = f"did not exit within {LIVE_SHIM_EXIT:g}s of its shutdown"
    except ShimError as e:
        why = f"did not shut down: {e}"
    if _live_shim(bundle, cid) == pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, LIVE_SHIM_EXIT)
    return f"shim {pid} was still running and {why}: it was killed"


def delete(opts: dict) -> int:
    """After a shim died: remove the container from the runtime, unmount, report its exit.
    A shim still alive is stopped first (_stop_live_shim)."""
    import json
    import time

    from shim.runtime import Runtime, RuntimeFailure, find_binary
    bundle = os.path.abspath(opts["bundle"])
    cid = opts["id"]
    try:
        binary = find_binary(opts["runtime"])
        timeout = runtime_timeout()
    except ValueError as e:
        return _fail(str(e))
    stopped = _stop_live_shim(bundle, cid)
    if stopped:
        sys.stderr.write(f"berth-shim: container {cid}: {stopped}\n")
    from shim.loop import Loop
    from shim.reaper import Reaper
    runtime = Runtime(binary, os.path.abspath(opts["runtime_root"]),
                      os.path.join(bundle, "log.json"), Reaper(Loop()), timeout=timeout)
    try:
        runtime.delete(cid, force=True)
    except RuntimeFailure as e:
        if "not exist" not in str(e):
            return _fail(f"deleting container {cid}: {e}")
    rootfs = os.path.join(bundle, "rootfs")
    from shim import linux
    try:
        linux.unmount_all(rootfs)
    except OSError as e:
        return _fail(f"unmounting {rootfs}: {e}")
    sock = _shim_socket(bundle)
    try:
        if sock and not _socket_in_use(sock):
            os.unlink(sock)
    except OSError:
        pass
    for name in ("shim.pid", "address"):
        try:
            os.unlink(os.path.join(bundle, name))
        except FileNotFoundError:
            pass
    try:
        with open(os.path.join(bundle, "init.exit")) as f:
            record = json.load(f)
        out = {"pid": int(record["pid"]), "exit_status": int(record["exit_status"]),
               "exited_at": int(record["exited_at"])}
    except (OSError, ValueError, KeyError, TypeError):
        try:
            with open(os.path.join(bundle, "init.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = 0
        reason = f"{stopped} before" if stopped else "the shim died before"
        out = {"pid": pid, "exit_status": 255, "exited_at": time.time_ns(),
               "reason": f"{reason} the container's exit was recorded"}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        opts, verb = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        if str(e):
            sys.stderr.write(f"berth-shim: {e}\n")
        sys.stderr.write(USAGE + "\n")
        return 2 if str(e) else 0
    return start(opts) if verb == "start" else delete(opts)


if __name__ == "__main__":
    sys.exit(main())
