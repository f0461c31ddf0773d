"""The supervisor's error classes, one per containerd errdefs class, and their gRPC status codes.

The plain logic classes raise these; the gRPC adapters turn them into status codes; the client
library turns status codes back into them. So a caller sees the same exception whether it called
the logic in-process or over the wire. Messages are lowercase and name the object, as
containerd's are (`container "x" in namespace "default": not found`).
"""
from __future__ import annotations

import grpc


class SupervisorError(Exception):
    """Base class; `code` is the gRPC status code the error travels as."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(SupervisorError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SupervisorError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(SupervisorError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class InvalidArgument(SupervisorError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class Unavailable(SupervisorError):
    code = grpc.StatusCode.UNAVAILABLE


class NotImplementedByServer(SupervisorError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(SupervisorError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[SupervisorError]] = {
    cls.code: cls
    for cls in (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable,
                NotImplementedByServer, Internal)
}


def from_status(code: grpc.StatusCode | None, message: str) -> SupervisorError:
    """The exception for a gRPC status (SupervisorError itself for codes without a class)."""
    cls = _BY_CODE.get(code, SupervisorError) if code is not None else SupervisorError
    err = cls(message or (code.name.lower() if code is not None else "unknown error"))
    if cls is SupervisorError and code is not None:
        err.code = code
    return err


def from_rpc_error(err: grpc.RpcError) -> SupervisorError:
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    return from_status(code, details or "")
