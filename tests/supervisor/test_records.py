"""Containers, namespaces, leases, version and introspection: over gRPC through the client and
raw stubs, and the plain logic classes called directly (no network)."""
from __future__ import annotations

import grpc
import pytest
from google.protobuf import empty_pb2, field_mask_pb2

from protos.containerd.services.containers.v1 import containers_pb2 as cpb, containers_pb2_grpc
from protos.containerd.services.introspection.v1 import introspection_pb2 as ipb, introspection_pb2_grpc
from protos.containerd.services.leases.v1 import leases_pb2 as lpb, leases_pb2_grpc
from protos.containerd.services.namespaces.v1 import namespace_pb2 as npb, namespace_pb2_grpc
from supervisor import convert, errors
from supervisor.containers import Containers
from supervisor.events import Exchange
from supervisor.store import Store
from tests.helpers.supervisor_env import busybox_spec


@pytest.fixture
def channel(supervisor):
    ch = grpc.insecure_channel(supervisor.address)
    yield ch
    ch.close()


def test_version_and_server_uuid_persist(private_supervisor):
    sup = private_supervisor()
    c = sup.client()
    assert c.version()["version"].startswith("1.6.20+berth")
    uuid = c.server_uuid()
    sup.stop()
    sup.start()
    assert sup.client().server_uuid() == uuid


def test_containers_crud_filters_and_update_mask(client, new_id):
    c = client
    a, b = new_id(), new_id()
    spec = busybox_spec(["true"])
    made = c.create_container(a, spec, image="img:1", labels={"app": "web", "tier": "1"},
                              runtime="runc", runtime_binary="runc")
    assert made["spec"] == spec and made["runtime"] == "runc" and made["runtime_binary"] == "runc"
    c.create_container(b, spec, labels={"app": "db"})
    assert [x["id"] for x in c.list_containers()] == [a, b]
    assert [x["id"] for x in c.list_containers("labels.app==web")] == [a]
    assert [x["id"] for x in c.list_containers("labels.app==db", f"id=={a}")] == [a, b]
    assert [x["id"] for x in c.list_containers("image==img:1,labels.tier")] == [a]
    assert [x["id"] for x in c.list_containers("runtime.name==runc")] == [a]
    updated = c.update_container(a, labels={"app": "api"}, image="img:2")
    assert updated["labels"] == {"app": "api"} and updated["image"] == "img:2"
    assert updated["updated_at"] > updated["created_at"]
    assert c.get_container(a)["spec"] == spec
    # a mask on one label key, through the raw service
    ch = grpc.insecure_channel(client.address)
    stub = containers_pb2_grpc.ContainersStub(ch)
    md = (("containerd-namespace", c.namespace),)
    req = cpb.UpdateContainerRequest(container=cpb.Container(id=a, labels={"new": "1"}),
                                     update_mask=field_mask_pb2.FieldMask(paths=["labels.new"]))
    assert dict(stub.Update(req, metadata=md).container.labels) == {"app": "api", "new": "1"}
    req = cpb.UpdateContainerRequest(container=cpb.Container(id=a),
                                     update_mask=field_mask_pb2.FieldMask(paths=["runtime"]))
    with pytest.raises(grpc.RpcError) as info:
        stub.Update(req, metadata=md)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    streamed = [m.container.id for m in stub.ListStream(cpb.ListContainersRequest(), metadata=md)]
    assert streamed == [a, b]
    ch.close()
    c.delete_container(a)
    assert [x["id"] for x in c.list_containers()] == [b]


