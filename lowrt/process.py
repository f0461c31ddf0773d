"""The last steps before a container process runs: limits, identity, privileges, exec.

Shared by the init and by `exec`. Called in the container's namespaces, after pivot_root (init)
or setns (exec). The order is runc's: rlimits; no_new_privs; seccomp early when no_new_privs is
off (loading it then needs CAP_SYS_ADMIN); drop the bounding set; switch user keeping
capabilities; set the other four sets; seccomp late when no_new_privs is on.
"""
from __future__ import annotations

import _signal  # `signal` builds enums at import (7 ms); this is its C half
import os
import stat

from lowrt.config import RLIMITS
from lowrt.errors import LowrtError
from lowrt.linux import capability, lsm, prctl, sigaction


def preload(proc: dict, spec: dict | None = None) -> None:
    """Import now what the process's setup will need once it is inside the container's mount
    namespace, where the host's Python library cannot be found. Only what this config uses."""
    if proc.get("rlimits"):
        from lowrt.linux import rlimit  # noqa: F401
    if proc.get("terminal"):
        import socket  # noqa: F401
        import termios  # noqa: F401

        from lowrt import console  # noqa: F401
    hooks = (spec or {}).get("hooks") or {}
    if hooks.get("createContainer") or hooks.get("startContainer"):
        # the only hooks run from the container's side (prestart, createRuntime, poststart and
        # poststop run in lowrt): `subprocess` costs the init 5-13 ms here, and docker's
        # configs carry a prestart or createRuntime hook (libnetwork's)
        import subprocess  # noqa: F401
    if spec is not None and (spec.get("linux") or {}).get("seccomp"):
        from lowrt.linux import seccomp  # noqa: F401
    if spec is not None and new_netns(spec):
        from lowrt.linux import netdev  # noqa: F401


def new_netns(spec: dict) -> bool:
    """Whether the container gets a network namespace of its own (one not joined by path)."""
    return any(n.get("type") == "network" and not n.get("path")
               for n in (spec.get("linux") or {}).get("namespaces") or [])


def apply_rlimits(rlimits: list[dict]) -> None:
    if not rlimits:
        return
    from lowrt.linux import rlimit  # preloaded
    for r in rlimits:
        soft, hard = r.get("soft", 0), r.get("hard", 0)
        try:
            rlimit.set_rlimit(RLIMITS[r["type"]], _rlim(soft), _rlim(hard))
        except (OSError, ValueError) as e:
            raise LowrtError(f"setrlimit {r['type']} soft={soft} hard={hard}: {e}") from None


def _rlim(value: int) -> int:
    """OCI writes "unlimited" as 2^64-1 (the kernel's RLIM_INFINITY); lowrt takes anything
    from 2^63 up as unlimited."""
    from lowrt.linux.rlimit import RLIM_INFINITY
    return RLIM_INFINITY if value >= 2**63 else value


def set_oom_score_adj(value: int, log_warning) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except PermissionError:
        # Lowering the score needs CAP_SYS_RESOURCE, which a host may withhold from root
        # (this policy is lowrt's: see lowrt/caps.py). Keep the inherited score.
        log_warning(f"oomScoreAdj {value} not applied: lowering it needs CAP_SYS_RESOURCE")
    except OSError as e:
        raise LowrtError(f"write oom_score_adj {value}: {e.strerror.lower()}") from None


