"""Engine errors, each carrying the HTTP status the Docker API gives it (moby's errdefs classes)."""
from __future__ import annotations


class EngineError(Exception):
    """An error the API turns into `{"message": ...}` with `status`."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    """dockerd's errdefs.Forbidden: a pre-defined network touched, a network in use removed."""
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    """304: already started / already stopped. Sent with an empty body."""

    status = 304


class Internal(EngineError):
    """500: a failure below the API (the supervisor, the runtime, the filesystem)."""

    status = 500


class Unavailable(EngineError):
    status = 503


class NotImplementedYet(EngineError):
    """501: an API berthd knows but does not serve yet (dockerd's errdefs.NotImplemented)."""

    status = 501
