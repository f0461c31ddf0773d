"""`berth network`: create, ls, inspect, rm, prune, connect, disconnect, with the docker CLI's
flags, request bodies, table columns and messages. The listing helpers (--format, filters,
the prune prompt) are shared with `berth volume`."""
from __future__ import annotations

import json
import sys

import click

from .client import DaemonError
from .format import table, truncate_id

CTX = {"help_option_names": ["--help"]}


def filters_query(values) -> str | None:
    """--filter KEY=VALUE flags as the API's filters JSON: {"KEY": {"VALUE": true}}."""
    out: dict[str, dict[str, bool]] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq:
            raise click.UsageError("bad format of filter (expected name=value)")
        out.setdefault(key.strip().lower(), {})[value] = True
    return json.dumps(out) if out else None


def _header(field: str, known: dict[str, str]) -> str:
    """The column title docker gives a {{.Field}} in a `table` format: the default table's,
    else the field's name in capitals, words split (CreatedAt: CREATED AT)."""
    if field in known:
        return known[field]
    import re
    return " ".join(re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", field)).upper() or field


def print_listing(items: list[dict], template: str | None, quiet: bool, key: str,
                  default_table: list[tuple[str, str]]) -> None:
    """What an `ls` prints: -q the keys, --format each item through the template ('table'
    first adds the header row and aligns the columns), else the default table."""
    import re
    from .inspect import render
    if quiet and not template:
        for item in items:
            print(item[key])
        return
    if not template or template == "table":
        template = "table " + "\t".join(f"{{{{.{f}}}}}" for f, _ in default_table)
        titles = [t for _, t in default_table]
    else:
        titles = None
    if template.startswith("table"):
        body = template[len("table"):].strip()
        cells = body.split("\\t") if "\\t" in body else body.split("\t")
        if titles is None:
            titles = []
            for cell in cells:
                names = re.findall(r"{{\s*\.(\w+)\s*}}", cell)
                titles.append(" ".join(_header(n, dict(default_table)) for n in names)
                              or cell)
        rows = [titles] + [[render(c, item) for c in cells] for item in items]
        if quiet:
            rows = rows[1:]
        if rows:
            print(table(rows))
        return
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    for item in items:
        print(render(template, item))


def confirm(warning: str, force: bool) -> bool:
    """docker's prune prompt: the warning, then [y/N] read from stdin."""
    if force:
        return True
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _key_values(values, what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise click.UsageError(f"invalid {what}: {item}")
        out[key] = value
    return out


@click.group(context_settings=CTX)
def network():
    """Manage networks."""


@network.command(context_settings=CTX)
@click.option("-d", "--driver", default="bridge", help="Driver to manage the Network "
              '(default "bridge")')
@click.option("--subnet", multiple=True, help="Subnet in CIDR format that represents a "
              "network segment")
@click.option("--gateway", multiple=True, help="IPv4 or IPv6 Gateway for the master subnet")
@click.option("--ip-range", multiple=True, help="Allocate container ip from a sub-range")
@click.option("--aux-address", multiple=True, help="Auxiliary IPv4 or IPv6 addresses used by "
              "Network driver")
@click.option("--ipam-driver", default="default", help='IP Address Management Driver '
              '(default "default")')
@click.option("--ipam-opt", multiple=True, help="Set IPAM driver specific options")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("--attachable", is_flag=True, help="Enable manual container attachment")
@click.option("--ipv6", is_flag=True, default=None, help="Enable or disable IPv6 networking")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options")
@click.option("--label", multiple=True, help="Set metadata on a network")
@click.argument("name")
@click.pass_obj
def create(obj, driver, subnet, gateway, ip_range, aux_address, ipam_driver, ipam_opt,
           internal, attachable, ipv6, opt, label, name):
    """Create a network."""
    if len(gateway) > len(subnet) or len(ip_range) > len(subnet):
        raise click.UsageError("every ip-range or gateway must have a corresponding subnet")
    configs = []
    for i, sub in enumerate(subnet):
        conf = {"Subnet": sub}
        if i < len(ip_range):
            conf["IPRange"] = ip_range[i]
        if i < len(gateway):
            conf["Gateway"] = gateway[i]
        configs.append(conf)
    if aux_address:
        if not configs:
            raise click.UsageError("no matching subnet for aux-address")
        configs[0]["AuxiliaryAddresses"] = _key_values(aux_address, "aux-address")
    body = {"Driver": driver, "Scope": "",
            "IPAM": {"Driver": ipam_driver, "Options": _key_values(ipam_opt, "ipam-opt"),
                     "Config": configs},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigOnly": False, "ConfigFrom": None, "Options": _key_values(opt, "option"),
            "Labels": _key_values(label, "label"), "Name": name}
    if ipv6 is not None:
        body["EnableIPv6"] = ipv6
    reply = obj.client.call("POST", "/networks/create", None, body)
    if reply.get("Warning"):
        print(f"WARNING: {reply['Warning']}", file=sys.stderr)
    print(reply["Id"])
    return 0


def _row(net: dict, no_trunc: bool) -> dict:
    """The fields a network's --format can name, as docker's network formatter."""
    labels = net.get("Labels") or {}
    return {"ID": net["Id"] if no_trunc else truncate_id(net["Id"]), "Name": net["Name"],
            "Driver": net.get("Driver", ""), "Scope": net.get("Scope", ""),
            "IPv6": "true" if net.get("EnableIPv6") else "false",
            "IPv4": "false" if net.get("EnableIPv4") is False else "true",
            "Internal": "true" if net.get("Internal") else "false",
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "CreatedAt": net.get("Created", "")}


@network.command("ls", context_settings=CTX)
@click.option("-f", "--filter", "filters", multiple=True,
              help="Provide filter values (e.g. \"driver=bridge\")")
@click.option("--format", "template", help="Format output using a custom template")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.pass_obj
def ls(obj, filters, template, no_trunc, quiet):
    """List networks."""
    nets = obj.client.call("GET", "/networks", {"filters": filters_query(filters)})
    nets.sort(key=lambda n: n["Name"])
    print_listing([_row(n, no_trunc) for n in nets], template, quiet, "ID",
                  [("ID", "NETWORK ID"), ("Name", "NAME"), ("Driver", "DRIVER"),
                   ("Scope", "SCOPE")])
    return 0


network.add_command(ls, "list")


@network.command(context_settings=CTX)
@click.option("-f", "--format", "template", help="Format output using a custom template")
@click.option("-v", "--verbose", is_flag=True, help="Verbose output for diagnostics")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, template, verbose, names):
    """Display detailed information on one or more networks."""
    from .inspect import render
    found, failed = [], False
    for name in names:
        try:
            found.append(obj.client.call("GET", f"/networks/{name}",
                                         {"verbose": "true" if verbose else None}))
        except DaemonError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    if template:
        for item in found:
            print(render(template, item))
    else:
        print(json.dumps(found, indent=4))
    return 1 if failed else 0


@network.command(context_settings=CTX)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force, names):
    """Remove one or more networks."""
    failed = False
    for name in names:
        try:
            obj.client.request("DELETE", f"/networks/{name}").read()
            print(name)
        except DaemonError as e:
            if force and e.status == 404:
                continue
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


