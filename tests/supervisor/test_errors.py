"""Bad requests get the right gRPC code, a message naming what was wrong, and leave nothing
behind: no record, bundle, shim socket, runtime state, shim or container process."""
from __future__ import annotations

import json
import signal

import grpc
import pytest
from google.protobuf import any_pb2

from protos.containerd.services.containers.v1 import containers_pb2 as cpb, containers_pb2_grpc
from protos.containerd.services.tasks.v1 import tasks_pb2 as tpb, tasks_pb2_grpc
from supervisor import errors
from supervisor.convert import SPEC_URL
from tests.helpers.supervisor_env import busybox_spec, process_spec


def make(client, cid, rootfs, args, **kw):
    client.create_container(cid, busybox_spec(args, root=str(rootfs), readonly=True, **kw))


def assert_nothing_left(sup, ns: str, cid: str) -> None:
    root = sup.root
    assert not (root / "tasks" / ns / cid).exists(), "bundle left behind"
    from supervisor.shims import Layout
    assert not Layout(root).socket(ns, cid).exists(), "shim socket left behind"
    for rdir in (root / "runtime").glob("*"):
        assert not (rdir / ns / cid).exists(), f"runtime state left in {rdir}"
    bundle = str(root / "tasks" / ns / cid)
    from tests.helpers.supervisor_env import _processes_mentioning
    assert _processes_mentioning(bundle) == [], "a shim or runtime process is left"
    with pytest.raises(errors.NotFound):
        sup.client(ns).get_task(cid)


def raw_stubs(sup, ns):
    channel = grpc.insecure_channel(sup.address)
    md = (("containerd-namespace", ns),)
    return channel, containers_pb2_grpc.ContainersStub(channel), tasks_pb2_grpc.TasksStub(channel), md


def test_unknown_ids_are_not_found(client, new_id, rootfs):
    c, cid = client, new_id()
    with pytest.raises(errors.NotFound, match=f'container "{cid}" in namespace "{c.namespace}": not found'):
        c.get_container(cid)
    with pytest.raises(errors.NotFound, match=cid):
        c.delete_container(cid)
    with pytest.raises(errors.NotFound, match=cid):
        c.create_task(cid)
    make(c, cid, rootfs, ["true"])      # a container without a task
    for call in (lambda: c.get_task(cid), lambda: c.start(cid), lambda: c.wait(cid),
                 lambda: c.kill(cid, 9), lambda: c.delete_task(cid), lambda: c.pids(cid),
                 lambda: c.pause(cid), lambda: c.metrics(cid)):
        with pytest.raises(errors.NotFound, match=f"task {cid} not found"):
            call()


def test_duplicates_are_already_exists(supervisor, client, new_id, rootfs):
    c, cid = client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    with pytest.raises(errors.AlreadyExists, match=f'container "{cid}": already exists'):
        make(c, cid, rootfs, ["true"])
    pid = c.create_task(cid)
    with pytest.raises(errors.AlreadyExists, match=f"task {cid}: already exists"):
        c.create_task(cid)
    assert c.get_task(cid)["pid"] == pid        # the first one is untouched
    c.start(cid)
    c.exec(cid, "e1", process_spec(["true"]))
    with pytest.raises(errors.AlreadyExists, match="e1"):
        c.exec(cid, "e1", process_spec(["true"]))


@pytest.mark.parametrize("bad_id", ["", "a/b", "..", "-x", "x" * 77, "a b"])
def test_invalid_container_ids(client, bad_id, rootfs):
    with pytest.raises(errors.InvalidArgument, match="identifier"):
        client.create_container(bad_id, busybox_spec(["true"], root=str(rootfs)))
    assert client.list_containers() == []


