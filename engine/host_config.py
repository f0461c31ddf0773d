"""The HostConfig contract of `POST /containers/create`: dockerd's defaults for Config and
HostConfig, the image's config merged under the request's, and the parsing and validation of
the create body, with the warnings dockerd gives for what it drops. Nothing here touches a
container: a refusal happens before any record or directory exists.
"""
from __future__ import annotations

import os
import signal as signals

from lowrt import units

from . import restart_policy, spec as oci_spec, sysinfo
from .config import DaemonConfig
from .errors import InvalidParameter, NotFound

MIN_MEMORY = 6 * 1024 * 1024
KNOWN_RUNTIMES = ("lowrt", "runc", "crun", "io.containerd.runc.v2")
LOG_DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = ("max-size", "max-file", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag")



def default_host_config(runtime: str, cgroup_v2: bool) -> dict:
    """dockerd's HostConfig with nothing set, so inspect shows every field clients read."""
    return {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "bridge", "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
        "CapDrop": None, "CgroupnsMode": "private" if cgroup_v2 else "host", "Dns": [],
        "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 64 * 1024 * 1024,
        "Runtime": runtime, "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None if cgroup_v2 else False,
        "PidsLimit": None, "Ulimits": [], "CpuCount": 0, "CpuPercent": 0,
        "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": list(oci_spec.MASKED_PATHS), "ReadonlyPaths": list(oci_spec.READONLY_PATHS),
    }


def default_config() -> dict:
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {}}


