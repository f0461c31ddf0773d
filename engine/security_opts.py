"""HostConfig.SecurityOpt (`docker run --security-opt`), read as dockerd reads it.

`KEY=VALUE` (or the older `KEY:VALUE`) with keys seccomp, apparmor, label, no-new-privileges
and writable-cgroups; the bare words no-new-privileges, writable-cgroups and disable (label
disable). Anything else is refused with dockerd's "invalid --security-opt" errors.

dockerd quietly drops an AppArmor profile or an SELinux label on a host that has neither; berth
refuses them instead, since it could not apply them. What asks for no confinement
(`apparmor=unconfined`, `label=disable`) is exactly what such a host gives, and is accepted.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from . import seccomp_profile
from .errors import InvalidParameter

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_FS = "/sys/fs/selinux"

# Go's strconv.ParseBool, which dockerd reads these values with
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass
class SecurityOptions:
    """What a container's SecurityOpt asks for.

    seccomp: "default" (berth's default profile, docker's), "builtin" (the same, asked for
    by name), "unconfined" (no filter), or a profile in docker's format.
    """
    seccomp: str | seccomp_profile.Profile = "default"
    apparmor: str = ""
    no_new_privileges: bool = False
    writable_cgroups: bool | None = None
    labels: list[str] = field(default_factory=list)


def _quoted(opt: str) -> str:
    """Go's %q, which dockerd's errors quote the option with (for the usual text)."""
    return json.dumps(opt, ensure_ascii=False)


def _bool(opt: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidParameter(f"invalid --security-opt 2: {_quoted(opt)}")


def apparmor_enabled() -> bool:
    try:
        with open(APPARMOR_ENABLED) as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists(os.path.join(SELINUX_FS, "enforce"))


def parse(opts: list[str] | None) -> SecurityOptions:
    """The container's SecurityOpt, checked; raises InvalidParameter (400) naming the option
    berth cannot give."""
    out = SecurityOptions()
    for opt in opts or []:
        if not isinstance(opt, str):
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(opt)}")
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "writable-cgroups":
            out.writable_cgroups = True
            continue
        if opt == "disable":
            out.labels.append("disable")
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidParameter(f"invalid --security-opt 1: {_quoted(opt)}")
        key, value = opt.split(sep, 1)
        if key == "seccomp":
            if value in ("unconfined", "builtin"):
                out.seccomp = value
            elif not seccomp_profile.kernel_supports():
                raise InvalidParameter("seccomp is not enabled in your kernel, cannot run a "
                                       "custom seccomp profile")
            else:
                out.seccomp = seccomp_profile.parse(value)
        elif key == "apparmor":
            out.apparmor = value
        elif key == "label":
            out.labels.append(value)
        elif key == "no-new-privileges":
            out.no_new_privileges = _bool(opt, value)
        elif key == "writable-cgroups":
            out.writable_cgroups = _bool(opt, value)
        else:
            raise InvalidParameter(f"invalid --security-opt 2: {_quoted(opt)}")
    if out.apparmor and out.apparmor != "unconfined" and not apparmor_enabled():
        raise InvalidParameter(
            f"invalid --security-opt apparmor={out.apparmor}: AppArmor is not enabled on this "
            f"host ({APPARMOR_ENABLED}), so berth cannot apply the profile")
    labels = [label for label in out.labels if label != "disable"]
    if labels and "disable" not in out.labels:
        if not selinux_enabled():
            raise InvalidParameter(
                f"invalid --security-opt label={labels[0]}: SELinux is not enabled on this "
                f"host (no {SELINUX_FS}), so berth cannot apply the label")
        raise InvalidParameter(
            f"invalid --security-opt label={labels[0]}: berth does not apply SELinux labels")
    return out
