"""System verbs: version, info, and `system` (info, dial-stdio)."""
from __future__ import annotations

import platform
import sys

import click

from .client import ConnectError, DaemonError


def _client_version() -> str:
    from ..version import API_VERSION, VERSION
    return (f"Client:\n Version:           {VERSION}\n API version:       {API_VERSION}\n"
            f" Python version:    {platform.python_version()}\n OS/Arch:           "
            f"linux/{platform.machine()}")


@click.command(context_settings={"help_option_names": ["--help"]})
@click.pass_obj
def version(obj):
    """Show the berth version information."""
    print(_client_version())
    print()
    try:
        v = obj.client.call("GET", "/version")
    except (ConnectError, DaemonError) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"Server: {v.get('Platform', {}).get('Name', '')}")
    for comp in v.get("Components") or []:
        print(f" {comp['Name']}:")
        print(f"  Version:          {comp.get('Version', '')}")
        details = comp.get("Details") or {}
        for key, label in (("ApiVersion", "API version"), ("MinAPIVersion", "Minimum API"),
                           ("GitCommit", "Git commit"), ("GoVersion", "Built with"),
                           ("Os", "OS"), ("Arch", "Arch"), ("KernelVersion", "Kernel")):
            if details.get(key):
                print(f"  {label + ':':<17} {details[key]}")
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.pass_obj
def info(obj):
    """Display system-wide information."""
    i = obj.client.call("GET", "/info")
    lines = [
        ("Containers", i.get("Containers")),
        (" Running", i.get("ContainersRunning")),
        (" Paused", i.get("ContainersPaused")),
        (" Stopped", i.get("ContainersStopped")),
        ("Images", i.get("Images")),
        ("Server Version", i.get("ServerVersion")),
        ("Storage Driver", i.get("Driver")),
        ("Logging Driver", i.get("LoggingDriver")),
        ("Cgroup Driver", i.get("CgroupDriver")),
        ("Cgroup Version", i.get("CgroupVersion")),
        ("Runtimes", " ".join(sorted(i.get("Runtimes") or {}))),
        ("Default Runtime", i.get("DefaultRuntime")),
        ("Kernel Version", i.get("KernelVersion")),
        ("Operating System", i.get("OperatingSystem")),
        ("OSType", i.get("OSType")),
        ("Architecture", i.get("Architecture")),
        ("CPUs", i.get("NCPU")),
        ("Total Memory", f"{(i.get('MemTotal') or 0) / (1 << 30):.2f}GiB"),
        ("Name", i.get("Name")),
        ("ID", i.get("ID")),
        ("Berth Root Dir", i.get("DockerRootDir")),
        ("Debug Mode", str(i.get("Debug", False)).lower()),
        ("Live Restore Enabled", str(i.get("LiveRestoreEnabled", False)).lower()),
    ]
    print("Server:")
    for key, value in lines:
        print(f" {key}: {value}")
    for warning in i.get("Warnings") or []:
        print(warning, file=sys.stderr)
    return 0


@click.group(context_settings={"help_option_names": ["--help"]})
def system():
    """Manage berth."""


system.add_command(info)


@system.command("dial-stdio")
@click.pass_obj
def dial_stdio(obj):
    """Proxy the stdio stream to the daemon connection (what ssh:// hosts run remotely)."""
    import os
    import socket
    import threading

    conn = obj.client.connect()

    def stdin_to_daemon() -> None:
        try:
            while data := os.read(0, 65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=stdin_to_daemon, daemon=True).start()
    try:
        while data := conn.recv(65536):
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    except OSError:
        pass
    # the daemon is done: so is this bridge, whether or not our stdin has ended
    conn.close()
    return 0


COMMANDS = [version, info, system]
