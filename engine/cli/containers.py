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
from .run_flags import container_options
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


def _start_exit_code(message: str) -> int:
    """As docker run: 127 when the command was not found, 126 when it cannot be run."""
    low = message.lower()
    if any(s in low for s in ("executable file not found", "no such file or directory",
                              "system cannot find the file specified")):
        return 127
    if "permission denied" in low:
        return 126
    return 125


def _fail(message: str, code: int = 125, verb: str = "run") -> None:
    print(f"berth: {message}", file=sys.stderr)
    print(f"Run 'berth {verb} --help' for more information", file=sys.stderr)
    sys.exit(code)


def _created(reply: dict) -> str:
    for warning in reply.get("Warnings") or []:   # options dropped, as the docker CLI shows them
        print(f"WARNING: {warning}", file=sys.stderr)
    return reply["Id"]


def pull_image(client, image: str, platform: str | None, quiet: bool) -> None:
    """POST /images/create with the registry's credentials, its progress drawn on stderr (the
    docker CLI keeps stdout for the container's output and ID)."""
    from ..images import reference
    from . import credentials
    from .progress_bars import StreamError, draw, stream_lines
    from types import SimpleNamespace

    from .registry import _stream
    try:
        ref = reference.parse(image)
    except Exception as e:
        raise DaemonError(400, str(e)) from None
    query = {"fromImage": reference.familiar(ref.repository), "tag": ref.digest or ref.tag,
             "platform": platform or None}
    resp = _stream(SimpleNamespace(client=client), "POST", "/images/create", query,
                   credentials.header(ref.domain))
    out = open(os.devnull, "w") if quiet else sys.stderr
    try:
        draw(stream_lines(resp.chunks()), out)
    except StreamError as e:
        raise DaemonError(500, str(e)) from None
    finally:
        if quiet:
            out.close()


def _create(client, body: dict, query: dict, image: str, pull: str, quiet: bool) -> str:
    """POST /containers/create; as the docker CLI, --pull=missing pulls when the create answers
    404 for the image and creates again, --pull=always pulls first, --pull=never never."""
    if pull == "always":
        pull_image(client, image, query.get("platform"), quiet)
    try:
        return _created(client.call("POST", "/containers/create", query, body))
    except DaemonError as e:
        if pull != "missing" or e.status != 404 or "No such image" not in e.message:
            raise
    if not quiet:
        shown = image if ":" in image.split("/")[-1] or "@" in image else f"{image}:latest"
        print(f"Unable to find image '{shown}' locally", file=sys.stderr)
    pull_image(client, image, query.get("platform"), quiet)
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


def _common_options(f):
    """The flags run and create had before run_flags.py; both keep them."""
    for option in reversed([
        click.option("--rm", "remove", is_flag=True,
                     help="Automatically remove the container and its associated anonymous "
                          "volumes when it exits"),
        click.option("--name", help="Assign a name to the container"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("-m", "--memory", help="Memory limit"),
        click.option("--pids-limit", type=int, help="Tune container pids limit (set -1 for "
                     "unlimited)"),
        click.option("-i", "--interactive", is_flag=True,
                     help="Keep STDIN open even if not attached"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-w", "--workdir", help="Working directory inside the container"),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("--restart", default="no",
                     help="Restart policy to apply when a container exits (default \"no\")"),
        click.option("--init", is_flag=True,
                     help="Run an init inside the container that forwards signals and reaps "
                          "processes"),
    ]):
        f = option(f)
    return f


def _prepare(params: dict, verb: str, detach: bool) -> tuple[dict, dict, tuple]:
    """Parse the flags into the create body and query, or exit 125 as the docker CLI does."""
    from ..restart_policy import parse as parse_restart
    from .run_flags import FlagError, attach_streams, build
    if params["pull"] not in ("missing", "never", "always"):
        _fail(f'invalid pull option: \'{params["pull"]}\': must be one of "always", '
              '"missing" or "never"', verb=verb)
    try:
        params["restart_policy"] = parse_restart(params["restart"])
    except ValueError as e:
        _fail(f"invalid argument \"{params['restart']}\" for \"--restart\" flag: {e}", verb=verb)
    if params["remove"] and params["restart_policy"]["Name"] not in ("", "no"):
        _fail("Conflicting options: --restart and --rm", verb=verb)
    try:
        streams = attach_streams(params["attach"], params["interactive"], detach)
        if params["tty"] and streams[1] and verb == "run":
            params["console_size"] = terminal_size()
        body, query = build(params, streams)
    except FlagError as e:
        _fail(str(e), verb=verb)
    if params.get("cidfile") and os.path.exists(params["cidfile"]):
        _fail(f"container ID file found, make sure the other container isn't running or "
              f"delete {params['cidfile']}", verb=verb)
    return body, query, streams


def _create_or_fail(client, params: dict, body: dict, query: dict, verb: str) -> str:
    try:
        cid = _create(client, body, query, params["image"], params["pull"], params["quiet"])
    except DaemonError as e:
        _fail(f"Error response from daemon: {e.message}", verb=verb)
    except ConnectError as e:
        _fail(str(e), verb=verb)
    if params.get("cidfile"):
        try:
            with open(params["cidfile"], "x") as f:
                f.write(cid)
        except OSError as e:
            _fail(f"failed to write the container ID to the file: {e}", verb=verb)
    return cid


@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["--help"]})
@_common_options
@click.option("-d", "--detach", is_flag=True,
              help="Run container in background and print container ID")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@container_options(for_run=True)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj, **params):
    """Create and run a new container from an image."""
    from ..detach_keys import InvalidDetachKeys, parse as parse_detach_keys
    client = obj.client
    detach, tty = params["detach"], params["tty"]
    body, query, (stdin, stdout, stderr) = _prepare(params, "run", detach)
    attach = stdin or stdout or stderr
    if attach:
        check_tty(stdin, tty)
    try:
        keys = parse_detach_keys(params["detach_keys"])
    except InvalidDetachKeys as e:
        _fail(str(e))
    cid = _create_or_fail(client, params, body, query, "run")
    if not attach:
        try:
            client.request("POST", f"/containers/{cid}/start").read()
        except DaemonError as e:
            _fail(f"Error response from daemon: {e.message}", _start_exit_code(e.message))
        if detach:
            print(cid)
            return 0
        return Waiter(client, cid, "next-exit").status_code()
    query = {"stream": 1, "stdout": 1 if stdout else None, "stderr": 1 if stderr else None,
             "stdin": 1 if stdin else None, "detachKeys": params["detach_keys"]}
    sock, first = client.hijack(f"/containers/{cid}/attach", query)
    waiter = Waiter(client, cid, "removed" if params["remove"] else "next-exit")
    waiter.start()
    try:
        client.request("POST", f"/containers/{cid}/start").read()
    except DaemonError as e:
        sock.close()
        _fail(f"Error response from daemon: {e.message}", _start_exit_code(e.message))
    if params["sig_proxy"]:
        proxy_signals(client, cid)
    if run_session(sock, first, tty=tty, interactive=stdin, detach_keys=keys,
                   resize=lambda h, w: resize_container(client, cid, h, w)):
        return 0          # detached: the container runs on
    return waiter.status_code()


