"""A bundle's config.json: read, checked, and its relative paths made absolute.

Every check names what is wrong and where, so that `create` fails before it makes anything.
"""
from __future__ import annotations

import os

from lowrt import fastjson
from lowrt.errors import LowrtError

CONFIG = "config.json"
# OCI namespace type -> its link's name under /proc/PID/ns/
NS_LINKS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}
_IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced"))
# The RLIMIT_* numbers of Linux (asm-generic/resource.h), the same on every architecture lowrt
# runs on; importing `resource` only for them costs more than a whole mount.
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


def load(bundle: str) -> dict:
    """Read and check <bundle>/config.json; root.path comes back absolute."""
    path = os.path.join(bundle, CONFIG)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise LowrtError(f"open {path}: {e.strerror.lower()}") from None
    try:
        spec = fastjson.loads(raw)
    except ValueError as e:
        raise LowrtError(f"parse {path}: {e}") from None
    if not isinstance(spec, dict):
        raise LowrtError(f"parse {path}: the config must be a JSON object")
    validate(spec, bundle)
    return spec


def _require(cond: object, msg: str) -> None:
    if not cond:
        raise LowrtError(msg)


def validate(spec: dict, bundle: str) -> None:
    root = spec.get("root")
    _require(isinstance(root, dict) and root.get("path"), "root.path must be set in config.json")
    rootfs = os.path.normpath(os.path.join(bundle, root["path"]))
    if not os.path.isdir(rootfs):
        reason = "not a directory" if os.path.exists(rootfs) else "no such file or directory"
        raise LowrtError(f"invalid rootfs: stat {rootfs}: {reason}")
    root["path"] = os.path.realpath(rootfs)
    validate_process(spec.get("process"))
    linux = spec.setdefault("linux", {})
    _require(isinstance(linux, dict), "linux must be an object in config.json")
    kinds = _validate_namespaces(linux.get("namespaces") or [])
    if "user" not in kinds and (linux.get("uidMappings") or linux.get("gidMappings")):
        raise LowrtError("user namespace mappings specified, but the config has no user namespace")
    if kinds.get("user") == "" and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise LowrtError("a new user namespace needs linux.uidMappings and linux.gidMappings")
    # Without a mount namespace the container runs in the caller's: its mounts are made there
    # and the init chroots into the rootfs (lowrt/rootfs.py), as runc and crun do. Masking and
    # read-only paths would then hide the caller's own files: refused, as runc refuses them.
    if "mount" not in kinds and (linux.get("maskedPaths") or linux.get("readonlyPaths")):
        raise LowrtError("unable to restrict sys entries without a private MNT namespace")
    if spec.get("hostname") and "uts" not in kinds:
        raise LowrtError("unable to set hostname without a private UTS namespace")
    if spec.get("domainname") and "uts" not in kinds:
        raise LowrtError("unable to set domainname without a private UTS namespace")
    if linux.get("timeOffsets") and "time" not in kinds:
        raise LowrtError("linux.timeOffsets needs a time namespace")
    for m in spec.get("mounts") or []:
        dest = m.get("destination") if isinstance(m, dict) else None
        _require(isinstance(dest, str) and dest.startswith("/"),
                 f"invalid mount {m!r}: mount destination not absolute")
    _validate_sysctl(linux.get("sysctl") or {}, kinds)
    if linux.get("intelRdt"):
        raise LowrtError("linux.intelRdt is not supported by lowrt")
    _validate_hooks(spec.get("hooks") or {})


def check_rlimits(rlimits: list[dict]) -> None:
    for r in rlimits:
        if r.get("type") not in RLIMITS:
            raise LowrtError(f"unknown rlimit type {r.get('type')!r}")


def validate_process(proc: object) -> None:
    """runc's checks on a process (the config's, or exec's --process)."""
    _require(isinstance(proc, dict), "process property must not be empty")
    cwd = proc.get("cwd")
    _require(cwd, "cwd property must not be empty")
    _require(isinstance(cwd, str) and cwd.startswith("/"), f"cwd {cwd!r} must be an absolute path")
    args = proc.get("args")
    _require(isinstance(args, list) and args and all(isinstance(a, str) for a in args),
             "args must not be empty")
    for env in proc.get("env") or []:
        _require(isinstance(env, str) and "=" in env, f"invalid environment variable {env!r}: no '='")
    if proc.get("selinuxLabel"):
        raise LowrtError("selinux label is specified in config, but selinux is disabled or not supported")
    user = proc.get("user") or {}
    for key in ("uid", "gid"):
        v = user.get(key, 0)
        _require(isinstance(v, int) and v >= 0, f"process.user.{key} {v!r} is not a valid id")


def _validate_namespaces(namespaces: list) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for ns in namespaces:
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind not in NS_LINKS:
            raise LowrtError(f"namespace type {kind!r} does not exist (known: {', '.join(NS_LINKS)})")
        if kind in kinds:
            raise LowrtError(f"duplicate namespace type {kind!r}")
        path = ns.get("path") or ""
        if path and not os.path.exists(path):
            raise LowrtError(f"namespace {kind} path {path}: no such file or directory")
        if not os.path.exists(f"/proc/self/ns/{NS_LINKS[kind]}"):
            raise LowrtError(f"namespace {kind} is not supported by this kernel")
        kinds[kind] = path
    return kinds


def _validate_sysctl(sysctl: dict, kinds: dict[str, str]) -> None:
    for key in sysctl:
        name = key.replace("/", ".")
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            _require("ipc" in kinds, f"sysctl {key!r} is not allowed in the host's ipc namespace")
        elif name.startswith("net."):
            _require("network" in kinds, f"sysctl {key!r} is not allowed in the host's network namespace")
        elif name == "kernel.domainname" and "uts" in kinds:
            pass
        elif name == "kernel.hostname" and "uts" in kinds:
            raise LowrtError(f"sysctl {key!r} is not allowed: it conflicts with the config's hostname")
        else:
            raise LowrtError(f"sysctl {key!r} is not in a separate kernel namespace")


def _validate_hooks(hooks: dict) -> None:
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            raise LowrtError(f"unknown hook kind {kind!r} (known: {', '.join(HOOK_KINDS)})")
        for h in entries or []:
            path = h.get("path") if isinstance(h, dict) else None
            _require(isinstance(path, str) and path.startswith("/"),
                     f"{kind} hook path {path!r} must be absolute")