def environment(proc: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in proc.get("env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    try:
        with open(passwd, errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def lookup(arg0: str, env: dict[str, str]) -> str:
    """Find the program as Go's exec.LookPath does, with the container's PATH."""
    if "/" in arg0:
        try:
            mode = os.stat(arg0).st_mode
        except OSError as e:
            raise LowrtError(f'exec: "{arg0}": stat {arg0}: {e.strerror.lower()}') from None
        # As runc (Go's LookPath): a directory or a file without any execute bit is refused
        # at create, so engines can tell "cannot execute" (126) from a failing program.
        if stat.S_ISDIR(mode) or not mode & 0o111:
            raise LowrtError(f'exec: "{arg0}": permission denied')
        return arg0
    for d in env.get("PATH", "").split(":"):
        candidate = os.path.join(d or ".", arg0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise LowrtError(f'exec: "{arg0}": executable file not found in $PATH')


def switch_user(user: dict) -> None:
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = list(user.get("additionalGids") or [])
    try:
        os.setgroups(groups)
    except PermissionError:
        # In a user namespace whose setgroups is denied, the group list cannot change.
        if groups:
            raise LowrtError(f"setgroups {groups}: operation not permitted") from None
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise LowrtError(f"set user {uid}:{gid}: {e.strerror.lower()}") from None


def apply_privileges(proc: dict, caps: dict[str, int],
                     seccomp_filter: tuple[bytes, int] | None) -> None:
    """no_new_privs, seccomp, capabilities and user, in the order that lets each succeed."""
    nnp = bool(proc.get("noNewPrivileges"))
    if nnp:
        prctl.set_no_new_privs()
    if seccomp_filter is not None and not nnp:
        _load_seccomp(seccomp_filter)
    capability.drop_bounding(caps["bounding"])
    prctl.set_keepcaps(True)
    switch_user(proc.get("user") or {})
    capability.capset(caps["effective"], caps["permitted"], caps["inheritable"])
    prctl.set_keepcaps(False)
    # The kernel raises an ambient capability only if it is permitted and inheritable; runc
    # skips the others silently (its spec example asks for ambient without inheritable).
    capability.set_ambient(caps["ambient"] & caps["permitted"] & caps["inheritable"])
    if seccomp_filter is not None and nnp:
        _load_seccomp(seccomp_filter)


def _load_seccomp(seccomp_filter: tuple[bytes, int]) -> None:
    from lowrt.linux import seccomp  # preloaded
    program, flags = seccomp_filter
    try:
        seccomp.set_filter(program, flags)
    except OSError as e:
        raise LowrtError(f"load seccomp filter: {e.strerror or e}") from None


def apply_lsm(proc: dict, personality: dict | None, log_warning) -> None:
    """AppArmor profile (for the exec to come) and execution domain. A profile on a host
    without AppArmor is not applied, with a warning (docker only asks where it is enabled)."""
    profile = proc.get("apparmorProfile")
    if profile:
        if lsm.apparmor_enabled():
            lsm.apparmor_change_onexec(profile)
        else:
            log_warning(f"apparmor profile {profile!r} not applied: AppArmor is not enabled on this host")
    if personality:
        domain = personality.get("domain", "LINUX")
        if domain not in lsm.PERSONALITY_DOMAINS:
            raise LowrtError(f"linux.personality.domain {domain!r} is not supported "
                             f"(known: {', '.join(lsm.PERSONALITY_DOMAINS)})")
        lsm.set_personality(lsm.PERSONALITY_DOMAINS[domain])


def chdir_early(cwd: str, where: str) -> bool:
    """chdir to cwd while lowrt still has its capabilities, as runc: an exec as root into a
    container whose cwd only its own user may enter works. Denied, it is tried once more after
    the privileges are set (returns False): the container's user may be let in where the
    runtime is not (a user namespace)."""
    try:
        os.chdir(cwd)
    except PermissionError:
        return False
    except OSError as e:
        raise _chdir_failed(cwd, where, e) from None
    check_cwd(cwd)
    return True


def check_cwd(cwd: str) -> None:
    """After every chdir to a process's cwd: it must be inside the container's root. getcwd(3)
    fails (ENOENT, the kernel's "(unreachable)") for a directory outside it, which is where a
    cwd through a leaked fd to a host directory would be (CVE-2024-21626); runc makes the same
    check."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise LowrtError(f"cwd {cwd!r} is outside the container's root: possible container "
                         f"breakout, refusing") from None


def _chdir_failed(cwd: str, where: str, e: OSError) -> LowrtError:
    return LowrtError(f"chdir to cwd ({cwd!r}) set in {where} failed: {e.strerror.lower()}")


def exec_process(path: str, args: list[str], env: dict[str, str], cwd: str | None,
                 where: str = "config.json") -> None:
    """Become the container's program; everything lowrt opened closes on exec. cwd: where to
    chdir first, if chdir_early could not."""
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError as e:
            raise _chdir_failed(cwd, where, e) from None
        check_cwd(cwd)
    reset_signals()
    try:
        os.execve(path, args, env)
    except OSError as e:
        raise LowrtError(f'exec: "{args[0]}": {e.strerror.lower()}') from None


def reset_signals() -> None:
    """Every signal to its default disposition, none blocked. exec keeps ignored signals ignored
    and the mask as it was, and lowrt inherits both from whoever started the chain above it
    (nohup ignores SIGHUP; Python ignores SIGPIPE and SIGXFSZ): a shell cannot even trap a
    signal that was ignored when it started. crun resets them for the same reason."""
    for sig in range(1, _signal.NSIG):
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except OSError:  # glibc's own 32 and 33 (SIGKILL and SIGSTOP cannot change)
            if sig not in (_signal.SIGKILL, _signal.SIGSTOP):
                sigaction.set_default(sig)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def fix_stdio_owner(user: dict) -> None:
    """Give stdio to the process's user, so it can reopen /proc/self/fd/N (runc does the same).

    Only the owner changes: a terminal keeps the group its devpts mount gave it (tty, gid=5 in
    the default config). /dev/null is left alone: it is shared with everyone.
    """
    import stat as st
    uid = user.get("uid", 0)
    null_rdev = os.makedev(1, 3)
    for fd in (0, 1, 2):
        try:
            s = os.fstat(fd)
            if s.st_uid == uid or st.S_ISCHR(s.st_mode) and s.st_rdev == null_rdev:
                continue
            os.fchown(fd, uid, -1)
        except OSError:  # closed, or owned by an id this user namespace does not map
            pass
