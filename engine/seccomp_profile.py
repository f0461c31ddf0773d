"""Seccomp profiles in docker's format, and the OCI `linux.seccomp` object one makes for one
container.

docker's profile format (what `docker run --security-opt seccomp=FILE` sends: the docker CLI
reads the file and passes its JSON) is the OCI object plus rules that apply only under
conditions: `includes`/`excludes` by the container's capabilities, the host's architecture and
kernel, and `archMap`, which names the ABIs to filter by the host's architecture. dockerd
resolves those conditions when it makes the container's spec; so does berthd, here, with the
same semantics, so that a profile written for docker means the same under berth. berth's own
default profile (engine/seccomp_default.py) is resolved the same way.

A profile is checked when the container is created, so that a bad one is refused before a
container exists, with dockerd's "Decoding seccomp profile failed: ..." and the field at fault;
what the runtime itself cannot apply (an architecture lowrt has no table for) is refused by the
runtime when the container starts.
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field

from . import seccomp_default
from .errors import InvalidParameter
from .seccomp_default import Arg, Rule

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
SCMP_ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
               "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
               "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
               "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
               "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
               "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
               "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")

# The host's machine (uname -m) -> the architecture's name in a profile's `includes.arches`
# (libseccomp's names, as dockerd uses them) and the libseccomp arch that heads the arch map.
MACHINES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i386": ("x86", "SCMP_ARCH_X86"), "i686": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "armv8l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "ppc64": ("ppc64", "SCMP_ARCH_PPC64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "loongarch64": ("loongarch64", "SCMP_ARCH_LOONGARCH64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}


@dataclass
class Profile:
    """A profile in docker's format, checked: the OCI fields and the conditional rules."""
    default_action: str = ""
    default_errno: int | None = None
    architectures: list[str] = field(default_factory=list)
    arch_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)


@dataclass(frozen=True)
class Host:
    """What a profile's conditions are resolved against besides the capabilities."""
    arch: str                      # a name as in `includes.arches`: amd64, arm64...
    scmp_arch: str                 # the libseccomp arch that picks the arch map's entry
    kernel: tuple[int, int]

    @classmethod
    def this(cls) -> "Host":
        uname = os.uname()
        arch, scmp = MACHINES.get(uname.machine, (uname.machine, ""))
        return cls(arch, scmp, kernel_version(uname.release))


@functools.cache
def kernel_supports() -> bool:
    """Whether this kernel has seccomp (CONFIG_SECCOMP, which /proc/PID/status then shows)."""
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


