"""Container verbs: run, ps, logs, rm. Each makes the same API calls as the docker CLI's."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import click

from .client import ConnectError, DaemonError, demux
from .format import human_duration, table, truncate_id
from .session import check_tty, run_session, terminal_size

PROXIED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def parse_env(values: tuple[str, ...]) -> list[str]:
    env = []
    for item in values:
        if "=" in item:
            env.append(item)
        elif item in os.environ:      # -e NAME takes NAME from the caller's environment
            env.append(f"{item}={os.environ[item]}")
    return env


def parse_bytes(text: str) -> int:
    """docker's RAMInBytes: 64m, 1g, 512k, 1024 (binary units), read by the one parser every
    layer shares."""
    from lowrt.units import ram_in_bytes
    try:
        return ram_in_bytes(text)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _start_exit_code(message: str) -> int:
    """As docker run: 127 when the command was not found, 126 when it cannot be run."""
    low = message.lower()
    if any(s in low for s in ("executable file not found", "no such file or directory",
                              "system cannot find the file specified")):
        return 127
    if "permission denied" in low:
        return 126
    return 125


def _fail(message: str, code: int = 125) -> None:
    print(f"berth: {message}", file=sys.stderr)
    print("Run 'berth run --help' for more information", file=sys.stderr)
    sys.exit(code)


def _created(reply: dict) -> str:
    for warning in reply.get("Warnings") or []:   # options dropped, as the docker CLI shows them
        print(f"WARNING: {warning}", file=sys.stderr)
    return reply["Id"]


def _create(client, body: dict, name: str | None, image: str) -> str:
    query = {"name": name} if name else None
    try:
        return _created(client.call("POST", "/containers/create", query, body))
    except DaemonError as e:
        if e.status != 404 or "No such image" not in e.message:
            raise
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    shown = image if tag else f"{image}:latest"
    print(f"Unable to find image '{shown}' locally", file=sys.stderr)
    resp = client.request("POST", "/images/create", {"fromImage": repo or image,
                                                       "tag": tag or "latest"})
    for line in resp.read().splitlines():
        if b'"error"' in line:
            import json
            raise DaemonError(500, json.loads(line)["error"])
    return _created(client.call("POST", "/containers/create", query, body))


class Waiter(threading.Thread):
    """POST /containers/{id}/wait on its own connection, sent before start (as the CLI does)."""

    def __init__(self, client, cid: str, condition: str):
        super().__init__(daemon=True)
        self.resp = client.request("POST", f"/containers/{cid}/wait",
                                   {"condition": condition}, new_connection=True)
        self.result: dict | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        import json
        try:
            self.result = json.loads(self.resp.read())
        except (OSError, ValueError) as e:
            self.error = e

    def status_code(self) -> int:
        self.join()
        if self.result is None:
            print(f"berth: error waiting for the container: {self.error}", file=sys.stderr)
            return 125
        if self.result.get("Error"):
            print(f"berth: {self.result['Error'].get('Message')}", file=sys.stderr)
        return int(self.result.get("StatusCode", 125))


def proxy_signals(client, cid: str) -> None:
    def forward(signum, _frame):
        try:
            client.request("POST", f"/containers/{cid}/kill", {"signal": str(signum)},
                           new_connection=True).read()
        except (DaemonError, ConnectError):
            pass
    for name in PROXIED_SIGNALS:
        signal.signal(getattr(signal, name), forward)


@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["--help"]})
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits")
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print its ID")
@click.option("--name", help="Name of the container")
@click.option("-e", "--env", multiple=True, help="Set an environment variable (KEY=VALUE)")
@click.option("-m", "--memory", help="Memory limit (e.g. 64m)")
@click.option("--pids-limit", type=int, help="Process limit (-1 for none)")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and send ours to it")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("--entrypoint", help="Override the image's entrypoint")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.option("-u", "--user", help="User (name|uid[:group|gid])")
@click.option("--restart", default="no",
              help="Restart policy: no, always, unless-stopped, on-failure[:max-retries]")
@click.option("--init", is_flag=True,
              help="Run an init inside the container that forwards signals and reaps processes")
@click.option("--detach-keys", help="Override the key sequence for detaching a container "
              "(default ctrl-p,ctrl-q)")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj, remove, detach, name, env, memory, pids_limit, interactive, tty, entrypoint,
        workdir, user, restart, init, detach_keys, image, command):
    """Create and run a new container from an image."""
    from ..detach_keys import InvalidDetachKeys, parse as parse_detach_keys
    from ..restart_policy import parse as parse_restart
    client = obj.client
    attach = not detach
    if attach:
        check_tty(interactive, tty)
    try:
        keys = parse_detach_keys(detach_keys)
    except InvalidDetachKeys as e:
        _fail(str(e))
    try:
        policy = parse_restart(restart)
    except ValueError as e:
        _fail(f"invalid argument \"{restart}\" for \"--restart\" flag: {e}")
    host_config: dict = {"AutoRemove": remove, "NetworkMode": "default",
                         "LogConfig": {"Type": "", "Config": {}}, "RestartPolicy": policy}
    if memory:
        host_config["Memory"] = parse_bytes(memory)
    if pids_limit is not None:
        host_config["PidsLimit"] = pids_limit
    if init:
        host_config["Init"] = True
    if tty and attach and terminal_size():
        host_config["ConsoleSize"] = list(terminal_size())
    body = {
        "Image": image, "Cmd": list(command) or None, "Env": parse_env(env), "Tty": tty,
        "OpenStdin": interactive, "StdinOnce": interactive and attach,
        "AttachStdin": interactive and attach, "AttachStdout": attach, "AttachStderr": attach,
        "Entrypoint": [entrypoint] if entrypoint else None, "WorkingDir": workdir or "",
        "User": user or "", "HostConfig": host_config,
    }
    try:
        cid = _create(client, body, name, image)
    except DaemonError as e:
        _fail(f"Error response from daemon: {e.message}")
    except ConnectError as e:
        _fail(str(e))
    if detach:
        try:
            client.request("POST", f"/containers/{cid}/start").read()
        except DaemonError as e:
            _fail(f"Error response from daemon: {e.message}", _start_exit_code(e.message))
        print(cid)
        return 0
    query = {"stream": 1, "stdout": 1, "stderr": 1, "detachKeys": detach_keys}
    if interactive:
        query["stdin"] = 1
    sock, first = client.hijack(f"/containers/{cid}/attach", query)
    waiter = Waiter(client, cid, "removed" if remove else "next-exit")
    waiter.start()
    try:
        client.request("POST", f"/containers/{cid}/start").read()
    except DaemonError as e:
        sock.close()
        _fail(f"Error response from daemon: {e.message}", _start_exit_code(e.message))
    proxy_signals(client, cid)
    if run_session(sock, first, tty=tty, interactive=interactive, detach_keys=keys,
                   resize=lambda h, w: resize_container(client, cid, h, w)):
        return 0          # detached: the container runs on
    return waiter.status_code()


def resize_container(client, cid: str, height: int, width: int) -> None:
    try:
        client.request("POST", f"/containers/{cid}/resize", {"h": height, "w": width},
                       new_connection=True).read()
    except DaemonError:
        pass


def _ps_command(c: dict, no_trunc: bool) -> str:
    command = c.get("Command", "")
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def _ago(seconds: int) -> str:
    return human_duration(time.time() - seconds) + " ago"


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-n", "--last", type=int, default=-1, help="Show the n last created containers")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.pass_obj
def ps(obj, show_all, quiet, last, no_trunc):
    """List containers."""
    query = {"all": 1 if show_all else None, "limit": last if last > 0 else None}
    containers = obj.client.call("GET", "/containers/json", query)
    if quiet:
        for c in containers:
            print(c["Id"] if no_trunc else truncate_id(c["Id"]))
        return 0
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for c in containers:
        rows.append([c["Id"] if no_trunc else truncate_id(c["Id"]), c.get("Image") or "<no image>",
                     _ps_command(c, no_trunc), _ago(c["Created"]), c.get("Status", ""), "",
                     ",".join(n.lstrip("/") for n in c.get("Names") or [])])
    print(table(rows))
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", help="Show logs since a timestamp (unix seconds)")
@click.option("--until", help="Show logs before a timestamp (unix seconds)")
@click.argument("container")
@click.pass_obj
def logs(obj, follow, tail, timestamps, since, until, container):
    """Fetch the logs of a container."""
    client = obj.client
    info = client.call("GET", f"/containers/{container}/json")
    tty = bool(info["Config"].get("Tty"))
    query = {"stdout": 1, "stderr": 1, "follow": 1 if follow else None, "tail": tail,
             "timestamps": 1 if timestamps else None, "since": since, "until": until}
    resp = client.request("GET", f"/containers/{info['Id']}/logs", query)
    outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    try:
        for stream, data in demux(resp.chunks(), tty):
            out = outs.get(stream, sys.stderr.buffer)
            out.write(data)
            out.flush()
    except KeyboardInterrupt:
        return 130
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes too")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force, volumes, containers):
    """Remove one or more containers."""
    failed = False
    for name in containers:
        try:
            obj.client.request("DELETE", f"/containers/{name}",
                               {"force": 1 if force else None, "v": 1 if volumes else None}).read()
            print(name)
        except DaemonError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


COMMANDS = [run, ps, logs, rm]
