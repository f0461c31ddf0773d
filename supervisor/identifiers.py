"""containerd's identifier rule for namespaces, container ids, exec ids and leases.

Alphanumeric components joined by single `.`, `_` or `-`, at most 76 characters: ids become
path components (bundles, sockets, cgroups), so no `/`, no `..`, nothing a shell or a path
would read specially.
"""
from __future__ import annotations

import re

from supervisor.errors import InvalidArgument

MAX_LENGTH = 76
_PATTERN = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")


def validate(value: str, what: str = "identifier") -> str:
    if not value:
        raise InvalidArgument(f"{what}: identifier must not be empty")
    if len(value) > MAX_LENGTH:
        raise InvalidArgument(f'{what}: identifier "{value}" is longer than {MAX_LENGTH} characters')
    if not _PATTERN.match(value):
        raise InvalidArgument(f'{what}: identifier "{value}" must be letters and digits, '
                              "joined by single '.', '_' or '-'")
    return value
