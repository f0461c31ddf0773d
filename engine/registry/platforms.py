"""Platforms (os/arch[/variant]): the host's, `--platform` parsing, and the choice of a manifest
from an index as dockerd makes it."""
from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from ..errors import InvalidParameter, NotFound

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i386": "386", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def normalize(os_: str, arch: str, variant: str = "") -> Platform:
    os_, arch, variant = os_.lower(), arch.lower(), variant.lower()
    mapped = _ARCH.get(arch, arch)
    if isinstance(mapped, tuple):
        arch, variant = mapped[0], variant or mapped[1]
    else:
        arch = mapped
    if arch == "arm64" and variant == "v8":
        variant = ""             # arm64 is v8 unless said otherwise, as containerd reads it
    if arch == "arm" and not variant:
        variant = "v7"
    return Platform(os_, arch, variant)


def host() -> Platform:
    return normalize("linux", _platform.machine())


def parse(text: str) -> Platform:
    """`linux/arm64`, `linux/arm/v7`, `arm64` (the host's OS): as docker's --platform."""
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3 or not all(parts):
        raise InvalidParameter(f"invalid platform {text!r}: give os/arch[/variant], "
                               "e.g. linux/arm64")
    if len(parts) == 1:
        if parts[0].lower() in ("linux", "windows", "darwin", "freebsd"):
            return normalize(parts[0], _platform.machine())
        return normalize("linux", parts[0])
    return normalize(*parts)


def choose(manifests: list[dict], want: Platform) -> dict:
    """The index entry for want: same OS and architecture, and the variant when want has one
    (else the entry without a variant, or the first)."""
    fits = []
    for m in manifests:
        p = m.get("platform") or {}
        got = normalize(p.get("os", ""), p.get("architecture", ""), p.get("variant", ""))
        if got.os == want.os and got.architecture == want.architecture:
            if got.variant == want.variant:
                return m
            fits.append((got, m))
    if fits and not want.variant:
        return fits[0][1]
    raise NotFound(f"no matching manifest for {want} in the manifest list entries")
