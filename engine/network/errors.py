"""The network layer's one error class the engine's errors.py lacks (a request for it is
filed): dockerd's errdefs.Forbidden, 403, for a pre-defined network touched, a network in use
removed, an endpoint that exists already."""
from __future__ import annotations

from ..errors import EngineError


class Forbidden(EngineError):
    status = 403