@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["--help"]})
@_common_options
@container_options(for_run=False)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(obj, **params):
    """Create a new container."""
    body, query, _ = _prepare(params, "create", False)
    print(_create_or_fail(obj.client, params, body, query, "create"))
    return 0


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


def ports_column(ports: list[dict]) -> str:
    """docker ps's PORTS: a port published on the same number is grouped with its neighbours
    into ranges (per address and protocol), one published elsewhere is listed after them as
    ADDRESS:PUBLIC->PRIVATE/PROTO."""
    ordered = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP") or "",
                                           p.get("PublicPort") or 0, p.get("Type", "")))
    groups: dict[tuple[str, str], list[int]] = {}   # (ip, proto) -> [first, last]
    done: list[str] = []
    elsewhere: list[str] = []

    def form(key: tuple[str, str], first: int, last: int) -> str:
        ip, proto = key
        span = str(first) if first == last else f"{first}-{last}"
        return f"{ip}:{span}->{span}/{proto}" if ip else f"{span}/{proto}"

    for p in ordered:
        private, ip, proto = p.get("PrivatePort", 0), p.get("IP") or "", p.get("Type", "tcp")
        if ip and p.get("PublicPort") != private:
            host = f"[{ip}]" if ":" in ip else ip
            elsewhere.append(f"{host}:{p.get('PublicPort')}->{private}/{proto}")
            continue
        key = (ip, proto)
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            done.append(form(key, *group))
            groups[key] = [private, private]
    done += [form(key, *group) for key, group in groups.items()]
    return ", ".join(done + elsewhere)


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
                     _ps_command(c, no_trunc), _ago(c["Created"]), c.get("Status", ""),
                     ports_column(c.get("Ports") or []),
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


def _host_address(binding: dict) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{binding.get('HostPort', '')}" if ":" in ip else \
        f"{ip}:{binding.get('HostPort', '')}"


def _port_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("container")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
@click.pass_obj
def port(obj, container, private_port):
    """List port mappings or a specific mapping for the container."""
    info = obj.client.call("GET", f"/containers/{container}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if private_port:
        number, _, proto = private_port.partition("/")
        if not number.isdigit():
            print(f"Error: invalid port ({number}): invalid syntax", file=sys.stderr)
            return 1
        key = f"{number}/{proto or 'tcp'}"
        bindings = ports.get(key) or []
        if not bindings:
            print(f"Error: No public port '{key}' published for {container}", file=sys.stderr)
            return 1
        for b in bindings:
            print(_host_address(b))
        return 0
    for key in sorted(ports, key=_port_key):
        for b in ports[key] or []:
            print(f"{key} -> {_host_address(b)}")
    return 0


COMMANDS = [run, create, ps, logs, rm, port]
