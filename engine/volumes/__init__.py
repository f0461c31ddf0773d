"""Volumes: the `local` driver as dockerd's (a directory under berthd's data root, or what
`--opt type=…,o=…,device=…` mounts there), the containers that use each, and how a container's
-v, --mount type=volume, VOLUME and --volumes-from become mount points.

One concern per module:
- names.py: volume names (dockerd's rule) and anonymous volumes' ids
- options.py: the local driver's --opt (type, o, device, size) checked and turned into a mount
- mounts.py: the mount(2)/umount2(2) calls and the mountinfo lookup, berthd's only ones here
- local.py: the driver's directories and metadata on disk
- service.py: the volumes berthd knows, their users (reference counts) and active mounts
- copyup.py: a new volume filled from the image's content at its mount point
- mountpoints.py: a container's volume mount points from its create request
"""
from __future__ import annotations

from .service import Volume, Volumes

__all__ = ["Volume", "Volumes"]
