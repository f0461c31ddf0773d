"""Container lifecycle verbs: start, stop, restart, kill, wait, pause, unpause, rename. As the
docker CLI: each named container in turn, its name echoed on success, each failure printed, and
exit status 1 when any failed."""
from __future__ import annotations

import sys

import click

from .client import DaemonError
from .containers import Waiter, proxy_signals, resize_container
from .session import run_session

CTX = {"help_option_names": ["--help"]}


def _each(containers, action) -> int:
    failed = False
    for name in containers:
        try:
            action(name)
        except DaemonError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _post(client, path: str, query: dict | None = None) -> None:
    client.request("POST", path, query).read()


@click.command(context_settings=CTX)
@click.option("-a", "--attach", is_flag=True, help="Attach stdout/stderr and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach the container's stdin")
@click.option("--detach-keys", help="Override the key sequence for detaching a container "
              "(default ctrl-p,ctrl-q)")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def start(obj, attach, interactive, detach_keys, containers):
    """Start one or more stopped containers."""
    client = obj.client
    if attach or interactive:
        if len(containers) > 1:
            print("berth: you cannot start and attach multiple containers at once",
                  file=sys.stderr)
            return 1
        from ..detach_keys import InvalidDetachKeys, parse as parse_detach_keys
        try:
            keys = parse_detach_keys(detach_keys)
        except InvalidDetachKeys as e:
            print(e, file=sys.stderr)
            return 1
        return _start_attached(client, containers[0], interactive, detach_keys, keys)

    def one(name):
        _post(client, f"/containers/{name}/start")
        print(name)
    code = _each(containers, one)
    if code:
        print(f"Error: failed to start containers: {', '.join(containers)}", file=sys.stderr)
    return code


def _start_attached(client, name: str, interactive: bool, detach_keys: str | None,
                    keys: bytes) -> int:
    info = client.call("GET", f"/containers/{name}/json")
    cid, tty = info["Id"], bool(info["Config"].get("Tty"))
    stdin = interactive and bool(info["Config"].get("OpenStdin"))
    query = {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else None,
             "detachKeys": detach_keys}
    sock, first = client.hijack(f"/containers/{cid}/attach", query)
    removed = bool(info["HostConfig"].get("AutoRemove"))
    waiter = Waiter(client, cid, "removed" if removed else "next-exit")
    waiter.start()
    try:
        _post(client, f"/containers/{cid}/start")
    except DaemonError as e:
        sock.close()
        print(f"Error response from daemon: {e.message}", file=sys.stderr)
        return 1
    proxy_signals(client, cid)
    if run_session(sock, first, tty=tty, interactive=stdin, detach_keys=keys,
                   resize=lambda h, w: resize_container(client, cid, h, w)):
        return 0          # detached: the container runs on
    return waiter.status_code()


@click.command(context_settings=CTX)
@click.option("-s", "--signal", "sig", help="Signal to send to the container")
@click.option("-t", "--timeout", type=int, help="Seconds to wait before killing the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(obj, sig, timeout, containers):
    """Stop one or more running containers."""
    def one(name):
        _post(obj.client, f"/containers/{name}/stop", {"signal": sig, "t": timeout})
        print(name)
    return _each(containers, one)


@click.command(context_settings=CTX)
@click.option("-s", "--signal", "sig", help="Signal to send to the container")
@click.option("-t", "--timeout", type=int, help="Seconds to wait before killing the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def restart(obj, sig, timeout, containers):
    """Restart one or more containers."""
    def one(name):
        _post(obj.client, f"/containers/{name}/restart", {"signal": sig, "t": timeout})
        print(name)
    return _each(containers, one)


@click.command(context_settings=CTX)
@click.option("-s", "--signal", "sig", help="Signal to send to the container (default KILL)")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def kill(obj, sig, containers):
    """Kill one or more running containers."""
    def one(name):
        _post(obj.client, f"/containers/{name}/kill", {"signal": sig})
        print(name)
    return _each(containers, one)


@click.command(context_settings=CTX)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait(obj, containers):
    """Block until one or more containers stop, then print their exit codes."""
    errors = []

    def one(name):
        result = obj.client.call("POST", f"/containers/{name}/wait")
        if result.get("Error"):
            errors.append(result["Error"].get("Message", ""))    # printed as it is, as docker
        else:
            print(result["StatusCode"])
    code = _each(containers, one)
    for message in errors:
        print(message, file=sys.stderr)
    return 1 if errors else code


@click.command(context_settings=CTX)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def pause(obj, containers):
    """Pause all processes within one or more containers."""
    def one(name):
        _post(obj.client, f"/containers/{name}/pause")
        print(name)
    return _each(containers, one)


@click.command(context_settings=CTX)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def unpause(obj, containers):
    """Unpause all processes within one or more containers."""
    def one(name):
        _post(obj.client, f"/containers/{name}/unpause")
        print(name)
    return _each(containers, one)


@click.command(context_settings=CTX)
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def rename(obj, container, new_name):
    """Rename a container."""
    _post(obj.client, f"/containers/{container}/rename", {"name": new_name})
    return 0


COMMANDS = [start, stop, restart, kill, wait, pause, unpause, rename]
