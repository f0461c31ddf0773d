"""_ping, version and info."""
from __future__ import annotations

import os
import platform

from aiohttp import web

from .. import timefmt
from ..version import API_VERSION, GIT_COMMIT, MIN_API_VERSION, VERSION
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


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def version(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
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
    components.append({"Name": daemon.cfg.default_runtime, "Version": VERSION,
                       "Details": {"GitCommit": GIT_COMMIT}})
    return json_response({
        "Platform": {"Name": f"berth {VERSION}"},
        "Components": components,
        "Version": VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT, "GoVersion": details["GoVersion"], "Os": "linux",
        "Arch": _arch(), "KernelVersion": kernel, "BuildTime": "",
    })


async def info(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    cfg = daemon.cfg
    containers = daemon.containers.all()
    running = sum(1 for c in containers if c.running and not c.state["Paused"])
    paused = sum(1 for c in containers if c.state["Paused"])
    runtimes = {name: {"path": name} for name in ("lowrt", "runc", "crun")}
    if cfg.default_runtime not in runtimes:
        runtimes[cfg.default_runtime] = {"path": cfg.default_runtime}
    return json_response({
        "ID": daemon.daemon_id,
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(containers) - running - paused,
        "Images": len(daemon.images.images),
        "Driver": "overlayfs",
        "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                    "Authorization": None, "Log": ["json-file", "none"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "IPv4Forwarding": True, "Debug": cfg.debug,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": not cfg.cgroup_v2,
        "NGoroutines": 0, "SystemTime": timefmt.rfc3339nano(timefmt.now_ns()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if cfg.cgroup_v2 else "1",
        "NEventsListener": daemon.events.listeners,
        "KernelVersion": os.uname().release,
        "OperatingSystem": _os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1,
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
        "Runtimes": runtimes,
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": cfg.init_binary() or "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        # the default seccomp profile (engine/seccomp_default.py), as dockerd lists it
        "SecurityOptions": ["name=seccomp,profile=builtin"]
                           + (["name=cgroupns"] if cfg.cgroup_v2 else []),
        "CDISpecDirs": [],
        "Warnings": [],
    })
