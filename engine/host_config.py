"""The HostConfig contract of `POST /containers/create`: dockerd's defaults for Config and
HostConfig, the image's config merged under the request's, and the parsing and validation of
the create body, with the warnings dockerd gives for what it drops. Nothing here touches a
container: a refusal happens before any record or directory exists.
"""
from __future__ import annotations

import json
import os
import posixpath
import signal as signals

from lowrt import units

from . import body_types, cpuset, restart_policy, spec as oci_spec, sysinfo
from . import etc_files
from .network import endpoints as network_endpoints, ports as net_ports
from .config import DaemonConfig
from .errors import InvalidParameter, NotFound
from .volumes import mountpoints as volume_mountpoints

MIN_MEMORY = 6 * 1024 * 1024
MAX_HOSTNAME = 64           # bytes: the kernel's HOST_NAME_MAX
CPU_PERIOD_RANGE = (1000, 1_000_000)    # microseconds, as CFS takes them
MIN_CPU_QUOTA = 1000
KNOWN_RUNTIMES = ("lowrt", "runc", "crun", "io.containerd.runc.v2")
LOG_DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = ("max-size", "max-file", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag")


# Every field of the create body's Config and HostConfig (body_types), and what berthd does
# with it: "applied" (in the runtime spec or the container's state), "refused" (400 naming the
# flag where berth cannot give it, or dockerd's own refusal of a bad value), "warned" (dropped
# with dockerd's warning where this host's kernel cannot give it, else applied), or
# "informational" (kept for clients, nothing to apply: dockerd too only stores it). A test
# walks body_types against this table, so a field cannot be added without a decision here.
HANDLED_FIELDS: dict[str, dict[str, str]] = {
    "Config": {
        "Hostname": "applied", "Domainname": "applied", "User": "applied",
        "AttachStdin": "applied", "AttachStdout": "applied", "AttachStderr": "applied",
        "ExposedPorts": "informational", "Tty": "applied", "OpenStdin": "applied",
        "StdinOnce": "applied", "Env": "applied", "Cmd": "applied", "Healthcheck": "applied",
        "ArgsEscaped": "informational", "Image": "applied", "Volumes": "applied",
        "WorkingDir": "applied", "Entrypoint": "applied", "NetworkDisabled": "informational",
        "MacAddress": "refused", "OnBuild": "informational", "Labels": "applied",
        "StopSignal": "applied", "StopTimeout": "applied", "Shell": "applied",
    },
    "HostConfig": {
        "Binds": "applied", "ContainerIDFile": "informational", "LogConfig": "applied",
        "NetworkMode": "applied", "PortBindings": "applied", "RestartPolicy": "applied",
        "AutoRemove": "applied", "VolumeDriver": "refused", "VolumesFrom": "applied",
        "ConsoleSize": "applied", "Annotations": "applied", "CapAdd": "applied",
        "CapDrop": "applied", "CgroupnsMode": "applied", "Dns": "applied",
        "DnsOptions": "applied", "DnsSearch": "applied", "ExtraHosts": "applied",
        "GroupAdd": "applied", "IpcMode": "applied", "Cgroup": "refused", "Links": "applied",
        "OomScoreAdj": "applied", "PidMode": "applied", "Privileged": "applied",
        "PublishAllPorts": "applied", "ReadonlyRootfs": "applied", "SecurityOpt": "applied",
        "StorageOpt": "refused", "Tmpfs": "applied", "UTSMode": "applied",
        "UsernsMode": "refused", "ShmSize": "applied", "Sysctls": "applied",
        "Runtime": "applied", "Isolation": "refused", "CpuShares": "applied",
        "Memory": "applied", "NanoCpus": "applied", "CgroupParent": "applied",
        "BlkioWeight": "warned", "BlkioWeightDevice": "warned",
        "BlkioDeviceReadBps": "warned", "BlkioDeviceWriteBps": "warned",
        "BlkioDeviceReadIOps": "warned", "BlkioDeviceWriteIOps": "warned",
        "CpuPeriod": "applied", "CpuQuota": "applied", "CpuRealtimePeriod": "warned",
        "CpuRealtimeRuntime": "warned", "CpusetCpus": "applied", "CpusetMems": "applied",
        "Devices": "applied", "DeviceCgroupRules": "applied", "DeviceRequests": "refused",
        "MemoryReservation": "applied", "MemorySwap": "applied",
        "MemorySwappiness": "warned", "OomKillDisable": "warned", "PidsLimit": "applied",
        "Ulimits": "applied",
        "CpuCount": "informational",    # Windows-only: the docker CLI refuses --cpu-count
        "CpuPercent": "warned",
        "IOMaximumIOps": "refused", "IOMaximumBandwidth": "refused", "Mounts": "applied",
        "MaskedPaths": "applied", "ReadonlyPaths": "applied", "Init": "applied",
    },
}


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
    if units.ascii_digits(text):
        num = int(text)
        if not 0 < num < 65:
            raise InvalidParameter(f"invalid signal: {value}")
        return num
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(getattr(signals.Signals, name))
    except AttributeError:
        raise InvalidParameter(f"invalid signal: {value}") from None


def parse_config(body) -> dict:
    """The Config of a create request (the body without HostConfig and NetworkingConfig) over
    dockerd's defaults, once the whole body has the types dockerd declares (HostConfig too);
    it must name an image, and is checked as dockerd's validateContainerConfig checks it."""
    body = body_types.check(body, body_types.CREATE_REQUEST)
    config = default_config()
    # as Go decodes it: fields dockerd does not declare are not kept (nor shown by inspect)
    config.update({k: v for k, v in body.items() if k in body_types.CONFIG_FIELDS})
    for key in ("Cmd", "Entrypoint", "Shell"):
        if isinstance(config.get(key), str):        # a strslice.StrSlice of one
            config[key] = [config[key]]
    if not config.get("Image"):
        raise InvalidParameter("no image specified: Config.Image is empty")
    hostname = config.get("Hostname") or ""
    if len(hostname.encode()) > MAX_HOSTNAME:
        quoted = json.dumps(hostname, ensure_ascii=False)      # as Go's %q
        raise InvalidParameter(f"hostname {quoted} is too long (maximum {MAX_HOSTNAME} bytes)")
    workdir = config.get("WorkingDir") or ""
    if workdir:
        if not workdir.startswith("/"):
            raise InvalidParameter(f"the working directory '{workdir}' is invalid, it needs to "
                                   f"be an absolute path")
        config["WorkingDir"] = "/" + posixpath.normpath(workdir).lstrip("/")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"], 0)
    for entry in config.get("Env") or []:
        if not entry.partition("=")[0]:
            raise InvalidParameter(f"invalid environment variable: {entry}")
    _check_healthcheck(config.get("Healthcheck"))
    return config


def _check_healthcheck(health: dict | None) -> None:
    """dockerd's validateHealthCheck: durations (ns) of at least a millisecond, retries >= 0."""
    if not health:
        return
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = health.get(key) or 0
        if value and value < 1_000_000:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (health.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")


def command(config: dict) -> list[str]:
    """Entrypoint and Cmd (the image's merged in): what the container runs."""
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("No command specified")
    return args


def parse_host_config(given: dict, config: dict, cfg: DaemonConfig,
                      warnings: list[str]) -> dict:
    """HostConfig of a create request whose types body_types has checked: dockerd's defaults
    under what was given, each option checked; what the host cannot give is dropped with a
    warning appended to warnings. config is the request's Config (for the conflicts)."""
    hc = default_host_config(cfg.default_runtime, cfg.cgroup_v2)
    defaults = dict(hc)
    hc.update({k: v for k, v in given.items()
               if k in body_types.HOST_CONFIG.fields and (v is not None or k not in hc)})
    # as dockerd's adaptContainerSettings: these zero values mean "the daemon's default" (the
    # docker CLI sends them empty; docker-py leaves them out), so inspect shows the same either way
    for key in ("IpcMode", "CgroupnsMode", "ShmSize"):
        if not hc.get(key):
            hc[key] = defaults[key]
    mode = hc.get("NetworkMode") or "bridge"
    if mode == "default":
        mode = "bridge"
    hc["NetworkMode"] = mode
    # what the mode rules out (dockerd's conflicts); that the network or container it names
    # exists is checked by containers.create, which has them
    network_endpoints.check_mode(hc, config, warnings)
    etc_files.check(hc)
    # Go's zero values for what a ulimit left out (the spec reads all three)
    hc["Ulimits"] = [{"Name": u.get("Name") or "", "Hard": u.get("Hard") or 0,
                      "Soft": u.get("Soft") or 0} for u in hc.get("Ulimits") or []]
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
        if not units.ascii_digits(str(opts["max-file"])) or int(opts["max-file"]) < 1:
            raise InvalidParameter("max-file cannot be less than 1")
        # without max-size the log never rotates, so max-file has nothing to count: dockerd
        # keeps it (inspect shows it) and starts the container, and so does berthd
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
    if hc.get("Memory", 0) > 0 and not hc.get("MemorySwap"):
        hc["MemorySwap"] = hc["Memory"] * 2       # dockerd's default: as much swap as memory
    check_resources(hc, cfg, warnings, update=False)
    pids = hc.get("PidsLimit")
    if pids is not None and pids <= 0:
        hc["PidsLimit"] = None if pids == 0 else pids
    if (hc.get("UTSMode") or "") == "host" and config.get("Hostname"):
        raise InvalidParameter("conflicting options: hostname and the UTS mode")
    if hc.get("CgroupnsMode") not in ("", "host", "private"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {hc['CgroupnsMode']}")
    if (hc.get("Isolation") or "").lower() not in ("", "default"):
        raise InvalidParameter(f"invalid isolation ({hc['Isolation']}): linux only supports "
                               f"'default'")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    if not -1000 <= (hc.get("OomScoreAdj") or 0) <= 1000:
        raise InvalidParameter(f"Invalid value {hc['OomScoreAdj']}, range for oom score adj is "
                               f"[-1000, 1000]")
    if "" in (hc.get("Annotations") or {}):
        raise InvalidParameter("invalid Annotations: the empty string is not permitted as an "
                               "annotation key")
    runtime = hc.get("Runtime") or cfg.default_runtime
    if runtime not in KNOWN_RUNTIMES and not (runtime.startswith("/")
                                              and os.access(runtime, os.X_OK)):
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    hc["Runtime"] = runtime
    for key in ("UTSMode", "PidMode", "IpcMode"):
        value = hc.get(key) or ""
        allowed = ("", "host", "private", "shareable", "none") if key == "IpcMode" \
            else ("", "host")
        flag = {"UTSMode": "--uts", "PidMode": "--pid", "IpcMode": "--ipc"}[key]
        if value.startswith("container:") and key != "UTSMode":
            raise InvalidParameter(
                f"berth cannot apply {flag} {value} yet ({key}): joining another container's "
                f"namespace is not supported")
        if value not in allowed:
            raise InvalidParameter(f"invalid {key[:-4].upper()} mode: {value}")
    _refuse_unsupported(hc, config)
    oci_spec.check_host_config(hc, cfg.data_root)
    init_binary(hc, cfg)
    if hc.get("Privileged"):
        hc["MaskedPaths"], hc["ReadonlyPaths"] = None, None
    return hc


def _berth_cannot(flag: str, field: str, why: str) -> InvalidParameter:
    return InvalidParameter(f"berth cannot apply {flag} yet ({field}): {why}")


_NO_NETWORKS = "berth's networks give an endpoint an IPv4 address and a generated MAC only"


def _refuse_unsupported(hc: dict, config: dict) -> None:
    """What berth cannot give yet, refused at create naming the flag and the field, where
    dockerd would apply it: never accepted and shown by inspect as if it had been."""
    if hc.get("Cgroup"):
        raise _berth_cannot(f"cgroup {hc['Cgroup']}", "HostConfig.Cgroup",
                            "joining another container's cgroup is not supported")
    # volumes are engine/volumes' local driver's; a plugin's would be another driver
    if hc.get("VolumeDriver") not in (None, "", "local"):
        raise _berth_cannot(f"--volume-driver {hc['VolumeDriver']}", "HostConfig.VolumeDriver",
                            "berth has only the local volume driver (no volume plugins)")
    for spec in hc.get("VolumesFrom") or []:
        volume_mountpoints.parse_volumes_from(spec)    # the container is found at create
    # "host" (the only value the docker CLI sends) is what berth gives every container: the
    # host's user namespace, as dockerd without --userns-remap
    if hc.get("UsernsMode") not in (None, "", "host"):
        raise _berth_cannot(f"--userns {hc['UsernsMode']}", "HostConfig.UsernsMode",
                            "berthd has no user namespace remapping")
    if hc.get("DeviceRequests"):
        raise _berth_cannot("--gpus", "HostConfig.DeviceRequests",
                            "berthd has no device drivers (no NVIDIA container toolkit hook)")
    if hc.get("StorageOpt"):
        raise _berth_cannot("--storage-opt", "HostConfig.StorageOpt",
                            "berth's overlay storage takes no per-container options (no size "
                            "quota)")
    if config.get("MacAddress"):
        raise _berth_cannot("--mac-address", "Config.MacAddress", _NO_NETWORKS)


def check_networking(networking: dict | None, mode: str = "bridge") -> None:
    """NetworkingConfig: each endpoint's settings checked (engine/network/endpoints.py:
    aliases, --ip and links applied on user networks; --ip6, --link-local-ip, --mac-address,
    --driver-opt refused naming the flag)."""
    network_endpoints.from_create(mode, networking)


def check_merged(config: dict, hc: dict) -> None:
    """What can be judged once the image's config is merged: -P publishes the exposed ports
    (the image's too), which takes a bridge berth does not have. (The image's VOLUMEs become
    anonymous volumes at create: engine/volumes/mountpoints.py.)"""
    # the ports asked (-p, and -P over the image's EXPOSE too), checked as they will be read
    net_ports.wanted(hc.get("PortBindings"), bool(hc.get("PublishAllPorts")),
                     config.get("ExposedPorts"))


# containerd's platform normalization: the names `uname -m` and distributions use -> OCI's
_ARCH_ALIASES = {"x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "aarch64": ("arm64", ""),
                 "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "i386": ("386", "")}


def parse_platform(text: str) -> tuple[str, str, str]:
    """'linux', 'linux/arm64', 'linux/arm/v7' -> (os, architecture, variant), normalized as
    containerd's platforms.Normalize; InvalidParameter with dockerd's words otherwise."""
    parts = text.strip().lower().split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise InvalidParameter(f'"{text}": unknown operating system or architecture: '
                               f"invalid argument")
    os_name, arch, variant = (parts + ["", ""])[:3]
    if arch in _ARCH_ALIASES:
        arch, variant = _ARCH_ALIASES[arch][0], variant or _ARCH_ALIASES[arch][1]
    if arch == "arm64" and variant == "v8":
        variant = ""
    return os_name, arch, variant


def check_platform(ref: str, platform: str | None, image_config: dict) -> None:
    """`docker run/create --platform P` (POST /containers/create?platform=P): the image must
    be of that platform. dockerd answers 404 with these words when it is not (and the docker
    CLI then tries a pull of that platform): never a container of another platform than the
    one asked for. image_config: the image's OCI config (os, architecture, variant)."""
    if not platform:
        return
    want_os, want_arch, want_variant = parse_platform(platform)
    have_os, have_arch, have_variant = parse_platform(
        "/".join(p for p in (image_config.get("os") or "linux",
                             image_config.get("architecture") or "",
                             image_config.get("variant") or "") if p))
    if (want_os != have_os or (want_arch and want_arch != have_arch)
            or (want_variant and want_variant != have_variant)):
        wanted = "/".join(p for p in (want_os, want_arch, want_variant) if p)
        actual = "/".join(p for p in (have_os, have_arch, have_variant) if p)
        raise NotFound(f"image with reference {ref} was found but does not match the "
                       f"specified platform: wanted {wanted}, actual: {actual}")


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
    return binary


def check_resources(res: dict, cfg: DaemonConfig, warnings: list[str], *, update: bool) -> None:
    """dockerd's verifyPlatformContainerResources, for create (HostConfig) and update (the
    update body): limits in range and consistent, CPUs and memory nodes that exist, and what
    the kernel cannot give dropped with dockerd's warning. Changes res in place."""
    memory = res.get("Memory") or 0
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = res.get("MemorySwap") or 0
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    if res.get("MemorySwappiness") == -1:         # the CLI's "unset"
        res["MemorySwappiness"] = None
    swappiness = res.get("MemorySwappiness")
    if swappiness is not None and cfg.cgroup_v2:
        warnings.append("Your kernel does not support memory swappiness capabilities or the "
                        "cgroup is not mounted. Memory swappiness discarded.")
        res["MemorySwappiness"] = swappiness = None
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidParameter(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    reservation = res.get("MemoryReservation") or 0
    if 0 < reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation "
                               "limit, see usage")
    if res.get("OomKillDisable") is not None and cfg.cgroup_v2:
        if res["OomKillDisable"]:
            warnings.append("Your kernel does not support OomKillDisable. OomKillDisable "
                            "discarded.")
        res["OomKillDisable"] = None
    if res.get("OomKillDisable") and memory == 0:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")
    nano = res.get("NanoCpus") or 0
    if nano > 0 and (res.get("CpuPeriod") or 0) > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and (res.get("CpuQuota") or 0) > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = len(os.sched_getaffinity(0))          # Go's runtime.NumCPU()
    if nano < 0 or nano > ncpu * 1_000_000_000:
        raise InvalidParameter(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                               f"{ncpu} CPUs available")
    period = res.get("CpuPeriod") or 0
    if period and not CPU_PERIOD_RANGE[0] <= period <= CPU_PERIOD_RANGE[1]:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                               "than 1s (i.e. 1000000)")
    if 0 < (res.get("CpuQuota") or 0) < MIN_CPU_QUOTA:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (res.get("CpuPercent") or 0) > 0:
        warnings.append("linux does not support CPU percent. Percent discarded.")
        res["CpuPercent"] = 0
    cpuset.check(res, cfg.cgroup_v2)
    sysinfo.check_blkio_weight(res, cfg.cgroup_v2, warnings)
    sysinfo.check_blkio_devices(res, cfg.cgroup_v2, warnings)
    sysinfo.check_cpu_realtime(res, cfg.cgroup_v2, warnings)
    for rule in res.get("DeviceCgroupRules") or []:
        oci_spec.device_cgroup_rule(rule)
    if not update:
        # runconfig's checks of a create request
        if res.get("IOMaximumBandwidth"):
            raise InvalidParameter("invalid option: QoS maximum bandwidth configuration is not "
                                   "supported on linux")
        if res.get("IOMaximumIOps"):
            raise InvalidParameter("invalid option: QoS maximum IOPs configuration is not "
                                   "supported on linux")
        if (res.get("CpuShares") or 0) < 0:
            raise InvalidParameter(f"invalid CPU shares ({res['CpuShares']}): value must be a "
                                   f"positive integer")


# what `docker update` may change
UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "CpuPeriod",
             "CpuQuota", "NanoCpus", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight")


def parse_update(cid: str, hc: dict, body, cfg: DaemonConfig,
                 warnings: list[str]) -> tuple[dict, dict]:
    """`docker update` of a container whose HostConfig is hc (not changed here): the new
    HostConfig and the resources that change, each checked as dockerd checks them; the
    restart policy too, which is kept for later starts."""
    body = dict(body_types.check(body, body_types.UPDATE_CONFIG))
    check_resources(body, cfg, warnings, update=True)
    hc = dict(hc)
    changed = {k: body[k] for k in UPDATABLE if body.get(k) not in (None, 0, "")}
    memory = changed.get("Memory", hc.get("Memory") or 0)
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
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
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
