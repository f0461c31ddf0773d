"""berthd's options: its command line and /etc/berth/daemon.json, merged as dockerd merges
them. A setting may come from either; one given both ways, a key no option has, or a value of
the wrong type is refused with dockerd's words, so that a typo never passes for a setting.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
from pathlib import Path

from . import cpu_rt
from .config import (DEFAULT_CONFIG_FILE, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT, DEFAULT_GROUP,
                     DEFAULT_HOST, DaemonConfig)

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")

# daemon.json key -> (argparse dest, JSON type), as dockerd names them
FILE_KEYS: dict[str, tuple[str, type]] = {
    "hosts": ("hosts", list), "data-root": ("data_root", str), "exec-root": ("exec_root", str),
    "default-runtime": ("default_runtime", str), "cgroup-parent": ("cgroup_parent", str),
    "pidfile": ("pidfile", str), "init": ("init", bool), "init-path": ("init_path", str),
    "debug": ("debug", bool), "log-level": ("log_level", str), "group": ("group", str),
    "tls": ("tls", bool), "tlsverify": ("tlsverify", bool), "tlscacert": ("tlscacert", str),
    "tlscert": ("tlscert", str), "tlskey": ("tlskey", str),
    "insecure-tcp": ("insecure_tcp", bool), "supervisor": ("supervisor", str),
    "cpu-rt-period": ("cpu_rt_period", int), "cpu-rt-runtime": ("cpu_rt_runtime", int),
    "bip": ("bip", str), "insecure-registries": ("insecure_registries", list),
    "registry-mirrors": ("registry_mirrors", list),
}
# dockerd keys berth knows and cannot apply yet: refused by name rather than called unknown
NOT_YET: dict[str, str] = {}


class OptionsError(ValueError):
    pass


def _parser() -> argparse.ArgumentParser:
    # every default is None, so that what the command line gave is known when merging
    p = argparse.ArgumentParser(prog="berthd", description="berth's container engine: the "
                                "Docker Engine API over berth-supervisor", argument_default=None)
    p.add_argument("-H", "--host", action="append", dest="hosts", metavar="HOST",
                   help="where to serve the API: unix:///PATH, tcp://ADDR:PORT or fd:// "
                   f"(systemd); repeatable; default {DEFAULT_HOST}")
    p.add_argument("--config-file", help=f"daemon configuration file (default "
                   f"{DEFAULT_CONFIG_FILE}; flags and the file may not both set an option)")
    p.add_argument("--data-root", help=f"persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", help=f"runtime state and sockets (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("--supervisor", metavar="ADDRESS",
                   help="use this running berth-supervisor instead of starting one")
    p.add_argument("--default-runtime",
                   help="OCI runtime for containers: lowrt (default), runc, crun or a path")
    p.add_argument("--cgroup-parent", help="parent cgroup of containers (default /berth)")
    p.add_argument("--cpu-rt-period", type=int, metavar="MICROSECONDS",
                   help="real-time period of the cgroup parent of all containers (cgroup v1 "
                   "with a kernel that has CONFIG_RT_GROUP_SCHED)")
    p.add_argument("--cpu-rt-runtime", type=int, metavar="MICROSECONDS",
                   help="real-time runtime of the cgroup parent of all containers, the budget "
                   "their --cpu-rt-runtime shares (cgroup v1 with CONFIG_RT_GROUP_SCHED)")
    p.add_argument("--bip", metavar="CIDR", help="the default bridge's address and subnet, "
                   "e.g. 10.200.0.1/24 (default: the first of 172.17-31.0.0/16, "
                   "192.168.*.0/20 that no host route overlaps)")
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries",
                   metavar="HOST[:PORT]|CIDR", help="a registry spoken to without TLS "
                   "verification (and over plain HTTP if it has no TLS); repeatable. "
                   "127.0.0.0/8 is always insecure, as with dockerd")
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors",
                   metavar="URL", help="a mirror asked first for pulls from docker.io "
                   "(http:// or https://); repeatable")
    p.add_argument("--pidfile", help="where to write berthd's pid (default <exec-root>/berthd.pid)")
    p.add_argument("--init", action="store_const", const=True,
                   help="run an init inside containers that forwards signals and reaps processes")
    p.add_argument("--init-path", help="the init --init runs (default: docker-init, then "
                   "tini-static, on PATH; a static binary)")
    p.add_argument("-G", "--group", help=f"group of the unix sockets (default {DEFAULT_GROUP}, "
                   "when it exists)")
    p.add_argument("-D", "--debug", action="store_const", const=True, help="debug logging")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS, help="log level (default info)")
    p.add_argument("--tls", action="store_const", const=True, help="serve tcp:// over TLS")
    p.add_argument("--tlsverify", action="store_const", const=True,
                   help="serve tcp:// over TLS and require a client certificate signed by "
                   "--tlscacert (implies --tls)")
    p.add_argument("--tlscacert", help="trust client certificates signed only by this CA "
                   "(default $DOCKER_CERT_PATH/ca.pem, ~/.docker/ca.pem)")
    p.add_argument("--tlscert", help="the server's certificate (default …/cert.pem)")
    p.add_argument("--tlskey", help="the server's key (default …/key.pem)")
    p.add_argument("--insecure-tcp", action="store_const", const=True,
                   help="serve tcp:// hosts without --tlsverify. Anyone who can reach the port "
                   "is root on this host: for a loopback test, never a network")
    return p


def read_config_file(path: str) -> dict:
    """daemon.json's settings by argparse dest; unknown keys and wrong types are errors."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise OptionsError(f"unable to configure the berth daemon with file {path}: "
                           f"{e.strerror.lower() if e.strerror else e}") from None
    except ValueError as e:
        raise OptionsError(f"unable to configure the berth daemon with file {path}: "
                           f"invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise OptionsError(f"unable to configure the berth daemon with file {path}: "
                           "the file must hold a JSON object")
    for key, why in NOT_YET.items():
        if key in data:
            raise OptionsError(f"unable to configure the berth daemon with file {path}: "
                               f"{key} cannot be applied: {why}")
    unknown = sorted(k for k in data if k not in FILE_KEYS)
    if unknown:
        raise OptionsError(f"unable to configure the berth daemon with file {path}: the "
                           "following directives don't match any configuration option: "
                           + ", ".join(unknown))
    out = {}
    for key, value in data.items():
        dest, kind = FILE_KEYS[key]
        if not isinstance(value, kind) or (kind is list and not all(
                isinstance(v, str) for v in value)) or (kind is int and isinstance(value, bool)):
            want = {list: "a list of strings", bool: "true or false", str: "a string",
                    int: "an integer"}[kind]
            raise OptionsError(f"unable to configure the berth daemon with file {path}: "
                               f"{key} must be {want}, not {json.dumps(value)}")
        out[dest] = value
    return out