network.add_command(rm, "remove")


@network.command(context_settings=CTX)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True,
              help="Provide filter values (e.g. \"until=<timestamp>\")")
@click.pass_obj
def prune(obj, force, filters):
    """Remove all unused networks."""
    if not confirm("WARNING! This will remove all custom networks not used by at least one "
                   "container.", force):
        return 0
    reply = obj.client.call("POST", "/networks/prune", {"filters": filters_query(filters)})
    deleted = reply.get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:")
        for name in deleted:
            print(name)
    return 0


@network.command(context_settings=CTX)
@click.option("--alias", multiple=True, help="Add network-scoped alias for the container")
@click.option("--ip", help="IPv4 address (e.g., \"172.30.100.104\")")
@click.option("--ip6", help="IPv6 address (e.g., \"2001:db8::33\")")
@click.option("--link", multiple=True, help="Add link to another container")
@click.option("--link-local-ip", multiple=True, help="Add a link-local address for the "
              "container")
@click.option("--driver-opt", multiple=True, help="driver options for the network")
@click.option("--gw-priority", type=int, default=0, help="Highest gw-priority provides the "
              "default gateway")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@click.pass_obj
def connect(obj, alias, ip, ip6, link, link_local_ip, driver_opt, gw_priority, network_name,
            container):
    """Connect a container to a network."""
    endpoint: dict = {"Aliases": list(alias) or None, "Links": list(link) or None,
                      "DriverOpts": _key_values(driver_opt, "driver-opt"),
                      "GwPriority": gw_priority}
    if ip or ip6 or link_local_ip:
        ipam = {"IPv4Address": ip or "", "IPv6Address": ip6 or ""}
        if link_local_ip:
            ipam["LinkLocalIPs"] = list(link_local_ip)
        endpoint["IPAMConfig"] = {k: v for k, v in ipam.items() if v}
    obj.client.request("POST", f"/networks/{network_name}/connect", None,
                       {"Container": container, "EndpointConfig": endpoint}).read()
    return 0


@network.command(context_settings=CTX)
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect from a "
              "network")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@click.pass_obj
def disconnect(obj, force, network_name, container):
    """Disconnect a container from a network."""
    obj.client.request("POST", f"/networks/{network_name}/disconnect", None,
                       {"Container": container, "Force": force}).read()
    return 0


COMMANDS = [network]
