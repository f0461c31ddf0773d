"""`berth`: the command group, the daemon address (-H, BERTH_HOST, DOCKER_HOST, and the docker
CLI's TLS flags and variables) and docker's exit codes: a daemon error is 125 for `run` (1 for
the other verbs), usage errors are 125."""
from __future__ import annotations

import sys

import click

from .client import Client, ConnectError, DaemonError, default_host


class Context:
    def __init__(self, host: str, tls=None):
        self.host = host
        self.tls = tls
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host, self.tls)
        return self._client


# verb -> the module of its group: a command imports only its own module
VERBS = {
    "run": "containers", "create": "containers", "ps": "containers", "logs": "containers",
    "rm": "containers", "port": "containers",
    "network": "networks", "volume": "volumes",
    "start": "lifecycle", "stop": "lifecycle", "restart": "lifecycle", "kill": "lifecycle",
    "wait": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle", "rename": "lifecycle",
    "exec": "execs", "inspect": "inspect", "top": "inspect", "stats": "inspect",
    "events": "events", "images": "images", "version": "system", "info": "system",
    "system": "system", "tls": "tls",
    "pull": "registry", "push": "registry", "login": "registry", "logout": "registry",
    "save": "image_files", "load": "image_files", "import": "image_files",
    "commit": "image_files", "history": "image_files",
    "build": "build",
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
@click.option("-H", "--host", default=None, metavar="HOST",
              help="Daemon to connect to: unix:///PATH, tcp://HOST:PORT or "
                   "ssh://[USER@]HOST[:PORT][/SOCKET] (default: $BERTH_HOST, $DOCKER_HOST, "
                   "unix:///run/berth/berth.sock)")
@click.option("--tls", is_flag=True, help="Use TLS; implied by --tlsverify")
@click.option("--tlsverify", is_flag=True, default=None,
              help="Use TLS and verify the daemon (default: $DOCKER_TLS_VERIFY)")
@click.option("--tlscacert", metavar="PATH", help="Trust certs signed only by this CA "
              "(default: $DOCKER_CERT_PATH/ca.pem, ~/.docker/ca.pem)")
@click.option("--tlscert", metavar="PATH", help="Path to TLS certificate file "
              "(default: …/cert.pem)")
@click.option("--tlskey", metavar="PATH", help="Path to TLS key file (default: …/key.pem)")
@click.version_option(package_name="berth", prog_name="berth", message="berth version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None, tls: bool, tlsverify: bool | None,
        tlscacert: str | None, tlscert: str | None, tlskey: str | None) -> None:
    """A container engine whose layers are separate processes, as Docker's are."""
    host = host or default_host()
    options = None
    if not host.startswith("unix://"):
        from .transport import tls_from
        options = tls_from(tls, tlsverify, tlscacert, tlscert, tlskey)
    ctx.obj = Context(host, options)


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
    except OSError as e:          # the connection failed mid-answer
        print(f"error during connect: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)
    except DaemonError as e:
        print(f"Error response from daemon: {e.message}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
