"""`berth build`: the context directory (its .dockerignore applied) or a Dockerfile on stdin
(`-`) sent as a tar to POST /build, the daemon's stream printed as it comes; an error in the
stream is printed and its code (a failed RUN's exit status, else 1) is the exit status, as
the docker CLI's classic build."""
from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import click

from .image_files import _upload

OPTS = {"help_option_names": ["--help"]}


def _pairs(values: tuple[str, ...], what: str, *, env_fallback: bool) -> dict:
    import os
    out: dict = {}
    for v in values:
        key, eq, value = v.partition("=")
        if not key:
            raise click.BadParameter(f"invalid {what} {v!r}: give KEY=VALUE")
        if eq:
            out[key] = value
        elif env_fallback:
            # as the docker CLI: --build-arg X takes X from the environment, or is unset
            out[key] = os.environ.get(key)
        else:
            out[key] = ""
    return out


def _context_tar(context: str, dockerfile: str | None, out) -> str:
    """Write the context's tar to out; returns the Dockerfile's name in it."""
    if context == "-":
        data = sys.stdin.buffer.read()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        return "Dockerfile"
    from ..build.context import make_context_tar
    from ..build.dockerignore import IgnoreMatcher, parse_dockerignore
    root = Path(context)
    if not root.is_dir():
        raise click.UsageError(f'unable to prepare context: path "{context}" not found')
    df = Path(dockerfile) if dockerfile else root / "Dockerfile"
    if dockerfile and not df.is_absolute():
        df = Path.cwd() / df
    try:
        rel = str(df.resolve().relative_to(root.resolve()))
    except ValueError:
        raise click.UsageError(f"the Dockerfile ({dockerfile}) must be within the build "
                               f"context ({context})") from None
    if not df.is_file():
        raise click.UsageError(f"unable to prepare context: unable to evaluate symlinks in "
                               f"Dockerfile path: lstat {df}: no such file or directory")
    ignore_file = root / ".dockerignore"
    try:
        patterns = parse_dockerignore(ignore_file.read_text()) if ignore_file.is_file() else []
    except ValueError as e:
        raise click.ClickException(f"unable to prepare context: {e}") from None
    try:
        for chunk in make_context_tar(str(root), rel, IgnoreMatcher(patterns)):
            out.write(chunk)
    except ValueError as e:         # B1's ContextError / IgnoreError: the path named
        raise click.ClickException(f"unable to prepare context: {e}") from None
    return rel


@click.command(context_settings=OPTS)
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag)")
@click.option("-f", "--file", "dockerfile", default=None, help="Name of the Dockerfile")
@click.option("--build-arg", "build_args", multiple=True, help="Set build-time variables")
@click.option("--target", default="", help="Set the target build stage to build")
@click.option("--label", "labels", multiple=True, help="Set metadata for an image")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image")
@click.option("--rm/--no-rm", "rm", default=True,
              help="Remove intermediate containers after a successful build")
@click.option("--force-rm", is_flag=True, help="Always remove intermediate containers")
@click.option("--network", default="", help="Networking mode for the RUN instructions")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image "
              "ID on success")
@click.option("--iidfile", default="", help="Write the image ID to the file")
@click.option("--platform", default="", help="Set platform (the host's only)")
@click.argument("context")
@click.pass_obj
def build(obj, tags, dockerfile, build_args, target, labels, no_cache, pull, rm, force_rm,
          network, quiet, iidfile, platform, context):
    """Build an image from a Dockerfile."""
    query = {"t": list(tags), "buildargs": json.dumps(_pairs(build_args, "build-arg",
                                                             env_fallback=True)),
             "labels": json.dumps(_pairs(labels, "label", env_fallback=False)),
             "target": target, "nocache": "1" if no_cache else "", "pull": "1" if pull else "",
             "rm": "1" if rm else "0", "forcerm": "1" if force_rm else "",
             "networkmode": network, "q": "1" if quiet else "", "platform": platform}
    with tempfile.TemporaryFile() as body:
        query["dockerfile"] = _context_tar(context, dockerfile, body)
        body.seek(0)
        resp = _upload(obj.client, "/build", query, body)
        image_id, code = "", 0
        for msg in _lines(resp):
            if msg.get("error"):
                print(msg["error"], file=sys.stderr)
                code = (msg.get("errorDetail") or {}).get("code") or 1
                break
            if msg.get("aux", {}).get("ID"):
                image_id = msg["aux"]["ID"]
            elif msg.get("stream") and not quiet:
                sys.stdout.write(msg["stream"])
                sys.stdout.flush()
            elif msg.get("status") and not quiet:
                print(msg["status"])
    if code:
        return code
    if quiet and image_id:
        print(image_id)
    if iidfile and image_id:
        Path(iidfile).write_text(image_id)
    return 0


def _lines(resp):
    buf = b""
    for chunk in resp.chunks():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


COMMANDS = [build]
