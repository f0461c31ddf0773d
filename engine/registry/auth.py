"""Registry authentication: the credentials a client sends (X-Registry-Auth, POST /auth),
the challenge a registry answers with (WWW-Authenticate) and the bearer-token flow.

A registry that wants Basic auth gets the credentials on each request; one that wants a Bearer
token names a realm (the token server), a service and a scope: berth asks the realm for a token,
anonymously or with the credentials as Basic auth, and keeps it per scope for its lifetime.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field

from ..errors import InvalidParameter


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""      # a refresh token for the realm (docker's IdentityToken)
    registry_token: str = ""      # a bearer token to send as it is

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token or self.registry_token)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def from_auth_config(doc: dict) -> Credentials:
    """docker's AuthConfig (username, password, auth, identitytoken, registrytoken)."""
    user, password = doc.get("username") or "", doc.get("password") or ""
    if not user and doc.get("auth"):
        try:
            user, _, password = base64.b64decode(doc["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameter("invalid auth in the registry credentials") from None
    return Credentials(user, password, doc.get("identitytoken") or "",
                       doc.get("registrytoken") or "")


def from_header(value: str | None) -> Credentials:
    """X-Registry-Auth: base64url JSON of an AuthConfig (padding optional, as docker sends it).
    An empty, `{}` or undecodable header is anonymous: dockerd ignores one it cannot decode
    (the registry then refuses what needs credentials, in its own words)."""
    if not value or not value.strip():
        return Credentials()
    text = value.strip()
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) or b"{}")
    except (binascii.Error, ValueError):
        return Credentials()
    return from_auth_config(doc) if isinstance(doc, dict) else Credentials()


_PARAM = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class Challenge:
    scheme: str                    # "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


@dataclass
class Token:
    value: str
    expires: float


class AuthError(Exception):
    """The registry or its token server refused the credentials (401/403)."""


def token_from_response(doc: dict) -> Token:
    value = doc.get("token") or doc.get("access_token")
    if not value:
        raise AuthError("the token server's answer holds no token")
    lifetime = doc.get("expires_in") or 60
    return Token(value, time.monotonic() + max(int(lifetime), 60) - 10)
