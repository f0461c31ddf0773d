"""Errors a request can end in; the code names containerd's errdefs class (shim.proto ErrorCode)."""
from __future__ import annotations

from protos.berth.shim.v1 import shim_lean as pb


class ShimError(Exception):
    code = pb.INTERNAL

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFound(ShimError):
    code = pb.NOT_FOUND


class AlreadyExists(ShimError):
    code = pb.ALREADY_EXISTS


class FailedPrecondition(ShimError):
    code = pb.FAILED_PRECONDITION


class InvalidArgument(ShimError):
    code = pb.INVALID_ARGUMENT


class Unavailable(ShimError):
    code = pb.UNAVAILABLE


class Unimplemented(ShimError):
    code = pb.NOT_IMPLEMENTED


class Internal(ShimError):
    code = pb.INTERNAL


BY_CODE: dict[int, type[ShimError]] = {
    cls.code: cls for cls in (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument,
                              Unavailable, Unimplemented, Internal)
}


class RuntimeFailed(ShimError):
    """The OCI runtime failed; containerd reports these as errdefs.ErrUnknown."""
    code = pb.UNKNOWN_ERROR


BY_CODE[pb.UNKNOWN_ERROR] = RuntimeFailed
