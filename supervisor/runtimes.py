"""Which OCI runtime binary runs a container.

`Container.runtime.name` is containerd's `io.containerd.runc.v2` (what ctr sends: the
supervisor's default runtime), or `lowrt`, `runc`, `crun`, or an absolute path. containerd's
runc options (`binary_name`, what `ctr run --runc-binary` sends) override the binary.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import InvalidArgument

DEFAULT_NAMES = ("io.containerd.runc.v2", "io.containerd.runc.v1")
KNOWN = ("lowrt", "runc", "crun")


@dataclass(frozen=True)
class Runtime:
    name: str        # a short name for the runtime's state directory: lowrt, runc, crun, ...
    binary: str      # absolute path


def find_program(name: str) -> str | None:
    """A program next to this interpreter (the venv's console scripts) first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def _binary(name: str, what: str) -> Runtime:
    if os.path.isabs(name):
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise InvalidArgument(f"{what}: runtime binary {name} does not exist or is not executable")
        return Runtime(os.path.basename(name), name)
    if "/" in name:
        raise InvalidArgument(f'{what}: runtime "{name}" must be a name or an absolute path')
    path = find_program(name)
    if path is None:
        raise InvalidArgument(f'{what}: runtime binary "{name}" not found')
    return Runtime(name, path)


def resolve(name: str, binary_name: str | None, default: str, what: str) -> Runtime:
    """The runtime for a container whose runtime.name is name; `what` names it in errors."""
    if not name:
        raise InvalidArgument(f"{what}: runtime name must be set")
    if name in DEFAULT_NAMES:
        chosen = default
    elif name in KNOWN or os.path.isabs(name):
        chosen = name
    else:
        raise InvalidArgument(f'{what}: unknown runtime "{name}" (want io.containerd.runc.v2, '
                              f"{', '.join(KNOWN)} or an absolute path)")
    return _binary(binary_name or chosen, what)
