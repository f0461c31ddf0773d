"""A container as berthd keeps it: the persisted record (Config, HostConfig, State, ...) and the
runtime-only parts (waiters, pending attaches), plus the API's views of it (inspect, list)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from . import health, timefmt
from .network import ports as net_ports
from .restart_policy import RestartManager
from .volumes import mountpoints as volume_mountpoints

STATE_FIELDS = {"Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
                "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": 0,
                "FinishedAt": 0}


@dataclass
class PendingAttach:
    """An attach made while the container was not running: connected at its next start."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: asyncio.Future      # resolves to the supervisor attachment, or None if it never starts


@dataclass
class Container:
    record: dict
    # runtime only
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stop_waiters: list = field(default_factory=list)
    remove_waiters: list = field(default_factory=list)
    pending_attaches: list = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    monitor: asyncio.Task | None = None
    removing: bool = False
    removed: bool = False
    oom_killed: bool = False     # an OOM event arrived for the current run
    restart_manager: RestartManager | None = None
    pending_restart: asyncio.Task | None = None    # the restart its policy asked for, waiting
    manually_restarted: bool = False    # being restarted by the user: no auto-remove meanwhile
    execs: set = field(default_factory=set)   # IDs of its execs not yet finished

    def __post_init__(self):
        if not self.running:
            self.stopped.set()

    @property
    def id(self) -> str:
        return self.record["Id"]

    @property
    def name(self) -> str:
        return self.record["Name"]

    @property
    def config(self) -> dict:
        return self.record["Config"]

    @property
    def host_config(self) -> dict:
        return self.record["HostConfig"]

    @property
    def state(self) -> dict:
        return self.record["State"]

    @property
    def running(self) -> bool:
        return self.state["Running"]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def restarting(self) -> bool:
        return self.state["Restarting"]

    @property
    def paused(self) -> bool:
        return self.state["Paused"]

    @property
    def manually_stopped(self) -> bool:
        """dockerd's HasBeenManuallyStopped: `unless-stopped` does not restart it, even when
        berthd starts again."""
        return bool(self.record.get("ManuallyStopped"))

    def restart_policy(self) -> RestartManager:
        if self.restart_manager is None:
            policy = self.host_config.get("RestartPolicy") or {}
            self.restart_manager = RestartManager(policy.get("Name") or "no",
                                                  policy.get("MaximumRetryCount") or 0,
                                                  self.record.get("RestartCount", 0))
        return self.restart_manager

    def status(self) -> str:
        """moby's State.State(): the one-word status."""
        s = self.state
        if s["Running"]:
            return "paused" if s["Paused"] else "restarting" if s["Restarting"] else "running"
        if self.removing:
            return "removing"
        if s["Dead"]:
            return "dead"
        if not s["StartedAt"]:
            return "created"
        return "exited"

    def status_text(self, now_ns: int) -> str:
        """moby's State.String(): the STATUS column of `docker ps`."""
        s = self.state
        if s["Running"]:
            if s["Restarting"]:
                ago = timefmt.human_duration((now_ns - s["FinishedAt"]) / 1e9)
                return f"Restarting ({s['ExitCode']}) {ago} ago"
            out = "Up " + timefmt.human_duration((now_ns - s["StartedAt"]) / 1e9)
            if s["Paused"]:
                return out + " (Paused)"
            status = health.label(self)
            return f"{out} ({status})" if status else out
        if self.removing:
            return "Removal In Progress"
        if s["Dead"]:
            return "Dead"
        if not s["StartedAt"]:
            return "Created"
        if not s["FinishedAt"]:
            return ""
        ago = timefmt.human_duration((now_ns - s["FinishedAt"]) / 1e9)
        return f"Exited ({s['ExitCode']}) {ago} ago"

    # the waiters of POST /containers/{id}/wait
    def notify_stopped(self) -> None:
        self.stopped.set()
        result = (self.state["ExitCode"], self.state["Error"] or None)
        for fut in self.stop_waiters:
            if not fut.done():
                fut.set_result(result)
        self.stop_waiters.clear()

    def notify_removed(self) -> None:
        self.removed = True
        # as dockerd's SetRemoved: the error is cleared before the waiters wake, so a client
        # waiting for the removal (docker run --rm) sees none
        self.state["Error"] = ""
        self.notify_stopped()
        result = (self.state["ExitCode"], self.state["Error"] or None)
        for fut in self.remove_waiters:
            if not fut.done():
                fut.set_result(result)
        self.remove_waiters.clear()
        for pending in self.pending_attaches:
            if not pending.ready.done():
                pending.ready.set_result(None)
        self.pending_attaches.clear()


def new_state() -> dict:
    return dict(STATE_FIELDS)


