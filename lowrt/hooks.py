"""OCI lifecycle hooks: each runs with the container's state as JSON on its stdin.

Every failure but a poststop hook's fails the operation; a failed poststop hook is logged and
the rest go on (the OCI runtime spec says so, and since runtime-spec 1.1 a failed poststart hook
stops the container, as runc 1.2 does).
"""
from __future__ import annotations

import os

from lowrt import fastjson
from lowrt.errors import LowrtError

FATAL = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart")


def hook_state(cid: str, pid: int, status: str, bundle: str, spec: dict) -> dict:
    state = {"ociVersion": spec.get("ociVersion", "1.0.2-dev"), "id": cid, "status": status,
             "pid": pid, "bundle": bundle}
    if spec.get("annotations"):
        state["annotations"] = spec["annotations"]
    return state


def run(kind: str, spec: dict, state: dict, log=None,
        inherit: dict[str, str] | None = None) -> None:
    """Run every hook of kind, in order; one without env of its own gets inherit (default:
    lowrt's environment)."""
    import subprocess

    data = fastjson.dumps(state, compact=True).encode()
    for i, hook in enumerate((spec.get("hooks") or {}).get(kind) or []):
        path = hook["path"]
        args = hook.get("args") or [path]
        env = hook.get("env")
        timeout = hook.get("timeout")
        if timeout is not None and timeout <= 0:
            raise LowrtError(f"{kind} hook #{i} ({path}): timeout must be positive, got {timeout}")
        # the messages are runc's (Go's), word for word: callers match on them
        try:
            proc = subprocess.run(args, executable=path, input=data, capture_output=True,
                                  env=inherit if env is None else _env(env),
                                  timeout=timeout, close_fds=True)
            failure = None if proc.returncode == 0 else (
                f"{_exit_reason(proc.returncode)}, stdout: {proc.stdout.decode(errors='replace')}"
                f", stderr: {proc.stderr.decode(errors='replace')}")
        except subprocess.TimeoutExpired:
            failure = f"hook ran past specified timeout of {timeout:.1f}s"
        except OSError as e:
            failure = f"fork/exec {path}: {e.strerror.lower() if e.strerror else e}"
        if failure is None:
            continue
        msg = f"error running {kind} hook #{i}: {failure}"
        if kind in FATAL:
            raise LowrtError(msg)
        if log is not None:
            log.warning(msg)


def _exit_reason(returncode: int) -> str:
    """As Go's exec.ExitError says it: "exit status 3", "signal: bad system call"."""
    if returncode >= 0:
        return f"exit status {returncode}"
    import signal
    return f"signal: {(signal.strsignal(-returncode) or str(-returncode)).lower()}"


def _env(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def has(spec: dict, *kinds: str) -> bool:
    hooks = spec.get("hooks") or {}
    return any(hooks.get(k) for k in kinds)


def run_cwd(kind: str, spec: dict, state: dict, cwd: str, log=None) -> None:
    """Run hooks with cwd as working directory (createContainer hooks see the rootfs there)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        run(kind, spec, state, log)
    finally:
        os.chdir(old)
