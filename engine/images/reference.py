"""Image references as docker's distribution/reference parses them.

Stored names are fully qualified (`docker.io/library/busybox:latest`); the API shows the familiar
form (`busybox:latest`), as dockerd does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str              # e.g. library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def familiar(self) -> str:
        """`busybox:latest` for docker.io/library/busybox:latest, as `docker images` shows."""
        return familiar(str(self))


def familiar(full: str) -> str:
    if full.startswith(DEFAULT_DOMAIN + "/"):
        full = full[len(DEFAULT_DOMAIN) + 1:]
        if full.startswith("library/") and "/" not in full[len("library/"):].split(":")[0]:
            full = full[len("library/"):]
    return full


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse a reference; a bare name gets docker.io, library/ and (by default) :latest."""
    original = text
    if not text or text != text.strip():
        raise InvalidParameter(f"invalid reference format: {original!r}")
    digest = ""
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidParameter(f"invalid reference format: bad digest in {original}")
    name, tag = text, ""
    last = text.rfind(":")
    if last > text.rfind("/"):
        name, tag = text[:last], text[last + 1:]
        if not _TAG.match(tag):
            raise InvalidParameter(f"invalid reference format: bad tag in {original}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, path_parts = parts[0], parts[1:]
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
    if domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and len(path_parts) == 1:
        path_parts = ["library", *path_parts]
    path = "/".join(path_parts)
    if path.lower() != path:
        raise InvalidParameter(
            f"invalid reference format: repository name ({path}) must be lowercase")
    if not all(_COMPONENT.match(p) for p in path_parts):
        raise InvalidParameter(f"invalid reference format: {original}")
    if not tag and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def id_prefix(text: str) -> str | None:
    """The hex of an image ID or ID prefix (`sha256:abc…`, `abc123`), or None if text is a name."""
    m = _ID.match(text)
    if not m:
        return None
    # a bare hex word shorter than 64 may also be a repository name; callers try the name first
    return m.group(1)
