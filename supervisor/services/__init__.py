"""Thin gRPC adapters (grpc.aio servicers), one module per service, over the plain classes in
supervisor/. They read the caller's namespace from the metadata, translate messages, and turn
SupervisorError into gRPC status codes; no logic of their own."""
from __future__ import annotations

import functools
import logging

import grpc

from supervisor import identifiers
from supervisor.errors import SupervisorError

log = logging.getLogger("supervisor.services")

NAMESPACE_KEY = "containerd-namespace"
DEFAULT_NAMESPACE = "default"


def metadata(context) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ())}


def namespace(context) -> str:
    """The caller's namespace (`containerd-namespace` metadata, `default` when absent)."""
    ns = metadata(context).get(NAMESPACE_KEY) or DEFAULT_NAMESPACE
    return identifiers.validate(ns, "namespace")


async def abort(context, err: Exception, what: str):
    if isinstance(err, SupervisorError):
        await context.abort(err.code, err.message)
    log.exception("%s failed", what)
    await context.abort(grpc.StatusCode.INTERNAL, f"{what}: {err}")


def unary(fn):
    """Wrap a unary handler: SupervisorError -> its status code, anything else -> INTERNAL."""
    @functools.wraps(fn)
    async def handler(self, request, context):
        try:
            return await fn(self, request, context)
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            if isinstance(e, grpc.aio.AbortError):
                raise
            await abort(context, e, f"{type(self).__name__}.{fn.__name__}")
    return handler
