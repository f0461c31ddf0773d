"""`berth volume`: create, ls, inspect, rm, prune, with the docker CLI's flags, bodies, table
columns and messages (listing and prompt helpers shared with `berth network`)."""
from __future__ import annotations

import json
import sys

import click

from .client import DaemonError
from .format import human_size
from .networks import confirm, filters_query, print_listing

CTX = {"help_option_names": ["--help"]}


def _key_values(values, what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise click.UsageError(f'invalid argument "{item}" for "--{what}" flag: '
                                   f"bad format for {what}: {item}"
                                   if what == "opt" else f"invalid {what}: {item}")
        out[key] = value
    return out


@click.group(context_settings=CTX)
def volume():
    """Manage volumes."""


@volume.command(context_settings=CTX)
@click.option("-d", "--driver", default="local", help='Specify volume driver name '
              '(default "local")')
@click.option("-o", "--opt", multiple=True, help="Set driver specific options")
@click.option("--label", multiple=True, help="Set metadata for a volume")
@click.option("--name", "name_flag", help="Specify volume name")
@click.argument("name", required=False)
@click.pass_obj
def create(obj, driver, opt, label, name_flag, name):
    """Create a volume."""
    if name and name_flag and name != name_flag:
        raise click.UsageError("conflicting options: either specify --name or provide "
                               "positional arg, not both")
    body: dict = {"Driver": driver}
    if opt:
        body["DriverOpts"] = _key_values(opt, "opt")
    if label:
        body["Labels"] = {k: v for k, _, v in (item.partition("=") for item in label)}
    if name or name_flag:
        body["Name"] = name or name_flag
    reply = obj.client.call("POST", "/volumes/create", None, body)
    print(reply["Name"])
    return 0


def _row(vol: dict) -> dict:
    labels = vol.get("Labels") or {}
    usage = vol.get("UsageData") or {}
    size = usage.get("Size", -1)
    return {"Name": vol["Name"], "Driver": vol.get("Driver", ""),
            "Scope": vol.get("Scope", "local"), "Mountpoint": vol.get("Mountpoint", ""),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "Links": str(usage.get("RefCount", "N/A")) if usage else "N/A",
            "Size": human_size(size) if size >= 0 else "N/A",
            "CreatedAt": vol.get("CreatedAt", "")}


@volume.command("ls", context_settings=CTX)
@click.option("-f", "--filter", "filters", multiple=True,
              help="Provide filter values (e.g. \"dangling=true\")")
@click.option("--format", "template", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.pass_obj
def ls(obj, filters, template, quiet):
    """List volumes."""
    reply = obj.client.call("GET", "/volumes", {"filters": filters_query(filters)})
    for warning in reply.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    vols = sorted(reply.get("Volumes") or [], key=lambda v: v["Name"])
    print_listing([_row(v) for v in vols], template, quiet, "Name",
                  [("Driver", "DRIVER"), ("Name", "VOLUME NAME")])
    return 0


volume.add_command(ls, "list")


@volume.command(context_settings=CTX)
@click.option("-f", "--format", "template", help="Format output using a custom template")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, template, names):
    """Display detailed information on one or more volumes."""
    from .inspect import render
    found, failed = [], False
    for name in names:
        try:
            found.append(obj.client.call("GET", f"/volumes/{name}"))
        except DaemonError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    if template:
        for item in found:
            print(render(template, item))
    else:
        print(json.dumps(found, indent=4))
    return 1 if failed else 0


@volume.command(context_settings=CTX)
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force, names):
    """Remove one or more volumes. You cannot remove a volume that is in use by a container."""
    failed = False
    for name in names:
        try:
            obj.client.request("DELETE", f"/volumes/{name}",
                               {"force": "1" if force else None}).read()
            print(name)
        except DaemonError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


volume.add_command(rm, "remove")


@volume.command(context_settings=CTX)
@click.option("-a", "--all", "prune_all", is_flag=True,
              help="Remove all unused volumes, not just anonymous ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True,
              help="Provide filter values (e.g. \"label=<label>\")")
@click.pass_obj
def prune(obj, prune_all, force, filters):
    """Remove unused local volumes."""
    which = "all local volumes" if prune_all else "anonymous local volumes"
    if not confirm(f"WARNING! This will remove {which} not used by at least one container.",
                   force):
        return 0
    query = filters_query(filters)
    if prune_all:
        parsed = json.loads(query) if query else {}
        if "all" in parsed:
            raise click.UsageError("conflicting options: cannot specify both --all and "
                                   "--filter all=1")
        parsed["all"] = {"true": True}
        query = json.dumps(parsed)
    reply = obj.client.call("POST", "/volumes/prune", {"filters": query})
    deleted = reply.get("VolumesDeleted") or []
    if deleted:
        print("Deleted Volumes:")
        for name in deleted:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(reply.get('SpaceReclaimed') or 0)}")
    return 0


COMMANDS = [volume]