def inspect(c: Container, *, image_id: str, data_root: Path, exec_root: Path,
            lower_dirs: list[str], driver: str) -> dict:
    """GET /containers/{id}/json: always with Config, State, HostConfig, NetworkSettings."""
    r, s = c.record, c.state
    cdir = Path(data_root) / "containers" / c.id
    layer = Path(data_root) / "overlay" / "containers" / c.id
    net_mode = c.host_config.get("NetworkMode") or "bridge"
    return {
        "Id": c.id,
        "Created": timefmt.rfc3339nano(r["Created"]),
        "Path": r["Path"],
        "Args": r["Args"],
        "State": {
            "Status": c.status(),
            "Running": s["Running"],
            "Paused": s["Paused"],
            "Restarting": s["Restarting"],
            "OOMKilled": s["OOMKilled"],
            "Dead": s["Dead"],
            "Pid": s["Pid"],
            "ExitCode": s["ExitCode"],
            "Error": s["Error"],
            "StartedAt": timefmt.rfc3339nano(s["StartedAt"]),
            "FinishedAt": timefmt.rfc3339nano(s["FinishedAt"]),
            # only once a healthcheck has run (omitempty in dockerd)
            **({"Health": health.view(s["Health"])} if s.get("Health") else {}),
        },
        "Image": image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(cdir / f"{c.id}-json.log")
        if c.host_config["LogConfig"]["Type"] == "json-file" else "",
        "Name": c.name,
        "RestartCount": r.get("RestartCount", 0),
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": sorted(c.execs) or None,
        "HostConfig": c.host_config,
        "GraphDriver": {
            "Name": driver,
            "Data": {
                "LowerDir": ":".join(lower_dirs),
                "UpperDir": str(layer / "diff"),
                "WorkDir": str(layer / "work"),
                "MergedDir": str(Path(exec_root) / "tasks" / "berth" / c.id / "rootfs"),
            },
        },
        "Mounts": _mounts(c),
        "Config": c.config,
        "NetworkSettings": network_settings(net_mode, r.get("Network"),
                                            c.config.get("ExposedPorts")),
    }


def _mounts(c: Container) -> list[dict]:
    out = []
    for bind in c.host_config.get("Binds") or []:
        if volume_mountpoints.is_volume_bind(bind):
            continue        # a volume: among the mount points below
        parts = bind.split(":")
        mode = parts[2] if len(parts) > 2 else ""
        out.append({"Type": "bind", "Source": parts[0], "Destination": parts[1], "Mode": mode,
                    "RW": "ro" not in mode.split(","), "Propagation": "rprivate"})
    for m in c.host_config.get("Mounts") or []:
        if m.get("Type") == "bind":
            out.append({"Type": "bind", "Source": m.get("Source"), "Destination": m.get("Target"),
                        "Mode": "", "RW": not m.get("ReadOnly"),
                        "Propagation": (m.get("BindOptions") or {}).get("Propagation")
                        or "rprivate"})
    # volumes (-v NAME:/path, --mount type=volume, VOLUME) and what --volumes-from brought
    out += [volume_mountpoints.view(mp) for mp in c.record.get("MountPoints") or []]
    return out


def _endpoint(ep: dict | None, network_id: str = "", dns_names: list | None = None) -> dict:
    """One entry of NetworkSettings.Networks, as dockerd shapes it; empty addresses while the
    container is not attached (stopped)."""
    ep = ep or {}
    return {
        "IPAMConfig": ep.get("IPAMConfig"), "Links": ep.get("Links"),
        "Aliases": ep.get("Aliases") or None, "MacAddress": ep.get("MacAddress", ""),
        "DriverOpts": None, "GwPriority": 0, "NetworkID": network_id,
        "EndpointID": ep.get("EndpointID", ""), "Gateway": ep.get("Gateway", ""),
        "IPAddress": ep.get("IPAddress", ""), "IPPrefixLen": ep.get("IPPrefixLen", 0),
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": dns_names,
    }


def network_settings(mode: str, net: dict | None = None, exposed: dict | None = None) -> dict:
    """dockerd's NetworkSettings. net is the record's "Network" (engine/network's view of a
    running container's sandbox: its networks by name, their endpoints, its ports); without
    one (a stopped container) the networks are listed with empty addresses. The top-level
    address fields are the default bridge's, as dockerd fills them only for that one."""
    networks: dict = {}
    net = net or {}
    if mode not in ("host",) and not mode.startswith("container:"):
        for name in net.get("Order") or [mode if mode != "default" else "bridge"]:
            ep = (net.get("Networks") or {}).get(name)
            networks[name] = _endpoint(ep, (ep or {}).get("NetworkID", ""),
                                       (ep or {}).get("DNSNames"))
    if mode == "host":
        networks["host"] = _endpoint(None, (net.get("HostNetworkID") or ""))
    top = (net.get("Networks") or {}).get("bridge") or {}
    return {
        "Bridge": "", "SandboxID": net.get("SandboxID", ""),
        "SandboxKey": net.get("SandboxKey", ""), "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": net_ports.view(net.get("Ports") or [], exposed) if net else {},
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": top.get("EndpointID", ""), "Gateway": top.get("Gateway", ""),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": top.get("IPAddress", ""), "IPPrefixLen": top.get("IPPrefixLen", 0),
        "IPv6Gateway": "", "MacAddress": top.get("MacAddress", ""), "Networks": networks,
    }


def summary(c: Container, *, image_id: str, now_ns: int) -> dict:
    """One element of GET /containers/json."""
    net_mode = c.host_config.get("NetworkMode") or "bridge"
    command = " ".join([c.record["Path"], *c.record["Args"]]).strip()
    return {
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.get("Image", ""),
        "ImageID": image_id,
        "Command": command,
        "Created": c.record["Created"] // 1_000_000_000,
        "Ports": _port_summary(c),
        "Labels": c.config.get("Labels") or {},
        "State": c.status(),
        "Status": c.status_text(now_ns),
        "HostConfig": {"NetworkMode": net_mode},
        "NetworkSettings": {"Networks": network_settings(net_mode, c.record.get("Network"))
                            ["Networks"]},
        "Mounts": _mounts(c),
    }


def _port_summary(c: Container) -> list[dict]:
    """The Ports of `docker ps`: published ones while it runs, the exposed ones always."""
    return net_ports.summary((c.record.get("Network") or {}).get("Ports") or [],
                          c.config.get("ExposedPorts"))
