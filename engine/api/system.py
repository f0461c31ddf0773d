"""_ping, version and info."""
from __future__ import annotations

import asyncio
import os
import platform

from aiohttp import web

from supervisor import runtimes

from .. import sysinfo, timefmt
from ..host_config import LOG_DRIVERS
from ..version import (API_VERSION, GIT_COMMIT, MIN_API_VERSION, VERSION, ProgramVersion,
                       program_version)
from .http import json_response

PING_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Swarm": "inactive",
    # 1 (the legacy builder) until the BuildKit endpoints exist; it matters only on Windows
    "Builder-Version": "1",
}


async def ping(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        # dockerd answers HEAD with Content-Length: 0 (aiohttp leaves it out unless told)
        return web.Response(headers={**PING_HEADERS, "Content-Length": "0",
                                     "Content-Type": "text/plain; charset=utf-8"})
    return web.Response(body=b"OK", headers=PING_HEADERS, content_type="text/plain",
                        charset="utf-8")


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _os_release(key: str, default: str) -> str:
    """A value of /etc/os-release (PRETTY_NAME, VERSION_ID), as dockerd reads them."""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith(key + "="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return default


def _registry_config(cfg) -> dict:
    """dockerd's RegistryConfig: loopback and the --insecure-registry CIDRs; docker.io (with
    the mirrors) and each insecure host:port as index configs."""
    cidrs = ["127.0.0.0/8"] + [e for e in cfg.insecure_registries if "/" in e]
    mirrors = [m.rstrip("/") + "/" for m in cfg.registry_mirrors]
    indexes = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True,
                             "Official": True}}
    for host in (e for e in cfg.insecure_registries if "/" not in e):
        indexes[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
    return {"IndexConfigs": indexes, "InsecureRegistryCIDRs": cidrs, "Mirrors": mirrors}


def _mem_total() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _runtime_path(name: str) -> str | None:
    """The binary a runtime name runs, found as berth-supervisor finds it (beside berthd's
    interpreter, then on PATH); None when this host has none."""
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return runtimes.find_program(name)


def _runtimes(cfg) -> dict[str, dict]:
    """dockerd's Info.Runtimes: the runtimes a container can be given (--runtime) that this
    host has, each with its path as configured (a name looked up on PATH, or a path)."""
    names = [n for n in runtimes.KNOWN if _runtime_path(n)]
    if cfg.default_runtime not in names and _runtime_path(cfg.default_runtime):
        names.append(cfg.default_runtime)
    return {name: {"path": name} for name in names}


async def _default_runtime_version(cfg) -> ProgramVersion | None:
    path = _runtime_path(cfg.default_runtime)
    return await asyncio.to_thread(program_version, path) if path else None


async def _init_version(cfg) -> ProgramVersion | None:
    path = cfg.init_binary()
    return await asyncio.to_thread(program_version, path, init=True) if path else None


async def version(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    cfg = daemon.cfg
    kernel = os.uname().release
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
               "GitCommit": GIT_COMMIT, "GoVersion": f"python{platform.python_version()}",
               "Os": "linux", "Arch": _arch(), "KernelVersion": kernel, "Experimental": "false",
               "BuildTime": ""}
    components = [{"Name": "Engine", "Version": VERSION, "Details": details}]
    sup = await daemon.supervisor_version()
    if sup:
        components.append({"Name": "berth-supervisor", "Version": sup.get("version", ""),
                           "Details": {"GitCommit": sup.get("revision", "")}})
    # as dockerd: the default runtime and the init as their --version says, or left out
    runtime = await _default_runtime_version(cfg)
    if runtime:
        components.append({"Name": runtime.name or cfg.default_runtime,
                           "Version": runtime.version, "Details": {"GitCommit": runtime.commit}})
    init = await _init_version(cfg)
    if init:
        components.append({"Name": "docker-init", "Version": init.version,
                           "Details": {"GitCommit": init.commit}})
    return json_response({
        "Platform": {"Name": f"berth {VERSION}"},
        "Components": components,
        "Version": VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT, "GoVersion": details["GoVersion"], "Os": "linux",
        "Arch": _arch(), "KernelVersion": kernel, "BuildTime": "",
    })


# berth's network modes that are what dockerd's drivers of the same name give: the host's
# network namespace ("host") and a namespace with loopback only ("none", dockerd's "null"
# driver). "bridge" is accepted but gives a loopback-only namespace too, not a bridge, so it is
# not listed; nor is any volume driver (berth has no volumes).
NETWORK_DRIVERS = ["host", "null"]


async def info(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    cfg = daemon.cfg
    containers = daemon.containers.all()
    running = sum(1 for c in containers if c.running and not c.state["Paused"])
    paused = sum(1 for c in containers if c.state["Paused"])
    caps = sysinfo.cgroup_capabilities(cfg.cgroup_v2)
    ip_forward = sysinfo.ipv4_forwarding()
    sup = await daemon.supervisor_version()
    runtime = await _default_runtime_version(cfg)
    init = await _init_version(cfg)
    return json_response({
        "ID": daemon.daemon_id,
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(containers) - running - paused,
        "Images": len(daemon.images.images),
        "Driver": "overlayfs",
        "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": list(NETWORK_DRIVERS),
                    "Authorization": None, "Log": list(LOG_DRIVERS)},
        **caps,
        "IPv4Forwarding": ip_forward, "Debug": cfg.debug,
        "NFd": len(os.listdir("/proc/self/fd")),
        # berthd has no goroutines: its concurrent work is asyncio tasks
        "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": timefmt.rfc3339nano(timefmt.now_ns()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if cfg.cgroup_v2 else "1",
        "NEventsListener": daemon.events.listeners,
        "KernelVersion": os.uname().release,
        "OperatingSystem": _os_release("PRETTY_NAME", "Linux"),
        "OSVersion": _os_release("VERSION_ID", ""),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        # berth has no registry client, so no registry settings (dockerd's default lists
        # 127.0.0.0/8 as insecure, which `docker info` would print as berth's)
        "RegistryConfig": _registry_config(cfg),
        "NCPU": len(os.sched_getaffinity(0)),
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": str(cfg.data_root),
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": os.uname().nodename,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": VERSION,
        "Runtimes": _runtimes(cfg),
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": cfg.init_binary() or "",
        # dockerd's "N/A" where a program could not be asked
        "ContainerdCommit": {"ID": sup.get("revision", "") if sup else "N/A"},
        "RuncCommit": {"ID": runtime.commit if runtime else "N/A"},
        "InitCommit": {"ID": init.commit if init else "N/A"},
        # the default seccomp profile (engine/seccomp_default.py), as dockerd lists it, and
        # the private cgroup namespace that is the default on v2 (spec.py)
        "SecurityOptions": ["name=seccomp,profile=builtin"]
                           + (["name=cgroupns"] if cfg.cgroup_v2 else []),
        "CDISpecDirs": [],
        "Warnings": sysinfo.info_warnings(caps, cfg.cgroup_v2, ip_forward),
    })
