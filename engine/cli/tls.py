"""`berth tls`: certificates for a remote berthd, made with engine/tlscerts.py."""
from __future__ import annotations

from pathlib import Path

import click


def _make(fn, *args, **kwargs) -> None:
    from ..tlscerts import CertError
    try:
        fn(*args, **kwargs)
    except CertError as e:
        raise click.ClickException(str(e)) from None


@click.group(context_settings={"help_option_names": ["--help"]})
def tls():
    """Make a CA and the certificates for berthd -H tcp://… --tlsverify and its clients.

    \b
      berth tls ca ./ca
      berth tls server ./server --ca ./ca --san host.example --san 192.0.2.10
      berth tls client ./client --ca ./ca
      berthd -H tcp://0.0.0.0:2376 --tlsverify --tlscacert ./server/ca.pem \\
             --tlscert ./server/cert.pem --tlskey ./server/key.pem
      DOCKER_HOST=tcp://host.example:2376 DOCKER_TLS_VERIFY=1 \\
             DOCKER_CERT_PATH=./client docker ps
    """


@tls.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="the CA's common name (default: berth CA and a random tag, so "
              "that two CAs are never confused by name)")
@click.option("--days", default=3650, show_default=True, type=click.IntRange(1),
              help="validity")
def ca(directory: Path, name: str, days: int):
    """Make a CA: DIRECTORY/ca.pem and DIRECTORY/ca-key.pem (keep that one secret)."""
    import secrets

    from ..tlscerts import make_ca
    _make(make_ca, directory, name or f"berth CA {secrets.token_hex(4)}", days)
    print(f"{directory / 'ca.pem'}")


@tls.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ca", "ca_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the CA's directory (from `berth tls ca`)")
@click.option("--san", "sans", multiple=True, required=True, metavar="NAME_OR_IP",
              help="a DNS name or IP address clients reach berthd by (repeatable)")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1), help="validity")
def server(directory: Path, ca_dir: Path, sans: tuple[str, ...], days: int):
    """Make berthd's certificate: DIRECTORY/ca.pem, cert.pem and key.pem, for --tlscacert,
    --tlscert and --tlskey."""
    from ..tlscerts import make_leaf
    _make(make_leaf, directory, ca_dir, sans[0], server_names=list(sans), days=days)
    print(f"{directory / 'cert.pem'}")


@tls.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ca", "ca_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the CA's directory (from `berth tls ca`)")
@click.option("--name", default="client", show_default=True, help="the client's common name")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1), help="validity")
def client(directory: Path, ca_dir: Path, name: str, days: int):
    """Make a client's certificate: DIRECTORY/ca.pem, cert.pem and key.pem, laid out as
    DOCKER_CERT_PATH expects."""
    from ..tlscerts import make_leaf
    _make(make_leaf, directory, ca_dir, name, client=True, days=days)
    print(f"{directory / 'cert.pem'}")


COMMANDS = [tls]