def test_namespaces(channel, client, new_id):
    stub = namespace_pb2_grpc.NamespacesStub(channel)
    name = new_id("n")
    stub.Create(npb.CreateNamespaceRequest(namespace=npb.Namespace(name=name, labels={"a": "1"})))
    with pytest.raises(grpc.RpcError) as info:
        stub.Create(npb.CreateNamespaceRequest(namespace=npb.Namespace(name=name)))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    got = stub.Get(npb.GetNamespaceRequest(name=name)).namespace
    assert dict(got.labels) == {"a": "1"}
    stub.Update(npb.UpdateNamespaceRequest(namespace=npb.Namespace(name=name, labels={"b": "2"}),
                                           update_mask=field_mask_pb2.FieldMask(paths=["labels.b"])))
    assert dict(stub.Get(npb.GetNamespaceRequest(name=name)).namespace.labels) == {"a": "1", "b": "2"}
    # a namespace comes into being with its first container, and cannot go while it has one
    implicit = client.namespace
    client.create_container(new_id(), busybox_spec(["true"]))
    names = [n.name for n in stub.List(npb.ListNamespacesRequest()).namespaces]
    assert name in names and implicit in names
    with pytest.raises(grpc.RpcError) as info:
        stub.Delete(npb.DeleteNamespaceRequest(name=implicit))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "must be empty" in info.value.details()
    stub.Delete(npb.DeleteNamespaceRequest(name=name))
    with pytest.raises(grpc.RpcError) as info:
        stub.Get(npb.GetNamespaceRequest(name=name))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_leases(channel, client, new_id):
    stub = leases_pb2_grpc.LeasesStub(channel)
    md = (("containerd-namespace", client.namespace),)
    lid = new_id("l")
    lease = stub.Create(lpb.CreateRequest(id=lid, labels={"x": "y"}), metadata=md).lease
    assert lease.id == lid and lease.created_at.seconds > 0
    with pytest.raises(grpc.RpcError) as info:
        stub.Create(lpb.CreateRequest(id=lid), metadata=md)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert [x.id for x in stub.List(lpb.ListRequest(), metadata=md).leases] == [lid]
    stub.AddResource(lpb.AddResourceRequest(id=lid, resource=lpb.Resource(id="r", type="content")),
                     metadata=md)
    stub.Delete(lpb.DeleteRequest(id=lid), metadata=md)
    with pytest.raises(grpc.RpcError) as info:
        stub.Delete(lpb.DeleteRequest(id=lid), metadata=md)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_introspection_plugins(channel):
    stub = introspection_pb2_grpc.IntrospectionStub(channel)
    plugins = stub.Plugins(ipb.PluginsRequest()).plugins
    ids = {(p.type, p.id) for p in plugins}
    for service in ("version", "namespaces", "containers", "tasks", "events", "introspection"):
        assert ("io.containerd.grpc.v1", service) in ids
    runtime = [p for p in plugins if p.type == "io.containerd.runtime.v2"]
    assert runtime and runtime[0].platforms[0].os == "linux"
    only = stub.Plugins(ipb.PluginsRequest(filters=["type==io.containerd.grpc.v1,id==tasks"])).plugins
    assert [(p.type, p.id) for p in only] == [("io.containerd.grpc.v1", "tasks")]
    assert stub.Server(empty_pb2.Empty()).uuid


def test_containers_logic_without_a_network(tmp_path):
    """The logic class the gRPC service adapts, called directly."""
    store = Store(tmp_path / "db")
    exchange = Exchange(store)
    logic = Containers(store, exchange, "runc")
    msg = cpb.Container(id="c1", spec=convert.pack_json(convert.SPEC_URL, {"process": {}}))
    msg.runtime.name = "io.containerd.runc.v2"
    logic.create("ns1", msg)
    assert logic.get("ns1", "c1").runtime_name == "io.containerd.runc.v2"
    assert logic.runtime_of(logic.get("ns1", "c1")).name == "runc"
    with pytest.raises(errors.NotFound):
        logic.get("ns2", "c1")
    assert store.list_namespaces() == [("ns1", {})]
    logic.delete("ns1", "c1")
    assert [row[3] for row in store.events_after(0)] == ["/containers/create", "/containers/delete"]
    store.close()
