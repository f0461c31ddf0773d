"""containerd.services.namespaces.v1.Namespaces over the store."""
from __future__ import annotations

from google.protobuf import empty_pb2

from protos.containerd.events import namespace_pb2 as ev
from protos.containerd.services.namespaces.v1 import namespace_pb2 as npb, namespace_pb2_grpc
from supervisor import identifiers
from supervisor.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from supervisor.events import Exchange
from supervisor.services import unary
from supervisor.store import Store


class Namespaces:
    """The logic: a namespace exists once created explicitly or once anything lives in it."""

    def __init__(self, store: Store, exchange: Exchange):
        self.store, self.exchange = store, exchange

    def get(self, name: str) -> dict:
        labels = self.store.namespace_labels(name)
        if labels is None:
            raise NotFound(f'namespace "{name}": not found')
        return labels

    def create(self, name: str, labels: dict) -> None:
        identifiers.validate(name, "namespace")
        if self.store.namespace_labels(name) is not None:
            raise AlreadyExists(f'namespace "{name}": already exists')
        self.exchange.publish(name, "/namespaces/create", ev.NamespaceCreate(name=name, labels=labels),
                              apply=lambda: self.store.put_namespace(name, labels))

    def update(self, name: str, labels: dict, paths: list[str]) -> dict:
        current = self.get(name)
        for path in paths or ["labels"]:
            head, _, key = path.partition(".")
            if head != "labels":
                raise InvalidArgument(f'namespace "{name}": cannot update field "{path}"')
            if key:
                if labels.get(key):
                    current[key] = labels[key]
                else:
                    current.pop(key, None)
            else:
                current = dict(labels)
        self.exchange.publish(name, "/namespaces/update", ev.NamespaceUpdate(name=name, labels=current),
                              apply=lambda: self.store.put_namespace(name, current))
        return current

    def delete(self, name: str) -> None:
        self.get(name)
        used = self.store.namespace_in_use(name)
        if used:
            raise FailedPrecondition(f'namespace "{name}" must be empty, but it still has {used}')
        self.exchange.publish(name, "/namespaces/delete", ev.NamespaceDelete(name=name),
                              apply=lambda: self.store.delete_namespace(name))


class NamespacesServicer(namespace_pb2_grpc.NamespacesServicer):
    def __init__(self, namespaces: Namespaces):
        self.ns = namespaces

    @unary
    async def Get(self, request, context):
        labels = self.ns.get(request.name)
        return npb.GetNamespaceResponse(namespace=npb.Namespace(name=request.name, labels=labels))

    @unary
    async def List(self, request, context):
        return npb.ListNamespacesResponse(namespaces=[
            npb.Namespace(name=n, labels=lbl) for n, lbl in self.ns.store.list_namespaces()])

    @unary
    async def Create(self, request, context):
        n = request.namespace
        self.ns.create(n.name, dict(n.labels))
        return npb.CreateNamespaceResponse(namespace=n)

    @unary
    async def Update(self, request, context):
        n = request.namespace
        labels = self.ns.update(n.name, dict(n.labels), list(request.update_mask.paths))
        return npb.UpdateNamespaceResponse(namespace=npb.Namespace(name=n.name, labels=labels))

    @unary
    async def Delete(self, request, context):
        self.ns.delete(request.name)
        return empty_pb2.Empty()
