"""The flags `berth run` and `berth create` share with `docker run`/`docker create`, and the
create body they make: the same Config, HostConfig and NetworkingConfig the docker CLI 28
sends for the same flags, so that a daemon sees no difference between the two CLIs.

Only click is imported here: this module loads with every `berth run`, and what the flags'
parsing needs (lowrt.units for sizes, ipaddress, json) is imported when a flag uses it.
"""
from __future__ import annotations

import os
import re

import click


class FlagError(ValueError):
    """A flag's value the docker CLI refuses too; the message is what it prints."""


def invalid(value: str, flag: str, why: str) -> FlagError:
    return FlagError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def _many(*names: str, help: str, metavar: str = "list"):
    return click.option(*names, multiple=True, metavar=metavar, help=help)


# (decorator, used by create too). Most-used first in --help, as docker lists them by name.
_OPTIONS = [
    (_many("-a", "--attach", help="Attach to STDIN, STDOUT or STDERR"), True),
    (_many("--add-host", help="Add a custom host-to-IP mapping (host:ip)"), True),
    (_many("--cap-add", help="Add Linux capabilities"), True),
    (_many("--cap-drop", help="Drop Linux capabilities"), True),
    (click.option("--cidfile", metavar="string", help="Write the container ID to the file"),
     True),
    (click.option("--cpu-shares", "-c", type=int, metavar="int",
                  help="CPU shares (relative weight)"), True),
    (click.option("--cpus", metavar="decimal", help="Number of CPUs"), True),
    (click.option("--cpuset-cpus", metavar="string",
                  help="CPUs in which to allow execution (0-3, 0,1)"), True),
    (_many("--device", help="Add a host device to the container"), True),
    (_many("--dns", help="Set custom DNS servers"), True),
    (_many("--dns-option", help="Set DNS options"), True),
    (_many("--dns-search", help="Set custom DNS search domains"), True),
    (click.option("--domainname", metavar="string", help="Container NIS domain name"), True),
    (_many("--env-file", help="Read in a file of environment variables"), True),
    (_many("--expose", help="Expose a port or a range of ports"), True),
    (_many("--group-add", help="Add additional groups to join"), True),
    (click.option("--health-cmd", metavar="string", help="Command to run to check health"),
     True),
    (click.option("--health-interval", metavar="duration",
                  help="Time between running the check (ms|s|m|h) (default 0s)"), True),
    (click.option("--health-retries", type=int, metavar="int",
                  help="Consecutive failures needed to report unhealthy"), True),
    (click.option("--health-start-interval", metavar="duration",
                  help="Time between running the check during the start period "
                       "(ms|s|m|h) (default 0s)"), True),
    (click.option("--health-start-period", metavar="duration",
                  help="Start period for the container to initialize before starting "
                       "health-retries countdown (ms|s|m|h) (default 0s)"), True),
    (click.option("--health-timeout", metavar="duration",
                  help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"), True),
    (click.option("-h", "--hostname", metavar="string", help="Container host name"), True),
    (click.option("--ip", metavar="string", help="IPv4 address (e.g., 172.30.100.104)"), True),
    (_many("-l", "--label", help="Set meta data on a container"), True),
    (click.option("--log-driver", metavar="string", help="Logging driver for the container"),
     True),
    (_many("--log-opt", help="Log driver options"), True),
    (_many("--mount", metavar="mount", help="Attach a filesystem mount to the container"),
     True),
    (click.option("--memory-swap", metavar="bytes", help="Swap limit equal to memory plus "
                  "swap: '-1' to enable unlimited swap"), True),
    (click.option("--network", "--net", "network", metavar="network",
                  help="Connect a container to a network"), True),
    (_many("--network-alias", "--net-alias", "network_alias",
           help="Add network-scoped alias for the container"), True),
    (click.option("--no-healthcheck", is_flag=True,
                  help="Disable any container-specified HEALTHCHECK"), True),
    (click.option("--platform", metavar="string",
                  help="Set platform if server is multi-platform capable"), True),
    (click.option("--privileged", is_flag=True,
                  help="Give extended privileges to this container"), True),
    (_many("-p", "--publish", help="Publish a container's port(s) to the host"), True),
    (click.option("-P", "--publish-all", is_flag=True,
                  help="Publish all exposed ports to random ports"), True),
    (click.option("--pull", default="missing", metavar="string",
                  help='Pull image before running ("always", "missing", "never") '
                       '(default "missing")'), True),
    (click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output"), True),
    (click.option("--read-only", is_flag=True,
                  help="Mount the container's root filesystem as read only"), True),
    (click.option("--runtime", metavar="string",
                  help="Runtime to use for this container"), True),
    (_many("--security-opt", help="Security Options"), True),
    (click.option("--shm-size", metavar="bytes", help="Size of /dev/shm"), True),
    (click.option("--sig-proxy", type=click.BOOL, default=True, is_flag=False,
                  flag_value=True, metavar="",
                  help="Proxy received signals to the process (default true)"), False),
    (click.option("--stop-signal", metavar="string", help="Signal to stop the container"),
     True),
    (click.option("--stop-timeout", type=int, metavar="int",
                  help="Timeout (in seconds) to stop a container"), True),
    (_many("--sysctl", metavar="map", help="Sysctl options"), True),
    (_many("--tmpfs", help="Mount a tmpfs directory"), True),
    (_many("--ulimit", metavar="ulimit", help="Ulimit options"), True),
    (_many("-v", "--volume", help="Bind mount a volume"), True),
    (_many("--volumes-from", help="Mount volumes from the specified container(s)"), True),
]


def container_options(for_run: bool):
    """The decorator that adds the shared flags to `run` (all) or `create` (not --sig-proxy)."""
    def apply(f):
        for option, in_create in reversed(_OPTIONS):
            if for_run or in_create:
                f = option(f)
        return f
    return apply


# ----------------------------------------------------------------------------- parsing

def parse_bytes(text: str, flag: str) -> int:
    """docker's RAMInBytes (64m, 1g: binary units), read by the parser every layer shares."""
    from lowrt.units import ram_in_bytes
    try:
        return ram_in_bytes(text)
    except ValueError as e:
        raise invalid(text, flag, str(e)) from None


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str, flag: str) -> int:
    """Go's time.ParseDuration, in nanoseconds (the Healthcheck fields' unit)."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise invalid(text, flag, f'time: invalid duration "{text}"')
    ns = int(total)
    if text.startswith("-"):
        raise FlagError(f"{flag.split(', ')[-1]} cannot be negative")
    return ns


def parse_env_file(path: str) -> list[str]:
    """docker's env-file: KEY=VALUE lines; # comments and blank lines skipped; a bare KEY
    takes the caller's value, as -e KEY does."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise FlagError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    env = []
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not name or " " in name or "\t" in name:
            raise FlagError(f"variable '{name}' contains whitespaces" if name else
                            f"no variable name on line '{line}' ({path}:{number})")
        if eq:
            env.append(f"{name}={value}")
        elif name in os.environ:
            env.append(f"{name}={os.environ[name]}")
    return env


def _key_values(items, flag: str, bare_ok: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key or (not eq and not bare_ok):
            raise invalid(item, flag, f"invalid {flag.split(', ')[-1].lstrip('-')} format: "
                          f"{item}" if key else "invalid key")
        out[key] = value
    return out


def _port_range(text: str, what: str) -> tuple[int, int]:
    """A port or a LO-HI range; `what` (containerPort, hostPort, port) names it in errors."""
    first, dash, last = text.partition("-")
    try:
        lo, hi = int(first), int(last) if dash else int(first)
    except ValueError:
        raise FlagError(f"invalid {what}: {text}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise FlagError(f"invalid {what}: {text}")
    return lo, hi


_PROTOS = ("tcp", "udp", "sctp")


def parse_publish(specs, exposed: dict, bindings: dict) -> None:
    """-p [ip:][hostPort:]containerPort[/proto], ranges included, as nat.ParsePortSpec:
    a host range for one container port is kept whole (the daemon picks one from it)."""
    flag = "-p, --publish"
    for spec in specs:
        rest, _, proto = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
        proto = proto.lower() or "tcp"
        if proto not in _PROTOS:
            raise FlagError(f"invalid proto: {proto}")
        ip = host = ""
        if rest.startswith("["):                     # [::1]:8080:80
            end = rest.find("]")
            ip, rest = rest[1:end], rest[end + 2:]
            host, _, container = rest.rpartition(":")
        else:
            parts = rest.split(":")
            if len(parts) == 1:
                container = parts[0]
            elif len(parts) == 2:
                host, container = parts
            elif len(parts) == 3:
                ip, host, container = parts
            else:
                ip = ":".join(parts[:-2])
                host, container = parts[-2], parts[-1]
        if ip:
            import ipaddress
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise FlagError(f"invalid IP address: {ip}") from None
        if not container:
            raise invalid(spec, flag, f"no port specified: {spec}<empty>")
        lo, hi = _port_range(container, "containerPort")
        hlo = hhi = None
        if host:
            hlo, hhi = _port_range(host, "hostPort")
            if hi != lo and hhi - hlo != hi - lo:
                raise invalid(spec, flag, "invalid ranges specified for container and host "
                              f"Ports: {container} and {host}")
        for i, port in enumerate(range(lo, hi + 1)):
            key = f"{port}/{proto}"
            exposed[key] = {}
            if not host:
                host_port = ""
            elif hi == lo:
                host_port = host if hhi != hlo else str(hlo)
            else:
                host_port = str(hlo + i)
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host_port})


def parse_expose(specs, exposed: dict) -> None:
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = proto.lower() or "tcp"
        if proto not in _PROTOS:
            raise invalid(spec, "--expose", f"invalid proto: {proto}")
        lo, hi = _port_range(port, "range format for --expose")
        for p in range(lo, hi + 1):
            exposed[f"{p}/{proto}"] = {}


def parse_volumes(specs, binds: list, volumes: dict) -> None:
    """-v: SRC:DST[:MODE] is a bind or a named volume (Binds); a lone DST an anonymous volume
    (Config.Volumes). A source that starts with '.' is made absolute, as docker 23+ does."""
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 1:         # the daemon judges the specs, as it does the docker CLI's
            volumes[spec] = {}
            continue
        if parts[0].startswith("."):
            parts[0] = os.path.abspath(parts[0])
        binds.append(":".join(parts))


_TRUE = ("", "1", "true", "True", "TRUE")
_FALSE = ("0", "false", "False", "FALSE")


def _bool(value: str, spec: str, key: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise invalid(spec, "--mount", f"invalid value for {key}: {value}")


def parse_mount(spec: str) -> dict:
    """--mount type=...,source=...,target=...[,readonly][,bind-propagation=...]
    [,volume-nocopy][,volume-label=K=V][,volume-driver=...][,volume-opt=K=V]
    [,tmpfs-size=...][,tmpfs-mode=...]: one HostConfig.Mounts entry."""
    import csv
    fields = next(csv.reader([spec]))
    mount: dict = {"Type": "volume"}
    bind: dict = {}
    volume: dict = {}
    tmpfs: dict = {}
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise invalid(spec, "--mount", f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs", "npipe", "cluster", "image"):
                raise invalid(spec, "--mount", f"invalid type: {value}")
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            if _bool(value, spec, key):
                mount["ReadOnly"] = True
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool(value, spec, key)
        elif key == "volume-nocopy":
            volume["NoCopy"] = _bool(value, spec, key)
        elif key == "volume-label":
            k, _, v = value.partition("=")
            volume.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = parse_bytes(value, "--mount")
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise invalid(spec, "--mount", f"invalid value for {key}: {value}") from None
        else:
            raise invalid(spec, "--mount", f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise invalid(spec, "--mount", "target is required")
    kind = mount["Type"]
    if bind and kind != "bind":
        raise invalid(spec, "--mount", f"cannot mix 'bind-*' options with mount type '{kind}'")
    if volume and kind != "volume":
        raise invalid(spec, "--mount",
                      f"cannot mix 'volume-*' options with mount type '{kind}'")
    if tmpfs and kind != "tmpfs":
        raise invalid(spec, "--mount", f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
    if bind:
        mount["BindOptions"] = bind
    if volume:
        volume.setdefault("DriverConfig", {})
        mount["VolumeOptions"] = volume
    if tmpfs:
        mount["TmpfsOptions"] = tmpfs
    return mount


def parse_device(spec: str) -> dict:
    """--device HOST[:CONTAINER][:PERMISSIONS]: permissions are some of r, w, m."""
    parts = spec.split(":")
    perms = "rwm"
    if len(parts) == 3:
        src, dst, perms = parts
    elif len(parts) == 2:
        src, dst = parts
        if dst and set(dst) <= set("rwm") and not dst.startswith("/"):
            dst, perms = src, dst
    elif len(parts) == 1:
        src = dst = spec
    else:
        raise invalid(spec, "--device", f"bad format for path: {spec}")
    if not perms or not set(perms) <= set("rwm"):
        raise invalid(spec, "--device", f"bad mode specified: {perms}")
    if not dst.startswith("/"):
        raise invalid(spec, "--device", f"bad format for path: {dst}")
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}


def parse_ulimit(spec: str) -> dict:
    """--ulimit NAME=SOFT[:HARD]; HARD defaults to SOFT."""
    name, eq, value = spec.partition("=")
    soft, colon, hard = value.partition(":")
    try:
        if not eq or not name:
            raise ValueError
        s = int(soft)
        h = int(hard) if colon else s
    except ValueError:
        raise invalid(spec, "--ulimit", f"invalid ulimit argument: {spec}") from None
    if s > h and h != -1:
        raise invalid(spec, "--ulimit", f"ulimit soft limit must be less than or equal to "
                      f"hard limit: {s} > {h}")
    return {"Name": name, "Hard": h, "Soft": s}


def _capability(name: str) -> str:
    upper = name.upper()
    return upper if upper == "ALL" or upper.startswith("CAP_") else "CAP_" + upper


def parse_security_opts(opts) -> list[str]:
    """As the docker CLI: seccomp=PROFILE sends the profile's JSON (compacted), not its path;
    the old colon form (label:...) becomes key=value."""
    out = []
    for opt in opts:
        if opt == "systempaths=unconfined":
            out.append(opt)
            continue
        key, eq, value = opt.partition("=")
        if not eq:
            key, colon, value = opt.partition(":")
            if colon:
                opt = f"{key}={value}"
        if key == "seccomp" and value not in ("unconfined", "builtin", ""):
            import json
            try:
                with open(value, encoding="utf-8") as f:
                    profile = json.load(f)
            except (OSError, ValueError) as e:
                raise FlagError(f"opening seccomp profile ({value}) failed: {e}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out


def healthcheck(p: dict) -> dict | None:
    names = ("health_cmd", "health_interval", "health_timeout", "health_start_period",
             "health_start_interval", "health_retries")
    given = [n for n in names if p.get(n) is not None]
    if p.get("no_healthcheck"):
        if given:
            raise FlagError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    check: dict = {}
    if p.get("health_cmd"):
        check["Test"] = ["CMD-SHELL", p["health_cmd"]]
    for name, field in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                        ("health_start_period", "StartPeriod"),
                        ("health_start_interval", "StartInterval")):
        if p.get(name) is not None:
            check[field] = parse_duration(p[name], "--" + name.replace("_", "-"))
    if p.get("health_retries") is not None:
        if p["health_retries"] < 0:
            raise FlagError("--health-retries cannot be negative")
        check["Retries"] = p["health_retries"]
    return check


def attach_streams(attach, interactive: bool, detach: bool) -> tuple[bool, bool, bool]:
    """(stdin, stdout, stderr) to attach: -a picks them, otherwise stdout and stderr; -i always
    adds stdin (as the docker CLI); -d attaches none."""
    if attach:
        if detach:
            raise FlagError("Conflicting options: -a and -d")
        wanted = set()
        for stream in attach:
            if stream.lower() not in ("stdin", "stdout", "stderr"):
                raise invalid(stream, "-a, --attach", "valid streams are STDIN, STDOUT and "
                              "STDERR")
            wanted.add(stream.lower())
        return interactive or "stdin" in wanted, "stdout" in wanted, "stderr" in wanted
    if detach:
        return False, False, False
    return interactive, True, True


def build(p: dict, streams: tuple[bool, bool, bool]) -> tuple[dict, dict]:
    """The create body and the create query (name, platform) for the parsed flags `p`."""
    from .containers import parse_env
    stdin, stdout, stderr = streams
    hc: dict = {"AutoRemove": bool(p.get("remove")), "NetworkMode": p.get("network") or
                "default", "LogConfig": {"Type": p.get("log_driver") or "",
                                         "Config": _key_values(p["log_opt"], "--log-opt",
                                                               False)},
                "RestartPolicy": p["restart_policy"]}
    config: dict = {"Image": p["image"], "Cmd": list(p["command"]) or None,
                    "Tty": p["tty"], "OpenStdin": p["interactive"],
                    "StdinOnce": p["interactive"] and stdin, "AttachStdin": stdin,
                    "AttachStdout": stdout, "AttachStderr": stderr,
                    "Entrypoint": [p["entrypoint"]] if p.get("entrypoint") else None,
                    "WorkingDir": p.get("workdir") or "", "User": p.get("user") or "",
                    "Hostname": p.get("hostname") or "", "Domainname": p.get("domainname") or ""}
    env = []
    for path in p["env_file"]:
        env += parse_env_file(path)
    config["Env"] = env + parse_env(p["env"])
    if p.get("memory"):
        hc["Memory"] = parse_bytes(p["memory"], "-m, --memory")
    if p.get("memory_swap"):
        hc["MemorySwap"] = -1 if p["memory_swap"] == "-1" else \
            parse_bytes(p["memory_swap"], "--memory-swap")
    if p.get("shm_size"):
        hc["ShmSize"] = parse_bytes(p["shm_size"], "--shm-size")
    if p.get("pids_limit") is not None:
        hc["PidsLimit"] = p["pids_limit"]
    if p.get("init"):
        hc["Init"] = True
    if p.get("cpus"):
        try:
            cpus = float(p["cpus"])
        except ValueError:
            raise invalid(p["cpus"], "--cpus", "failed to parse " + p["cpus"] + " as a "
                          "rational number") from None
        hc["NanoCpus"] = round(cpus * 1e9)
    if p.get("cpu_shares") is not None:
        hc["CpuShares"] = p["cpu_shares"]
    if p.get("cpuset_cpus"):
        hc["CpusetCpus"] = p["cpuset_cpus"]
    exposed: dict = {}
    bindings: dict = {}
    parse_publish(p["publish"], exposed, bindings)
    parse_expose(p["expose"], exposed)
    if exposed:
        config["ExposedPorts"] = exposed
    hc["PortBindings"] = bindings
    if p.get("publish_all"):
        hc["PublishAllPorts"] = True
    binds: list = []
    volumes: dict = {}
    parse_volumes(p["volume"], binds, volumes)
    if binds:
        hc["Binds"] = binds
    config["Volumes"] = volumes
    if p["mount"]:
        hc["Mounts"] = [parse_mount(m) for m in p["mount"]]
    if p["tmpfs"]:
        tmpfs = {}
        for spec in p["tmpfs"]:
            path, _, opts = spec.partition(":")
            tmpfs[path] = opts
        hc["Tmpfs"] = tmpfs
    for flag, field in (("volumes_from", "VolumesFrom"), ("add_host", "ExtraHosts"),
                        ("group_add", "GroupAdd")):
        if p[flag]:
            hc[field] = list(p[flag])
    for flag, field in (("dns", "Dns"), ("dns_search", "DnsSearch"),
                        ("dns_option", "DnsOptions")):
        hc[field] = list(p[flag])
    if p["dns"]:
        import ipaddress
        for server in p["dns"]:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise invalid(server, "--dns", "IP address is not correctly formatted: "
                              f"{server}") from None
    if p["cap_add"]:
        hc["CapAdd"] = [_capability(c) for c in p["cap_add"]]
    if p["cap_drop"]:
        hc["CapDrop"] = [_capability(c) for c in p["cap_drop"]]
    if p.get("privileged"):
        hc["Privileged"] = True
    if p.get("read_only"):
        hc["ReadonlyRootfs"] = True
    if p["security_opt"]:
        hc["SecurityOpt"] = parse_security_opts(p["security_opt"])
    if p["device"]:
        hc["Devices"] = [parse_device(d) for d in p["device"]]
    if p["ulimit"]:
        hc["Ulimits"] = [parse_ulimit(u) for u in p["ulimit"]]
    if p["sysctl"]:
        hc["Sysctls"] = _key_values(p["sysctl"], "--sysctl", False)
    if p.get("runtime"):
        hc["Runtime"] = p["runtime"]
    if p.get("cidfile"):
        hc["ContainerIDFile"] = p["cidfile"]
    config["Labels"] = _key_values(p["label"], "-l, --label", True)
    if p.get("stop_signal"):
        config["StopSignal"] = p["stop_signal"]
    if p.get("stop_timeout") is not None:
        config["StopTimeout"] = p["stop_timeout"]
    check = healthcheck(p)
    if check is not None:
        config["Healthcheck"] = check
    if p.get("tty") and stdout and p.get("console_size"):
        hc["ConsoleSize"] = list(p["console_size"])
    config["HostConfig"] = hc
    network = p.get("network") or ""
    if p["network_alias"] or p.get("ip"):      # the daemon says where they cannot be used
        endpoint: dict = {}
        if p["network_alias"]:
            endpoint["Aliases"] = list(p["network_alias"])
        if p.get("ip"):
            import ipaddress
            try:
                ipaddress.IPv4Address(p["ip"])
            except ValueError:
                raise invalid(p["ip"], "--ip", "invalid IPv4 address") from None
            endpoint["IPAMConfig"] = {"IPv4Address": p["ip"]}
        config["NetworkingConfig"] = {"EndpointsConfig": {network or "default": endpoint}}
    query = {"name": p.get("name") or None, "platform": p.get("platform") or None}
    return config, query
