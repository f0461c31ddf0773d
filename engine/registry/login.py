"""docker login's check (POST /auth): the registry's /v2/ with the credentials, as it asks
for them (a token from its realm, or Basic)."""
from __future__ import annotations

from .auth import Credentials
from .client import Client, RegistryError
from .transport import DOCKER_HUB, RegistryConfig


def registry_host(server: str) -> str:
    """serveraddress as the CLI sends it (https://index.docker.io/v1/, 127.0.0.1:5000,
    https://reg.example) -> the registry host berth uses (docker.io, 127.0.0.1:5000)."""
    text = (server or "").strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    text = text.split("/", 1)[0]
    if not text or text in ("index.docker.io", "registry-1.docker.io", DOCKER_HUB):
        return DOCKER_HUB
    return text


async def login(config: RegistryConfig, server: str, creds: Credentials) -> str:
    """Checks the credentials; returns the status text, or raises RegistryError (401) with the
    registry's words."""
    host = registry_host(server)
    if creds.anonymous:
        raise RegistryError("username and password are required to log in", 400)
    async with Client(config, host, "", creds) as client:
        await client.check_credentials()
    return "Login Succeeded"
