"""Image verbs: images."""
from __future__ import annotations

import time

import click

from .format import human_duration, human_size, table, truncate_id


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.argument("repository", required=False)
@click.pass_obj
def images(obj, show_all, quiet, no_trunc, repository):
    """List images."""
    query = {"all": 1 if show_all else None}
    if repository:
        import json
        query["filters"] = json.dumps({"reference": {repository: True}})
    found = obj.client.call("GET", "/images/json", query)
    if quiet:
        for img in found:
            print(img["Id"] if no_trunc else truncate_id(img["Id"]))
        return 0
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for img in found:
        ident = img["Id"] if no_trunc else truncate_id(img["Id"])
        created = human_duration(time.time() - img["Created"]) + " ago"
        for tag in img.get("RepoTags") or ["<none>:<none>"]:
            repo, _, name = tag.rpartition(":")
            rows.append([repo, name, ident, created, human_size(img["Size"])])
    print(table(rows))
    return 0


COMMANDS = [images]
