"""A container's volume mount points, from its create request as dockerd's
registerMountPoints reads it: --volumes-from first (the other container's volumes and binds, at
its destinations), then -v NAME:/path and --mount type=volume (a named volume, made if
missing), then each path of Config.Volumes (`-v /path` and the image's VOLUMEs) that nothing
else is mounted at gets an anonymous volume. Each is kept in the container's record
("MountPoints"), which is what inspect shows, what a start binds, and how a restarted berthd
finds a volume's users.

Everything is checked before any volume is made; what create made is handed back so that a
create failing later can take it back.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable

from ..errors import InvalidParameter
from . import names
from .service import DRIVER, Volumes

_RW, _LABEL, _COPY = ("rw", "ro"), ("z", "Z"), ("nocopy",)
_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_CONSISTENCY = ("consistent", "cached", "delegated")

# what inspect shows of a mount point; the rest is berth's own bookkeeping
VIEW_FIELDS = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")


def is_volume_bind(spec: str) -> bool:
    """Whether a HostConfig.Binds entry names a volume (NAME:/path, or /path alone) rather
    than binding a host path."""
    parts = spec.split(":")
    return len(parts) == 1 or not parts[0].startswith("/")


def _valid_mode(mode: str) -> bool:
    """moby's linuxValidMountMode: at most one word of each kind, nothing else."""
    if not mode:
        return True
    words = mode.split(",")
    groups = (_RW, _LABEL, _PROPAGATION, _COPY, _CONSISTENCY)
    return all(any(w in g for g in groups) for w in words) and \
        all(sum(w in g for w in words) <= 1 for g in groups)


def _mount_point(name: str, dest: str, mode: str, rw: bool, copy: bool,
                 anonymous: bool) -> dict:
    return {"Type": "volume", "Name": name, "Source": "", "Destination": dest,
            "Driver": DRIVER, "Mode": mode, "RW": rw, "Propagation": "", "CopyData": copy,
            "Anonymous": anonymous}


def parse_volume_bind(spec: str) -> tuple[dict, dict]:
    """One volume entry of HostConfig.Binds -> (mount point, what to create it with)."""
    parts = spec.split(":")
    if not parts[0] or len(parts) > 3 or (len(parts) == 2 and _valid_mode(parts[1])):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if len(parts) == 1:
        name, dest, mode = "", parts[0], ""
    else:
        name, dest, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if not _valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    words = mode.split(",") if mode else []
    if any(w in _PROPAGATION for w in words):
        raise InvalidParameter(f"invalid volume specification: '{spec}': propagation "
                               f"({mode}) applies to binds, not volumes")
    _check_dest(dest, spec)
    if name:
        names.validate(name)
    return (_mount_point(name, posixpath.normpath(dest), mode, "ro" not in words,
                         "nocopy" not in words, not name), {})


def _check_dest(dest: str, spec: str) -> None:
    if not dest.startswith("/"):
        raise InvalidParameter(f"invalid volume specification: '{spec}': invalid mount path: "
                               f"'{dest}' mount path must be absolute")
    if posixpath.normpath(dest) == "/":
        raise InvalidParameter(f"invalid volume specification: '{spec}': invalid "
                               f"specification: destination can't be '/'")


def parse_volume_mount(m: dict) -> tuple[dict, dict]:
    """One --mount type=volume (HostConfig.Mounts) -> (mount point, what to create it with).
    What berth cannot give (another driver, a subpath, bind or tmpfs options) is refused."""
    source, target = m.get("Source") or "", m.get("Target") or ""
    where = 'invalid mount config for type "volume"'
    if not target:
        raise InvalidParameter(f"{where}: field Target must not be empty")
    if not target.startswith("/"):
        raise InvalidParameter(f"{where}: invalid mount path: '{target}' mount path must be "
                               f"absolute")
    if posixpath.normpath(target) == "/":
        raise InvalidParameter(f"{where}: invalid specification: destination can't be '/'")
    if m.get("BindOptions"):
        raise InvalidParameter(f"{where}: bind options must not be specified for a volume")
    if m.get("TmpfsOptions"):
        raise InvalidParameter(f"{where}: tmpfs options must not be specified for a volume")
    opts = m.get("VolumeOptions") or {}
    driver = (opts.get("DriverConfig") or {}).get("Name") or ""
    if driver not in ("", DRIVER):
        raise InvalidParameter(f"berth cannot apply --mount volume-driver={driver} yet "
                               f"(HostConfig.Mounts): berth has only the local volume driver "
                               f"(no volume plugins)")
    if opts.get("Subpath"):
        raise InvalidParameter(f"berth cannot apply --mount volume-subpath={opts['Subpath']} "
                               f"yet (HostConfig.Mounts): a volume is mounted whole")
    if source:
        names.validate(source)
    create = {"opts": (opts.get("DriverConfig") or {}).get("Options"),
              "labels": opts.get("Labels")}
    mp = _mount_point(source, posixpath.normpath(target), "", not m.get("ReadOnly"),
                      not opts.get("NoCopy"), not source)
    return mp, create


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """'container[:mode]' -> (container, mode), as moby's ParseVolumesFrom."""
    if not spec:
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if mode and (not _valid_mode(mode) or any(w in _PROPAGATION + _COPY
                                              for w in mode.split(","))):
        raise InvalidParameter(f"invalid mode: {mode}")
    return ref, mode