def test_invalid_specs_and_runtimes(supervisor, client, new_id):
    channel, containers, _, md = raw_stubs(supervisor, client.namespace)
    try:
        def create(**fields):
            c = cpb.Container(id=new_id(), **fields)
            c.runtime.name = "io.containerd.runc.v2"
            return containers.Create(cpb.CreateContainerRequest(container=c), metadata=md)

        cases = {
            "spec must be set": {},
            "not valid JSON": {"spec": any_pb2.Any(type_url=SPEC_URL, value=b"{nope")},
            "must be a JSON object": {"spec": any_pb2.Any(type_url=SPEC_URL, value=b"[1]")},
            "want types.containerd.io": {"spec": any_pb2.Any(type_url="example.com/Other",
                                                             value=b"{}")},
        }
        for message, fields in cases.items():
            with pytest.raises(grpc.RpcError) as info:
                create(**fields)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in info.value.details()
    finally:
        channel.close()
    spec = busybox_spec(["true"])
    with pytest.raises(errors.InvalidArgument, match='unknown runtime "io.containerd.kata.v2"'):
        client.create_container(new_id(), spec, runtime="io.containerd.kata.v2")
    with pytest.raises(errors.InvalidArgument, match="/no/such/runc"):
        client.create_container(new_id(), spec, runtime_binary="/no/such/runc")
    with pytest.raises(errors.InvalidArgument, match="namespace"):
        client.with_namespace("bad/ns").list_containers()
    assert client.list_containers() == []


def test_runtime_failure_leaves_nothing(supervisor, client, new_id, tmp_path):
    """The runtime cannot create the container (its rootfs does not exist): the error says so,
    and the bundle, shim, socket and runtime state are gone."""
    c, cid = client, new_id()
    c.create_container(cid, busybox_spec(["true"], root=str(tmp_path / "missing-rootfs")))
    with pytest.raises(errors.SupervisorError) as info:
        c.create_task(cid)
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert "runtime create failed" in info.value.message
    assert_nothing_left(supervisor, c.namespace, cid)
    c.delete_container(cid)


def test_bad_stdio_leaves_nothing(supervisor, client, new_id, rootfs):
    c, cid = client, new_id()
    make(c, cid, rootfs, ["true"])
    with pytest.raises(errors.InvalidArgument, match="ftp"):
        c.create_task(cid, stdout="ftp://example.com/x")
    assert_nothing_left(supervisor, c.namespace, cid)


def test_exec_errors(client, new_id, rootfs):
    c, cid = client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    c.start(cid)
    with pytest.raises(errors.InvalidArgument, match="exec id cannot be empty"):
        c.exec(cid, "", process_spec(["true"]))
    with pytest.raises(errors.InvalidArgument, match="args"):
        c.exec(cid, "e1", {"cwd": "/"})
    with pytest.raises(errors.NotFound, match="e9"):
        c.start(cid, "e9")
    c.kill(cid, signal.SIGKILL)
    c.wait(cid)
    with pytest.raises(errors.FailedPrecondition, match=f"task {cid}: cannot exec in a stopped task"):
        c.exec(cid, "e2", process_spec(["true"]))
    with pytest.raises(errors.NotFound):
        c.get_task(cid, "e2")


def test_delete_refusals(client, new_id, rootfs):
    c, cid = client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    c.start(cid)
    with pytest.raises(errors.FailedPrecondition, match="running"):
        c.delete_task(cid)
    with pytest.raises(errors.FailedPrecondition, match="has a task"):
        c.delete_container(cid)
    assert c.get_task(cid)["status"] == "running"


def test_checkpoint_is_unimplemented(supervisor, client, new_id):
    channel, _, tasks, md = raw_stubs(supervisor, client.namespace)
    try:
        with pytest.raises(grpc.RpcError) as info:
            tasks.Checkpoint(tpb.CheckpointTaskRequest(container_id="x"), metadata=md)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        channel.close()


def test_bad_update_and_exec_payloads(supervisor, client, new_id, rootfs):
    c, cid = client, new_id()
    make(c, cid, rootfs, ["sleep", "30"])
    c.create_task(cid)
    channel, _, tasks, md = raw_stubs(supervisor, c.namespace)
    try:
        with pytest.raises(grpc.RpcError) as info:
            tasks.Update(tpb.UpdateTaskRequest(container_id=cid, resources=any_pb2.Any(
                type_url="types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                value=b"nope")), metadata=md)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as info:
            tasks.Exec(tpb.ExecProcessRequest(container_id=cid, exec_id="x", spec=any_pb2.Any(
                type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
                value=json.dumps({"args": "not-a-list"}).encode())), metadata=md)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