def _merge(flags: argparse.Namespace, from_file: dict, path: str) -> dict:
    both = [key for key, (dest, _) in FILE_KEYS.items()
            if dest in from_file and getattr(flags, dest) is not None]
    if both:
        parts = [f"{key}: (from flag: {_show(getattr(flags, FILE_KEYS[key][0]))}, "
                 f"from file: {_show(from_file[FILE_KEYS[key][0]])})" for key in both]
        raise OptionsError(f"unable to configure the berth daemon with file {path}: the "
                           "following directives are specified both as a flag and in the "
                           "configuration file: " + ", ".join(parts))
    merged = {k: v for k, v in vars(flags).items() if v is not None}
    merged.update(from_file)
    return merged


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + " ".join(value) + "]"
    return str(value)


def _bip(text: str | None) -> str | None:
    """--bip as dockerd reads it: an IPv4 address with its prefix, the address the bridge's
    (not the subnet's network or broadcast address)."""
    if not text:
        return None
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise OptionsError(f"invalid --bip {text!r}: not an IPv4 address with a prefix "
                           "(e.g. 10.200.0.1/24)") from None
    net = iface.network
    if "/" not in text or net.prefixlen > 30 or iface.ip in (net.network_address,
                                                             net.broadcast_address):
        raise OptionsError(f"invalid --bip {text!r}: give the bridge's address in a subnet "
                           "of at least 4 addresses, e.g. 10.200.0.1/24")
    return str(iface)


def _insecure_registries(entries: list[str]) -> list[str]:
    from .registry.transport import check_insecure_entry
    try:
        return [check_insecure_entry(e) for e in entries]
    except ValueError as e:
        raise OptionsError(str(e)) from None