def _user_destinations(hc: dict) -> set[str]:
    """Where the user's host binds and tmpfs mounts go: no volume is made there."""
    dests = {s.split(":")[1] for s in hc.get("Binds") or [] if not is_volume_bind(s)}
    dests |= {m.get("Target") or "" for m in hc.get("Mounts") or []
              if m.get("Type") in ("bind", "tmpfs")}
    dests |= set(hc.get("Tmpfs") or {})
    return {posixpath.normpath(d) for d in dests if d.startswith("/")}


def build(config: dict, hc: dict, volumes: Volumes,
          mount_points_of: Callable[[str], tuple[list[dict], dict]]) -> tuple[list[dict],
                                                                               list[str]]:
    """The container's mount points (volumes, and the binds --volumes-from brings) and the
    names of the volumes made for it. mount_points_of(ref): the record's MountPoints and
    HostConfig of the container --volumes-from names (NotFound if there is none)."""
    by_dest: dict[str, tuple[dict, dict]] = {}
    for spec in hc.get("VolumesFrom") or []:
        ref, mode = parse_volumes_from(spec)
        theirs, their_hc = mount_points_of(ref)
        inherited = [dict(mp) for mp in theirs] + _binds_of(their_hc)
        for mp in inherited:
            if mode:
                mp["RW"], mp["Mode"] = "ro" not in mode.split(","), mode
            mp["CopyData"] = False
            by_dest[mp["Destination"]] = (mp, {})
    user: dict[str, tuple[dict, dict]] = {}
    for spec in hc.get("Binds") or []:
        if is_volume_bind(spec):
            mp, create = parse_volume_bind(spec)
            if mp["Destination"] in user:
                raise InvalidParameter(f"Duplicate mount point: {mp['Destination']}")
            user[mp["Destination"]] = (mp, create)
    for m in hc.get("Mounts") or []:
        if m.get("Type") == "volume":
            mp, create = parse_volume_mount(m)
            if mp["Destination"] in user:
                raise InvalidParameter(f"Duplicate mount point: {mp['Destination']}")
            user[mp["Destination"]] = (mp, create)
    covered = _user_destinations(hc)
    for dest in covered:
        by_dest.pop(dest, None)
    by_dest.update(user)
    for path in config.get("Volumes") or {}:
        dest = posixpath.normpath(path)
        if not path.startswith("/"):
            raise InvalidParameter(f"invalid mount path: '{path}' mount path must be absolute")
        if dest == "/":
            raise InvalidParameter("invalid specification: destination can't be '/'")
        if dest not in by_dest and dest not in covered:
            by_dest[dest] = (_mount_point("", dest, "", True, True, True), {})
    made: list[str] = []
    try:
        for mp, create in by_dest.values():
            if mp["Type"] != "volume" or mp["Source"]:
                continue        # an inherited one is made already
            volume, new = volumes.create(mp["Name"], DRIVER, create.get("opts"),
                                         create.get("labels"), anonymous=mp["Anonymous"])
            if new:
                made.append(volume.name)
            mp["Name"], mp["Source"] = volume.name, str(volume.path)
    except BaseException:
        for name in made:
            volumes.remove(name, force=True)
        raise
    ordered = sorted(by_dest.values(), key=lambda pair: pair[0]["Destination"].count("/"))
    return [mp for mp, _ in ordered], made


def _binds_of(hc: dict) -> list[dict]:
    """The host binds of a --volumes-from source, as mount points."""
    out = []
    for spec in hc.get("Binds") or []:
        if is_volume_bind(spec):
            continue
        parts = spec.split(":")
        mode = parts[2] if len(parts) > 2 else ""
        words = mode.split(",") if mode else []
        out.append({"Type": "bind", "Name": "", "Source": parts[0],
                    "Destination": posixpath.normpath(parts[1]), "Driver": "", "Mode": mode,
                    "RW": "ro" not in words,
                    "Propagation": next((w for w in words if w in _PROPAGATION), "rprivate")})
    for m in hc.get("Mounts") or []:
        if m.get("Type") == "bind":
            out.append({"Type": "bind", "Name": "", "Source": m.get("Source") or "",
                        "Destination": posixpath.normpath(m.get("Target") or "/"),
                        "Driver": "", "Mode": "", "RW": not m.get("ReadOnly"),
                        "Propagation": (m.get("BindOptions") or {}).get("Propagation")
                        or "rprivate"})
    return out


def view(mp: dict) -> dict:
    """A mount point as inspect and the container list show it (a bind without the Name and
    Driver a volume has, as dockerd omits them)."""
    out = {k: mp.get(k) for k in VIEW_FIELDS}
    if mp.get("Type") != "volume":
        del out["Name"], out["Driver"]
    return out
