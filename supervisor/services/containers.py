"""containerd.services.containers.v1.Containers over supervisor.containers.Containers."""
from __future__ import annotations

from google.protobuf import empty_pb2

from protos.containerd.services.containers.v1 import containers_pb2 as cpb, containers_pb2_grpc
from supervisor.containers import Containers
from supervisor.services import abort, namespace, unary


class ContainersServicer(containers_pb2_grpc.ContainersServicer):
    def __init__(self, containers: Containers):
        self.c = containers

    @unary
    async def Get(self, request, context):
        rec = self.c.get(namespace(context), request.id)
        return cpb.GetContainerResponse(container=self.c.to_message(rec))

    @unary
    async def List(self, request, context):
        recs = self.c.list(namespace(context), request.filters)
        return cpb.ListContainersResponse(containers=[self.c.to_message(r) for r in recs])

    async def ListStream(self, request, context):
        try:
            recs = self.c.list(namespace(context), request.filters)
        except Exception as e:  # noqa: BLE001
            await abort(context, e, "Containers.ListStream")
        for rec in recs:
            await context.write(cpb.ListContainerMessage(container=self.c.to_message(rec)))

    @unary
    async def Create(self, request, context):
        rec = self.c.create(namespace(context), request.container)
        return cpb.CreateContainerResponse(container=self.c.to_message(rec))

    @unary
    async def Update(self, request, context):
        rec = self.c.update(namespace(context), request.container, list(request.update_mask.paths))
        return cpb.UpdateContainerResponse(container=self.c.to_message(rec))

    @unary
    async def Delete(self, request, context):
        self.c.delete(namespace(context), request.id)
        return empty_pb2.Empty()