def _registry_mirrors(entries: list[str]) -> list[str]:
    from .registry.transport import check_mirror
    try:
        return [check_mirror(e) for e in entries]
    except ValueError as e:
        raise OptionsError(str(e)) from None


def parse(argv: list[str] | None = None) -> DaemonConfig:
    """The configuration, or SystemExit with berthd's usage error."""
    p = _parser()
    flags = p.parse_args(argv)
    try:
        return _config(flags)
    except (OptionsError, ValueError) as e:
        p.exit(1, f"berthd: {e}\n")


def _config(flags: argparse.Namespace) -> DaemonConfig:
    from .listeners import parse_host
    from .tlscerts import docker_cert_path

    path = flags.config_file or DEFAULT_CONFIG_FILE
    from_file = {}
    if flags.config_file or os.path.exists(path):
        from_file = read_config_file(path)
    o = _merge(flags, from_file, path)
    if o.get("log_level") is not None and o["log_level"] not in LOG_LEVELS:
        raise OptionsError(f"invalid log-level {o['log_level']!r}: choose one of "
                           + ", ".join(LOG_LEVELS))
    tlsverify = bool(o.get("tlsverify"))
    tls = tlsverify or bool(o.get("tls"))
    hosts = o.get("hosts") or [DEFAULT_HOST]
    parsed = [parse_host(h, tls) for h in hosts]
    tcp = [str(h) for h in parsed if h.scheme == "tcp"]
    if tcp and not tlsverify and not o.get("insecure_tcp"):
        how = "over TLS without client verification" if tls else "without TLS"
        raise OptionsError(
            f"refusing to serve {', '.join(tcp)} {how}: anyone who reaches the port would be "
            "root on this host. Make a CA and certificates with `berth tls ca DIR`, `berth tls "
            "server DIR --ca DIR --san NAME_OR_IP` and `berth tls client DIR --ca DIR`, then "
            "start berthd with --tlsverify --tlscacert DIR/ca.pem --tlscert DIR/cert.pem "
            "--tlskey DIR/key.pem (or pass --insecure-tcp to serve it anyway, on loopback, "
            "for a test)")
    exec_root = Path(o.get("exec_root") or DEFAULT_EXEC_ROOT).resolve()
    cfg = DaemonConfig(
        hosts=[h if p.scheme != "tcp" else str(p) for h, p in zip(hosts, parsed)],
        data_root=Path(o.get("data_root") or DEFAULT_DATA_ROOT).resolve(),
        exec_root=exec_root, supervisor=o.get("supervisor"),
        default_runtime=o.get("default_runtime") or "lowrt",
        cgroup_parent=o.get("cgroup_parent") or "/berth",
        debug=bool(o.get("debug")) or o.get("log_level") == "debug",
        log_level="debug" if o.get("debug") else (o.get("log_level") or "info"),
        init=bool(o.get("init")), init_path=o.get("init_path"),
        pidfile=Path(o["pidfile"]) if o.get("pidfile") else exec_root / "berthd.pid",
        group=o.get("group", DEFAULT_GROUP) or None, group_required="group" in o,
        tls=tls, tlsverify=tlsverify,
        tlscacert=o.get("tlscacert") or (docker_cert_path("ca.pem") if tlsverify else None),
        tlscert=o.get("tlscert") or (docker_cert_path("cert.pem") if tls else None),
        tlskey=o.get("tlskey") or (docker_cert_path("key.pem") if tls else None),
        insecure_tcp=bool(o.get("insecure_tcp")))
    # (DaemonConfig fields of their own are requested of engine/config.py's owner)
    cfg.bip = _bip(o.get("bip"))
    cfg.insecure_registries = _insecure_registries(o.get("insecure_registries") or [])
    cfg.registry_mirrors = _registry_mirrors(o.get("registry_mirrors") or [])
    cfg.cpu_rt_period = o.get("cpu_rt_period") or 0
    cfg.cpu_rt_runtime = o.get("cpu_rt_runtime") or 0
    refusal = cpu_rt.check_options(cfg.cpu_rt_period, cfg.cpu_rt_runtime, cfg.cgroup_v2)
    if refusal:
        raise OptionsError(refusal)
    if (cfg.init or cfg.init_path) and cfg.init_binary() is None:
        raise OptionsError(f"no init binary: {cfg.init_path or 'docker-init or tini-static'} "
                           "is not an executable on PATH (Debian's tini package has tini-static)")
    return cfg
