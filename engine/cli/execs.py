"""`berth exec`: the docker CLI's calls (inspect, exec create, start hijacked or detached,
resize, exec inspect for the exit code)."""
from __future__ import annotations

import click

from .client import DaemonError
from .containers import parse_env
from .session import check_tty, run_session, terminal_size


@click.command("exec", context_settings={"allow_interspersed_args": False,
                                         "help_option_names": ["--help"]})
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and send ours to it")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-e", "--env", multiple=True, help="Set an environment variable (KEY=VALUE)")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.option("-u", "--user", help="User (name|uid[:group|gid])")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.option("--detach-keys", help="Override the key sequence for detaching a container "
              "(default ctrl-p,ctrl-q)")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj, detach, interactive, tty, env, workdir, user, privileged, detach_keys, container,
          command):
    """Execute a command in a running container."""
    from ..detach_keys import InvalidDetachKeys, parse as parse_detach_keys
    try:
        keys = parse_detach_keys(detach_keys)
    except InvalidDetachKeys as e:
        raise click.ClickException(str(e)) from None
    client = obj.client
    attach = not detach
    if attach:
        check_tty(interactive, tty)
    client.call("GET", f"/containers/{container}/json")
    size = terminal_size() if tty and attach else None
    body = {"User": user or "", "Privileged": privileged, "Tty": tty,
            "AttachStdin": interactive and attach, "AttachStdout": attach,
            "AttachStderr": attach, "Detach": detach, "DetachKeys": detach_keys or "",
            "Env": parse_env(env), "WorkingDir": workdir or "", "Cmd": list(command)}
    if size:
        body["ConsoleSize"] = list(size)
    eid = client.call("POST", f"/containers/{container}/exec", body=body)["Id"]
    start = {"Detach": detach, "Tty": tty}
    if size:
        start["ConsoleSize"] = list(size)
    if detach:
        client.request("POST", f"/exec/{eid}/start", body=start).read()
        return 0
    sock, first = client.hijack(f"/exec/{eid}/start", body=start)

    def resize(height: int, width: int) -> None:
        try:
            client.request("POST", f"/exec/{eid}/resize", {"h": height, "w": width},
                           new_connection=True).read()
        except DaemonError:
            pass

    if run_session(sock, first, tty=tty, interactive=interactive, resize=resize,
                   detach_keys=keys):
        return 0          # detached: the command runs on
    # as docker: a command still running (its output closed) counts as 0
    return client.call("GET", f"/exec/{eid}/json").get("ExitCode") or 0


COMMANDS = [exec_]
