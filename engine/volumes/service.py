"""The volumes berthd knows (all of the local driver), which containers use each, and which
running containers hold a volume's --opt mount.

The users of a volume are the containers whose record names it among their mount points, so a
berthd restart finds them again from the records (Containers hands them over at load); a volume
with users is not removed. A volume made with --opt type=… is mounted on its _data when a
container using it starts and none held it, and unmounted when the last such container stops,
as dockerd's local driver counts its active mounts.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import timefmt
from ..errors import Conflict, Internal, InvalidParameter, NotFound
from . import mounts as sys_mounts, names, options
from .local import LocalDriver

log = logging.getLogger("berthd.volumes")

DRIVER = "local"


@dataclass
class Volume:
    name: str
    path: Path
    labels: dict[str, str]
    options: dict[str, str]
    created_ns: int
    users: set[str] = field(default_factory=set)        # container ids
    active: set[str] = field(default_factory=set)       # running ones holding its mount
    # dockerd shows Labels and Options as the create body gave them: null when absent, {}
    # when empty (the docker CLI 20.10 sends {}, 28 nothing)
    labels_given: bool = False
    options_given: bool = False

    @property
    def anonymous(self) -> bool:
        return names.ANONYMOUS_LABEL in self.labels

    def view(self) -> dict:
        """The Volume object of the API (inspect, list, create)."""
        return {"CreatedAt": created_at(self.created_ns), "Driver": DRIVER,
                "Labels": dict(self.labels) if self.labels or self.labels_given else None,
                "Mountpoint": str(self.path), "Name": self.name,
                "Options": dict(self.options) if self.options or self.options_given else None,
                "Scope": "local"}


class Volumes:
    def __init__(self, data_root: Path, events=None):
        self.driver = LocalDriver(data_root)
        self.events = events        # the EventLog: volume create and destroy, as dockerd's
        self.by_name: dict[str, Volume] = {}
        for name, meta in self.driver.load().items():
            self.by_name[name] = Volume(name, self.driver.path(name), meta.get("Labels") or {},
                                        meta.get("Options") or {}, meta.get("CreatedAt") or 0,
                                        labels_given=meta.get("Labels") is not None,
                                        options_given=meta.get("Options") is not None)

    # lookup
    def get(self, name: str) -> Volume:
        volume = self.by_name.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def all(self) -> list[Volume]:
        return sorted(self.by_name.values(), key=lambda v: v.name)

    # create and remove
    def create(self, name: str = "", driver: str = "", opts: dict | None = None,
               labels: dict | None = None, *, anonymous: bool = False) -> tuple[Volume, bool]:
        """The volume of that name, made if there is none (dockerd returns an existing one
        as it is); (volume, whether it was made now). No name: a new anonymous volume."""
        driver = driver or DRIVER
        if driver != DRIVER:
            raise NotFound(f"create {name}: error looking up volume plugin {driver}: plugin "
                           f"\"{driver}\" not found")
        if name and name in self.by_name:
            return self.by_name[name], False
        options_given, labels_given = opts is not None, labels is not None
        opts = {str(k): str(v) for k, v in (opts or {}).items()}
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        if name:
            names.validate(name)
        else:
            name = names.anonymous_name()
            if anonymous:
                labels[names.ANONYMOUS_LABEL] = ""
        try:
            options.check(opts)
        except InvalidParameter as e:
            raise InvalidParameter(f"create {name}: {e.message}") from None
        created = timefmt.now_ns()
        try:
            self.driver.create(name, {"Labels": labels if labels or labels_given else None,
                                      "Options": opts if opts or options_given else None,
                                      "CreatedAt": created})
        except FileExistsError:
            raise Conflict(f"create {name}: volume name must be unique") from None
        except OSError as e:
            raise Internal(f"create {name}: {e}") from None
        volume = Volume(name, self.driver.path(name), labels, opts, created,
                        labels_given=labels_given, options_given=options_given)
        self.by_name[name] = volume
        log.info("created volume %s", name)
        if self.events is not None:
            self.events.log("volume", "create", name, {"driver": DRIVER})
        return volume, True

    def remove(self, name: str, *, force: bool = False) -> None:
        """dockerd's volume rm: one in use is refused naming its containers; force only
        forgives a name that does not exist."""
        volume = self.by_name.get(name)
        if volume is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        if volume.users:
            raise Conflict(f"remove {name}: volume is in use - "
                           f"[{', '.join(sorted(volume.users))}]")
        if volume.active:
            raise Conflict(f"remove {name}: volume is in use - "
                           f"[{', '.join(sorted(volume.active))}]")
        try:
            if options.needs_mount(volume.options):
                sys_mounts.unmount(str(volume.path))    # left mounted by a crash
            self.driver.remove(name)
        except OSError as e:
            raise Internal(f"remove {name}: {e}") from None
        del self.by_name[name]
        log.info("removed volume %s", name)
        if self.events is not None:
            self.events.log("volume", "destroy", name, {"driver": DRIVER})

    # users
    def use(self, name: str, cid: str) -> None:
        self.get(name).users.add(cid)

    def release(self, cid: str) -> list[Volume]:
        """cid uses no volume any more; the volumes it used."""
        out = []
        for volume in self.by_name.values():
            if cid in volume.users:
                volume.users.discard(cid)
                out.append(volume)
        return out

    def users(self, name: str) -> set[str]:
        return set(self.get(name).users)

    # active mounts
    def mount(self, name: str, cid: str) -> str:
        """The path to bind for container cid, the volume's --opt mount made if it is the
        first running user (or found there after a berthd restart)."""
        volume = self.get(name)
        if options.needs_mount(volume.options) and not volume.active \
                and not sys_mounts.is_mount_point(str(volume.path)):
            try:
                options.mount(volume.options, str(volume.path))
            except OSError as e:
                raise Internal(f"error while mounting volume '{volume.path}': failed to mount "
                               f"local volume: {e}") from None
            log.info("mounted volume %s (%s)", name, volume.options.get("type"))
        volume.active.add(cid)
        return str(volume.path)

    def held(self, name: str, cid: str) -> None:
        """At load: running container cid holds the volume's mount (made before a restart)."""
        volume = self.by_name.get(name)
        if volume is not None:
            volume.active.add(cid)

    def unmount_all(self, cid: str) -> None:
        """Container cid stopped: the --opt mounts it was the last holder of go."""
        for volume in self.by_name.values():
            if cid not in volume.active:
                continue
            volume.active.discard(cid)
            if not volume.active and options.needs_mount(volume.options):
                try:
                    sys_mounts.unmount(str(volume.path))
                    log.info("unmounted volume %s", volume.name)
                except OSError as e:
                    log.error("cannot unmount volume %s: %s", volume.name, e)


def created_at(ns: int) -> str:
    """dockerd's CreatedAt of a volume: Go's time.RFC3339, whole seconds in berthd's zone."""
    when = datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    text = when.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def is_empty(path: str | Path) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True