def kernel_version(release: str) -> tuple[int, int]:
    """'6.1.0-18-amd64' -> (6, 1): the part a profile's minKernel compares."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def default_profile() -> Profile:
    """berth's default profile (docker's), as a Profile."""
    return Profile(default_action=seccomp_default.ERRNO, default_errno=seccomp_default.EPERM,
                   arch_map=dict(seccomp_default.ARCH_MAP), rules=seccomp_default.rules())


class _Decode:
    """Reads one JSON object of the profile; keys match case-insensitively, as Go's
    encoding/json (which dockerd decodes with) matches them, and unknown keys are ignored."""

    def __init__(self, obj: object, where: str):
        if not isinstance(obj, dict):
            raise _fail(where, "expected an object", obj)
        self.where = where
        self.fields = {k.lower(): v for k, v in obj.items()}

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str) -> object:
        return self.fields.get(key.lower())

    def str(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise _fail(self._at(key), "expected a string", v)
        return v

    def strings(self, key: str) -> list[str]:
        v = self.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise _fail(self._at(key), "expected a list of strings", v)
        return v

    def uint(self, key: str, bits: int) -> int | None:
        v = self.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << bits:
            raise _fail(self._at(key), f"expected an unsigned {bits}-bit number", v)
        return v

    def objects(self, key: str) -> list["_Decode"]:
        v = self.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise _fail(self._at(key), "expected a list", v)
        return [_Decode(item, f"{self._at(key)}[{i}]") for i, item in enumerate(v)]

    def object(self, key: str) -> "_Decode | None":
        v = self.get(key)
        return None if v is None else _Decode(v, self._at(key))


def _fail(where: str, what: str, value: object) -> InvalidParameter:
    shown = json.dumps(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidParameter(f"Decoding seccomp profile failed: {where or 'the profile'}: "
                            f"{what}, got {shown}")


def _invalid(where: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"invalid seccomp profile: {where}: {message}")


def _action(name: str, where: str) -> str:
    if name == "SCMP_ACT_NOTIFY":
        raise _invalid(where, "SCMP_ACT_NOTIFY (seccomp user notification) is not supported "
                              "by berth")
    if name not in ACTIONS:
        raise _invalid(where, f"unknown action \"{name}\" (one of {', '.join(ACTIONS)})")
    return name


def _kernel(d: _Decode, where: str) -> tuple[int, int] | None:
    text = d.str("minKernel")
    if not text:
        return None
    m = re.fullmatch(r"(\d+)\.(\d+)", text)
    if not m or (int(m.group(1)), int(m.group(2))) == (0, 0) or max(
            int(m.group(1)), int(m.group(2))) > 255:
        raise _invalid(f"{where}.minKernel",
                       f"invalid kernel version \"{text}\", expected \"<kernel>.<major>\"")
    return int(m.group(1)), int(m.group(2))


def _rule(d: _Decode) -> Rule:
    names = d.strings("names")
    name = d.str("name")
    if name:
        if names:
            raise _invalid(d.where, "both 'name' and 'names' are specified, use either "
                                    "'name' or 'names'")
        names = [name]
    if not names or not all(names):
        raise _invalid(f"{d.where}.names", "expected a non-empty list of syscall names")
    action = _action(d.str("action"), f"{d.where}.action")
    errno = d.uint("errnoRet", 16)
    args = []
    for a in d.objects("args"):
        index = a.uint("index", 32)
        if index is None or index > 5:
            raise _invalid(f"{a.where}.index", f"{index} is not an argument index (0 to 5)")
        op = a.str("op")
        if op not in OPS:
            raise _invalid(f"{a.where}.op", f"unknown operator \"{op}\" (one of "
                                            f"{', '.join(OPS)})")
        args.append(Arg(index, op, a.uint("value", 64) or 0, a.uint("valueTwo", 64) or 0))
    includes = d.object("includes")
    excludes = d.object("excludes")
    return Rule(
        names=tuple(names), action=action, errno=errno, args=tuple(args),
        caps=tuple(includes.strings("caps")) if includes else (),
        unless_caps=tuple(excludes.strings("caps")) if excludes else (),
        arches=tuple(includes.strings("arches")) if includes else (),
        not_arches=tuple(excludes.strings("arches")) if excludes else (),
        min_kernel=_kernel(includes, includes.where) if includes else None,
        below_kernel=_kernel(excludes, excludes.where) if excludes else None)


def parse(text: str) -> Profile:
    """A profile's JSON text (as `--security-opt seccomp=` carries it) -> a Profile; raises
    InvalidParameter (400) naming what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    d = _Decode(raw, "")
    if d.get("listenerPath"):
        raise _invalid("listenerPath", "seccomp user notification is not supported by berth")
    profile = Profile(default_action=d.str("defaultAction"),
                      default_errno=d.uint("defaultErrnoRet", 16))
    if profile.default_action:
        _action(profile.default_action, "defaultAction")
    elif d.get("syscalls"):
        raise _invalid("defaultAction", "required when syscalls are given")
    profile.architectures = d.strings("architectures")
    for a in profile.architectures:
        if a not in SCMP_ARCHES:
            raise _invalid("architectures", f"unknown architecture \"{a}\"")
    for entry in d.objects("archMap"):
        arch = entry.str("architecture")
        subs = entry.strings("subArchitectures")
        for a in [arch, *subs]:
            if a not in SCMP_ARCHES:
                raise _invalid(entry.where, f"unknown architecture \"{a}\"")
        profile.arch_map.setdefault(arch, tuple(subs))
    if profile.architectures and profile.arch_map:
        raise _invalid("archMap", "both 'architectures' and 'archMap' are specified, use "
                                  "either 'architectures' or 'archMap'")
    profile.flags = d.strings("flags")
    for flag in profile.flags:
        if flag == "SECCOMP_FILTER_FLAG_NEW_LISTENER":
            raise _invalid("flags", "SECCOMP_FILTER_FLAG_NEW_LISTENER (seccomp user "
                                    "notification) is not supported by berth")
        if flag not in FLAGS:
            raise _invalid("flags", f"unknown flag \"{flag}\"")
    profile.rules = [_rule(entry) for entry in d.objects("syscalls")]
    return profile


def _applies(rule: Rule, caps: set[str], host: Host) -> bool:
    """Whether a conditional rule is part of the profile for this container on this host
    (dockerd's reading: excludes first, then includes, each condition on its own)."""
    if rule.not_arches and host.arch in rule.not_arches:
        return False
    if rule.unless_caps and any(c in caps for c in rule.unless_caps):
        return False
    if rule.below_kernel and host.kernel >= rule.below_kernel:
        return False
    if rule.arches and host.arch not in rule.arches:
        return False
    if rule.caps and not all(c in caps for c in rule.caps):
        return False
    if rule.min_kernel and host.kernel < rule.min_kernel:
        return False
    return True


def _oci_rule(rule: Rule) -> dict:
    out: dict = {"names": list(rule.names), "action": rule.action}
    if rule.errno is not None:
        out["errnoRet"] = rule.errno
    if rule.args:
        out["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two,
                        "op": a.op} for a in rule.args]
    return out


def to_oci(profile: Profile, caps: list[str], host: Host | None = None) -> dict | None:
    """The OCI linux.seccomp for a container holding `caps` (its bounding set) on this host;
    None where the profile asks for no filter (no default action and no rules, as dockerd
    reads an empty profile)."""
    if not profile.default_action and not profile.rules:
        return None
    host = host or Host.this()
    held = set(caps)
    out: dict = {"defaultAction": profile.default_action}
    if profile.default_errno is not None:
        out["defaultErrnoRet"] = profile.default_errno
    arches = list(profile.architectures)
    if host.scmp_arch in profile.arch_map:
        arches = [host.scmp_arch, *profile.arch_map[host.scmp_arch]]
    if arches:
        out["architectures"] = arches
    if profile.flags:
        out["flags"] = list(profile.flags)
    out["syscalls"] = [_oci_rule(r) for r in profile.rules if _applies(r, held, host)]
    return out
