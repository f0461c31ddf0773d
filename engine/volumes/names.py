"""Volume names, as dockerd's local driver takes them, and the ids of anonymous volumes."""
from __future__ import annotations

import os
import re

from ..errors import InvalidParameter

# dockerd's local driver: at least two characters, the first alphanumeric
VALID_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
NAME_MAX = 255      # the volume's directory under <data-root>/volumes

# the label dockerd (23.0+, API 1.42+) puts on a volume it made without a name, so that a
# prune without all=true removes only those
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def validate(name: str) -> None:
    """InvalidParameter with dockerd's words for a name its local driver refuses."""
    if len(name.encode()) > NAME_MAX:
        raise InvalidParameter(f"create {name[:32]}...: a volume name is at most {NAME_MAX} "
                               f"bytes (it is a directory's name)")
    if not VALID_NAME.fullmatch(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            f'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            f'directory, use absolute path')


def anonymous_name() -> str:
    """A new anonymous volume's name: 64 hex digits, as dockerd's stringid."""
    return os.urandom(32).hex()
