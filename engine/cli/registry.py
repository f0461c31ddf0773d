"""Registry verbs: pull, push, login, logout, as the docker CLI's (credentials from
engine/cli/credentials.py travel in X-Registry-Auth; progress drawn by progress_bars)."""
from __future__ import annotations

import sys

import click

from .client import DaemonError, _error_message, url
from .progress_bars import StreamError, draw, stream_lines


def _stream(obj, method: str, path: str, query: dict, auth: str):
    """A request with X-Registry-Auth on its own connection; the response, or DaemonError."""
    from .client import Response, connection_error
    s = obj.client.connect()
    try:
        obj.client._send(s, method, url(path, query), None, f"X-Registry-Auth: {auth}\r\n")
        resp = Response(s.makefile("rb"), s)
    except OSError as e:
        s.close()
        raise connection_error(e, s) from None
    if resp.status >= 400:
        raise DaemonError(resp.status, _error_message(resp.status, resp.read(), resp.reason))
    return resp


def _draw(resp, quiet: bool) -> dict:
    out = open("/dev/null", "w") if quiet else sys.stdout
    try:
        return draw(stream_lines(resp.chunks()), out)
    except StreamError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if quiet:
            out.close()


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the "
              "repository")
@click.option("--platform", default="", help="Set platform if server is multi-platform "
              "capable (os/arch[/variant])")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("name")
@click.pass_obj
def pull(obj, all_tags, platform, quiet, name):
    """Download an image from a registry."""
    from ..images import reference
    from . import credentials
    try:
        ref = reference.parse(name, default_tag=False)
    except Exception as e:
        raise click.UsageError(str(e)) from None
    if all_tags and (ref.tag or ref.digest):
        raise click.UsageError("tag can't be used with --all-tags/-a")
    query = {"fromImage": reference.familiar(ref.repository)}
    if not all_tags:
        if not ref.tag and not ref.digest:
            print("Using default tag: latest")
            ref = reference.Reference(ref.domain, ref.path, "latest")
        query["tag"] = ref.digest or ref.tag
    if platform:
        query["platform"] = platform
    resp = _stream(obj, "POST", "/images/create", query, credentials.header(ref.domain))
    _draw(resp, quiet)
    if not all_tags:
        print(str(ref))     # the full reference last, as docker 20.10+
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the "
              "repository")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("name")
@click.pass_obj
def push(obj, all_tags, quiet, name):
    """Upload an image to a registry."""
    from ..images import reference
    from . import credentials
    try:
        ref = reference.parse(name, default_tag=False)
    except Exception as e:
        raise click.UsageError(str(e)) from None
    if all_tags and ref.tag:
        raise click.UsageError("tag can't be used with --all-tags/-a")
    if not all_tags and not ref.tag:
        print("Using default tag: latest")
        ref = reference.Reference(ref.domain, ref.path, "latest")
    resp = _stream(obj, "POST", f"/images/{reference.familiar(ref.repository)}/push",
                   {"tag": ref.tag or None}, credentials.header(ref.domain))
    _draw(resp, quiet)
    if quiet:
        print(str(ref))
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-u", "--username", default="", help="Username")
@click.option("-p", "--password", default="", help="Password")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin")
@click.argument("server", required=False, default="")
@click.pass_obj
def login(obj, username, password, password_stdin, server):
    """Log in to a registry (Docker Hub when no server is given)."""
    from ..registry.login import registry_host
    from . import credentials
    if password and password_stdin:
        raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise click.UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    host = registry_host(server)
    key = credentials.key_for(host)
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    answer = obj.client.call("POST", "/auth", body={"username": username, "password": password,
                                                    "serveraddress": key})
    credentials.store(host, username, password)
    print((answer or {}).get("Status") or "Login Succeeded")
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("server", required=False, default="")
@click.pass_obj
def logout(obj, server):
    """Log out from a registry (forget its credentials)."""
    from ..registry.login import registry_host
    from . import credentials
    host = registry_host(server)
    key = credentials.key_for(host)
    if credentials.erase(host):
        print(f"Removing login credentials for {key}")
    else:
        print(f"Not logged in to {key}")
    return 0


COMMANDS = [pull, push, login, logout]
