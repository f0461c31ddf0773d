"""containerd.services.leases.v1.Leases: recorded, with nothing to protect (the supervisor keeps
no content or snapshots). ctr takes a lease around `ctr run`."""
from __future__ import annotations

import time

from google.protobuf import empty_pb2

from protos.containerd.services.leases.v1 import leases_pb2 as lpb, leases_pb2_grpc
from supervisor import convert, filters
from supervisor.errors import AlreadyExists, InvalidArgument, NotFound
from supervisor.services import namespace, unary
from supervisor.store import Store


class LeasesServicer(leases_pb2_grpc.LeasesServicer):
    def __init__(self, store: Store):
        self.store = store

    def _lease(self, id: str, labels: dict, created_at: int) -> lpb.Lease:
        return lpb.Lease(id=id, labels=labels, created_at=convert.ns_to_timestamp(created_at))

    def _require(self, ns: str, id: str) -> None:
        if not any(lid == id for lid, _, _ in self.store.list_leases(ns)):
            raise NotFound(f'lease "{id}": not found')

    @unary
    async def Create(self, request, context):
        ns = namespace(context)
        if not request.id:   # any other string will do: ctr's own lease ids end in '-'
            raise InvalidArgument("lease id must not be empty")
        now = time.time_ns()
        with self.store.tx():
            self.store.ensure_namespace(ns)
            if not self.store.put_lease(ns, request.id, dict(request.labels), now):
                raise AlreadyExists(f'lease "{request.id}": already exists')
        return lpb.CreateResponse(lease=self._lease(request.id, dict(request.labels), now))

    @unary
    async def Delete(self, request, context):
        if not self.store.delete_lease(namespace(context), request.id):
            raise NotFound(f'lease "{request.id}": not found')
        return empty_pb2.Empty()

    @unary
    async def List(self, request, context):
        flt = filters.parse(request.filters)
        return lpb.ListResponse(leases=[
            self._lease(i, lbl, ts) for i, lbl, ts in self.store.list_leases(namespace(context))
            if flt.match(filters.mapping_adaptor({"id": i, "labels": lbl}))])

    @unary
    async def AddResource(self, request, context):
        self._require(namespace(context), request.id)
        return empty_pb2.Empty()

    @unary
    async def DeleteResource(self, request, context):
        self._require(namespace(context), request.id)
        return empty_pb2.Empty()

    @unary
    async def ListResources(self, request, context):
        self._require(namespace(context), request.id)
        return lpb.ListResourcesResponse()
