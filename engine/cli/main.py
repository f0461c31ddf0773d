"""`berth`: the command group, the daemon address (-H, BERTH_HOST, DOCKER_HOST) and docker's exit
codes: a daemon error is 125 for `run` (1 for the other verbs), usage errors are 125."""
from __future__ import annotations

import sys

import click

from .client import Client, ConnectError, DaemonError, default_host


class Context:
    def __init__(self, host: str):
        self.host = host
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host)
        return self._client


# verb -> the module of its group: a command imports only its own module
VERBS = {
    "run": "containers", "ps": "containers", "logs": "containers", "rm": "containers",
    "start": "lifecycle", "stop": "lifecycle", "restart": "lifecycle", "kill": "lifecycle",
    "wait": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle", "rename": "lifecycle",
    "exec": "execs", "inspect": "inspect", "top": "inspect", "stats": "inspect",
    "events": "events", "images": "images", "version": "system", "info": "system",
}


class LazyGroup(click.Group):
    """Loads a verb's module when the verb is used (or help lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        from importlib import import_module
        module = import_module(f"{__package__}.{VERBS[name]}")
        return next(c for c in module.COMMANDS if c.name == name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["--help"]})
@click.option("-H", "--host", default=None, metavar="unix:///PATH",
              help="Daemon socket to connect to (default: $BERTH_HOST, $DOCKER_HOST, "
                   "unix:///run/berth/berth.sock)")
@click.version_option(package_name="berth", prog_name="berth", message="berth version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None) -> None:
    """A container engine whose layers are separate processes, as Docker's are."""
    ctx.obj = Context(host or default_host())


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(125 if isinstance(e, click.UsageError) else 1)
    except ConnectError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    except DaemonError as e:
        print(f"Error response from daemon: {e.message}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