def merge_image_config(config: dict, image_config: dict) -> None:
    """moby's merge(): the image's defaults fill what the create request left out."""
    if not config.get("User"):
        config["User"] = image_config.get("User", "")
    env = list(config.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in image_config.get("Env") or [] if e.split("=", 1)[0] not in keys]
    config["Env"] = env
    labels = dict(image_config.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    config["Labels"] = labels
    if image_config.get("ExposedPorts"):
        ports = dict(image_config["ExposedPorts"])
        ports.update(config.get("ExposedPorts") or {})
        config["ExposedPorts"] = ports
    if not config.get("Entrypoint"):
        if not config.get("Cmd"):
            config["Cmd"] = image_config.get("Cmd")
        if config.get("Entrypoint") is None:
            config["Entrypoint"] = image_config.get("Entrypoint")
    if not config.get("WorkingDir"):
        config["WorkingDir"] = image_config.get("WorkingDir", "")
    if image_config.get("Volumes"):
        volumes = dict(image_config["Volumes"])
        volumes.update(config.get("Volumes") or {})
        config["Volumes"] = volumes
    if not config.get("StopSignal") and image_config.get("StopSignal"):
        config["StopSignal"] = image_config["StopSignal"]


def log_max_size(text: str) -> int:
    """json-file's max-size in bytes: decimal, as dockerd's driver reads it ("10m" is
    10,000,000), not binary as the memory options."""
    try:
        return units.from_human_size(text)
    except ValueError as e:
        raise InvalidParameter(str(e)) from None


def parse_signal(value: str | int | None, default: int) -> int:
    """'SIGHUP', 'HUP', 'hup' or '1' -> 1."""
    if value is None or value == "":
        return default
    text = str(value).strip().upper()
    if text.isdigit():
        num = int(text)
        if not 0 < num < 65:
            raise InvalidParameter(f"invalid signal: {value}")
        return num
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(getattr(signals.Signals, name))
    except AttributeError:
        raise InvalidParameter(f"invalid signal: {value}") from None


def parse_config(body: dict) -> dict:
    """The Config of a create request (the body without HostConfig and NetworkingConfig) over
    dockerd's defaults; it must name an image."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON body: expected an object")
    config = default_config()
    config.update({k: v for k, v in body.items()
                   if k not in ("HostConfig", "NetworkingConfig")})
    if not config.get("Image"):
        raise InvalidParameter("no image specified: Config.Image is empty")
    return config


def command(config: dict) -> list[str]:
    """Entrypoint and Cmd (the image's merged in): what the container runs."""
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("No command specified")
    return args


def parse_host_config(given: dict, cfg: DaemonConfig, warnings: list[str]) -> dict:
    """HostConfig of a create request: dockerd's defaults under what was given, each option
    checked; what the host cannot give is dropped with a warning appended to warnings."""
    if not isinstance(given, dict):
        raise InvalidParameter("invalid HostConfig: expected an object")
    hc = default_host_config(cfg.default_runtime, cfg.cgroup_v2)
    hc.update({k: v for k, v in given.items() if v is not None or k not in hc})
    mode = hc.get("NetworkMode") or "bridge"
    if mode == "default":
        mode = "bridge"
    if mode.startswith("container:"):
        raise InvalidParameter(f"network mode {mode} is not supported yet")
    if mode not in ("bridge", "host", "none"):
        raise NotFound(f"network {mode} not found")
    hc["NetworkMode"] = mode
    log_config = hc.get("LogConfig") or {}
    driver = log_config.get("Type") or "json-file"
    if driver not in LOG_DRIVERS:
        raise InvalidParameter(
            f"failed to create container: logger: no log driver named '{driver}' is registered")
    opts = dict(log_config.get("Config") or {})
    for key in opts:
        if driver == "json-file" and key not in JSON_FILE_OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    if "max-size" in opts and log_max_size(opts["max-size"]) <= 0:
        raise InvalidParameter("max-size must be a positive number")
    if "max-file" in opts:
        if not str(opts["max-file"]).isdigit() or int(opts["max-file"]) < 1:
            raise InvalidParameter("max-file cannot be less than 1")
        if int(opts["max-file"]) > 1 and "max-size" not in opts:
            raise InvalidParameter("max-file cannot be set without max-size")
    hc["LogConfig"] = {"Type": driver, "Config": opts}
    restart = hc.get("RestartPolicy") or {}
    refusal = restart_policy.validate(restart)
    if refusal:
        raise InvalidParameter(refusal)
    policy = restart.get("Name") or "no"
    hc["RestartPolicy"] = {"Name": policy,
                           "MaximumRetryCount": restart.get("MaximumRetryCount") or 0}
    if hc.get("AutoRemove") and policy != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    memory = hc.get("Memory") or 0
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = hc.get("MemorySwap") or 0
    if memory > 0 and swap == 0:
        hc["MemorySwap"] = memory * 2
    elif 0 < swap < memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    pids = hc.get("PidsLimit")
    if pids is not None and pids <= 0:
        hc["PidsLimit"] = None if pids == 0 else pids
    runtime = hc.get("Runtime") or cfg.default_runtime
    if runtime not in KNOWN_RUNTIMES and not (runtime.startswith("/")
                                              and os.access(runtime, os.X_OK)):
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    hc["Runtime"] = runtime
    for key in ("UTSMode", "PidMode", "IpcMode"):
        value = hc.get(key) or ""
        allowed = ("", "host", "private", "shareable", "none") if key == "IpcMode" \
            else ("", "host")
        if value not in allowed:
            raise InvalidParameter(f"invalid {key[:-4].upper()} mode: {value}")
    oci_spec.check_host_config(hc)
    init_binary(hc, cfg)
    sysinfo.check_blkio_weight(hc, cfg.cgroup_v2, warnings)
    if hc.get("Privileged"):
        hc["MaskedPaths"], hc["ReadonlyPaths"] = None, None
    return hc


def init_binary(hc: dict, cfg: DaemonConfig) -> str | None:
    """The init to run as pid 1 (HostConfig.Init, or the daemon's --init where it is
    unset), or None for none."""
    wanted = hc.get("Init")
    if not (cfg.init if wanted is None else wanted):
        return None
    binary = cfg.init_binary()
    if binary is None:
        raise InvalidParameter(
            f"--init: no init binary: {cfg.init_path or 'docker-init or tini-static'} "
            "is not an executable on berthd's PATH (give berthd --init-path)")


# what `docker update` may change
UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "CpuPeriod",
             "CpuQuota", "NanoCpus", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight")


def parse_update(cid: str, hc: dict, body: dict, cfg: DaemonConfig,
                 warnings: list[str]) -> tuple[dict, dict]:
    """`docker update` of a container whose HostConfig is hc (not changed here): the new
    HostConfig and the resources that change, each checked as dockerd checks them; the
    restart policy too, which is kept for later starts."""
    hc = dict(hc)
    changed = {k: body[k] for k in UPDATABLE if body.get(k) not in (None, 0, "")}
    sysinfo.check_blkio_weight(changed, cfg.cgroup_v2, warnings)
    if not changed.get("BlkioWeight"):
        changed.pop("BlkioWeight", None)
    memory = changed.get("Memory", hc.get("Memory") or 0)
    if "Memory" in changed and changed["Memory"] < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = changed.get("MemorySwap", hc.get("MemorySwap") or 0)
    if "Memory" in changed and "MemorySwap" not in changed and 0 < swap < memory:
        raise InvalidParameter(
            "Cannot update container " + cid + ": Memory limit should be smaller than "
            "already set memoryswap limit, update the memoryswap at the same time")
    if 0 < swap < memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if changed.get("NanoCpus") and (hc.get("CpuQuota") or changed.get("CpuQuota")):
        raise InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    policy = body.get("RestartPolicy") or {}
    if policy.get("Name"):
        refusal = restart_policy.validate(policy)
        if refusal:
            raise InvalidParameter(refusal)
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise InvalidParameter(
                "Restart policy cannot be updated because AutoRemove is enabled for "
                "the container")
        hc["RestartPolicy"] = {"Name": policy["Name"],
                               "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
    hc.update(changed)
    return hc, changed
