"""Image verbs that move images as files: save, load, import, commit, history."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import BinaryIO
from urllib.parse import urlencode

import click

from .client import DaemonError, Response, _error_message, connection_error
from .format import human_duration, human_size, table, truncate_id

CHUNK = 1 << 20
OPTS = {"help_option_names": ["--help"]}


def _target(path: str, query: dict) -> str:
    """path?query, repeated keys for list values (names=, changes=), None values left out."""
    items = [(k, v) for k, v in query.items() if v not in (None, [], "")]
    return path + ("?" + urlencode(items, doseq=True) if items else "")


def _upload(client, path: str, query: dict, body: BinaryIO) -> Response:
    """POST body (a tar, streamed in chunks) on a new connection; the response or DaemonError."""
    s = client.connect()
    try:
        head = (f"POST {_target(path, query)} HTTP/1.1\r\nHost: localhost\r\n"
                f"User-Agent: berth-cli\r\nContent-Type: application/x-tar\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n")
        s.sendall(head.encode())
        for chunk in iter(lambda: body.read(CHUNK), b""):
            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        resp = Response(s.makefile("rb"), s)
    except OSError as e:
        s.close()
        raise connection_error(e, s) from None
    if resp.status >= 400:
        raise DaemonError(resp.status, _error_message(resp.status, resp.read(), resp.reason))
    return resp


def _messages(resp: Response):
    """The JSON messages of a streamed answer; an error message raises DaemonError."""
    buf = b""
    for chunk in resp.chunks():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                msg = json.loads(line)
                if msg.get("error"):
                    raise DaemonError(500, msg["error"])
                yield msg
    if buf.strip():
        msg = json.loads(buf)
        if msg.get("error"):
            raise DaemonError(500, msg["error"])
        yield msg


@click.command(context_settings=OPTS)
@click.option("-o", "--output", help="Write to a file, instead of STDOUT")
@click.argument("images", nargs=-1, required=True)
@click.pass_obj
def save(obj, output, images):
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if not output and sys.stdout.isatty():
        raise click.UsageError("cowardly refusing to save to a terminal. Use the -o flag or "
                               "redirect")
    resp = obj.client.request("GET", _target("/images/get", {"names": list(images)}),
                              new_connection=True)
    out = open(output + ".tmp", "wb") if output else sys.stdout.buffer
    try:
        for chunk in resp.chunks():
            out.write(chunk)
    finally:
        if output:
            out.close()
    if output:
        os.replace(output + ".tmp", output)
    return 0


@click.command(context_settings=OPTS)
@click.option("-i", "--input", "input_", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.pass_obj
def load(obj, input_, quiet):
    """Load images from a tar archive (from STDIN by default)."""
    if not input_ and sys.stdin.isatty():
        raise click.UsageError("requested load from stdin, but stdin is empty")
    body = open(input_, "rb") if input_ else sys.stdin.buffer
    with body:
        resp = _upload(obj.client, "/images/load", {"quiet": "1" if quiet else "0"}, body)
        for msg in _messages(resp):
            if msg.get("stream") and not quiet:
                sys.stdout.write(msg["stream"])
    return 0


@click.command("import", context_settings=OPTS)
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default=None, help="Set platform if server is multi-platform capable")
@click.argument("source")
@click.argument("repository", required=False)
@click.pass_obj
def import_(obj, changes, message, platform, source, repository):
    """Import the contents from a tarball (a file, or - for STDIN) to create an image."""
    repo, tag = (repository or ""), ""
    if repository and ":" in repository.rsplit("/", 1)[-1]:
        repo, tag = repository.rsplit(":", 1)
    query = {"fromSrc": "-" if source == "-" or "://" not in source else source,
             "repo": repo, "tag": tag, "message": message, "changes": list(changes),
             "platform": platform}
    if "://" in source:
        from io import BytesIO
        body: BinaryIO = BytesIO(b"")
    else:
        body = sys.stdin.buffer if source == "-" else open(source, "rb")
    with body:
        resp = _upload(obj.client, "/images/create", query, body)
        for msg in _messages(resp):
            if msg.get("status"):
                print(msg["status"])
    return 0


@click.command(context_settings=OPTS)
@click.option("-a", "--author", default="", help="Author")
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause/--no-pause", default=True,
              help="Pause container during commit (default true)")
@click.argument("container")
@click.argument("repository", required=False)
@click.pass_obj
def commit(obj, author, changes, message, pause, container, repository):
    """Create a new image from a container's changes."""
    repo, tag = (repository or ""), ""
    if repository and ":" in repository.rsplit("/", 1)[-1]:
        repo, tag = repository.rsplit(":", 1)
    query = {"container": container, "repo": repo, "tag": tag, "comment": message,
             "author": author, "pause": "1" if pause else "0", "changes": list(changes)}
    answer = json.loads(obj.client.request("POST", _target("/commit", query)).read())
    print(answer["Id"])
    return 0


@click.command(context_settings=OPTS)
@click.option("-H", "--human/--no-human", default=True,
              help="Print sizes and dates in human readable format")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.argument("image")
@click.pass_obj
def history(obj, human, no_trunc, quiet, image):
    """Show the history of an image."""
    entries = obj.client.call("GET", f"/images/{image}/history")
    if quiet:
        for e in entries:
            print(e["Id"] if no_trunc or e["Id"] == "<missing>" else truncate_id(e["Id"]))
        return 0
    rows = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for e in entries:
        ident = e["Id"] if no_trunc or e["Id"] == "<missing>" else truncate_id(e["Id"])
        created = (human_duration(time.time() - e["Created"]) + " ago" if human
                   else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["Created"])))
        by = e["CreatedBy"] if no_trunc or len(e["CreatedBy"]) <= 45 \
            else e["CreatedBy"][:44] + "…"
        size = human_size(e["Size"]) if human else str(e["Size"])
        rows.append([ident, created, by, size, e["Comment"]])
    print(table(rows))
    return 0


COMMANDS = [save, load, import_, commit, history]
