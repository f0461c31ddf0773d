"""The client library for berth-supervisor (and, for the containerd calls, for containerd itself).

`Client` blocks; `AsyncClient` (grpc.aio, what berthd uses) has the same methods as coroutines.
Every call carries the `containerd-namespace` metadata of the client's namespace. Errors arrive
as `supervisor.errors.*`, mapped from the gRPC status codes.

    c = Client("unix:///run/berth/supervisor.sock", namespace="berth")
    c.create_container("web", spec)
    pid = c.create_task("web", stdout="berth-jsonfile:///var/lib/berth/containers/web/web-json.log")
    c.start("web"); status, exited_at = c.wait("web"); c.delete_task("web")

Streams: `attach()` returns an Attachment yielding (stream, data) with stream 1 (stdout) or 2
(stderr) until the process's output ends; `subscribe()` yields event dicts
{"seq", "timestamp", "namespace", "topic", "event"}. Both return once the server has set the
stream up, so nothing that happens after the call returns is missed. In AsyncClient they are
coroutines that return async iterables: `att = await c.attach("web")`, `async for s, d in att`.
"""
from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator

import grpc
from google.protobuf import empty_pb2, field_mask_pb2

from protos.berth.services.streams.v1 import streams_pb2, streams_pb2_grpc
from protos.containerd.cgroups.v1 import metrics_pb2 as cg1
from protos.containerd.cgroups.v2 import metrics_pb2 as cg2
from protos.containerd.services.containers.v1 import containers_pb2 as cpb, containers_pb2_grpc
from protos.containerd.services.events.v1 import events_pb2 as epb, events_pb2_grpc
from protos.containerd.services.introspection.v1 import introspection_pb2_grpc
from protos.containerd.services.namespaces.v1 import namespace_pb2 as npb, namespace_pb2_grpc
from protos.containerd.services.tasks.v1 import tasks_pb2 as tpb, tasks_pb2_grpc
from protos.containerd.services.version.v1 import version_pb2_grpc
from protos.containerd.types import mount_pb2
from supervisor import convert, errors
from supervisor.metrics import metrics_to_stats

NAMESPACE_KEY = "containerd-namespace"
EVENTS_AFTER_KEY = "berth-events-after"     # Subscribe: resume after this sequence number
EVENTS_READY_KEY = "berth-events-seq"       # Subscribe: sent once the subscription is live
ATTACH_READY_KEY = "berth-attach"           # Attach: sent once the shim accepted the attach

_STUBS = {
    "version": version_pb2_grpc.VersionStub,
    "introspection": introspection_pb2_grpc.IntrospectionStub,
    "namespaces": namespace_pb2_grpc.NamespacesStub,
    "containers": containers_pb2_grpc.ContainersStub,
    "tasks": tasks_pb2_grpc.TasksStub,
    "events": events_pb2_grpc.EventsStub,
    "streams": streams_pb2_grpc.StreamsStub,
}


def grpc_target(address: str) -> str:
    """unix:///path, /path or host:port -> a gRPC target."""
    if address.startswith("/"):
        return "unix://" + address
    return address


# --- wire <-> dict --------------------------------------------------------------------------

def container_dict(c: cpb.Container) -> dict:
    opts = convert.unpack_runc_options(c.runtime.options if c.runtime.HasField("options") else None)
    return {
        "id": c.id,
        "labels": dict(c.labels),
        "image": c.image,
        "runtime": c.runtime.name,
        "runtime_binary": (opts.binary_name or None) if opts else None,
        "spec": json.loads(c.spec.value) if c.spec.value else None,
        "snapshotter": c.snapshotter,
        "snapshot_key": c.snapshot_key,
        "created_at": convert.timestamp_to_ns(c.created_at),
        "updated_at": convert.timestamp_to_ns(c.updated_at),
    }


def process_dict(p) -> dict:
    return {
        "id": p.id,
        "container_id": p.container_id,
        "pid": p.pid,
        "status": convert.STATUS_NAMES[p.status] if p.status < len(convert.STATUS_NAMES) else "unknown",
        "exit_status": p.exit_status,
        "exited_at": convert.timestamp_to_ns(p.exited_at),
        "terminal": p.terminal,
        "stdin": p.stdin,
        "stdout": p.stdout,
        "stderr": p.stderr,
    }


def envelope_dict(env: epb.Envelope) -> dict:
    event = convert.unpack_event(env.event)
    return {
        "seq": env.berth_seq,
        "timestamp": convert.timestamp_to_ns(env.timestamp),
        "namespace": env.namespace,
        "topic": env.topic,
        "event": convert.to_dict(event) if event is not None
        else {"type_url": env.event.type_url, "value": env.event.value},
    }


def _metrics_dict(resp: tpb.MetricsResponse, container_id: str) -> dict:
    for metric in resp.metrics:
        if metric.id != container_id:
            continue
        name = metric.data.type_url.rsplit("/", 1)[-1]
        cls = {"io.containerd.cgroups.v1.Metrics": cg1.Metrics,
               "io.containerd.cgroups.v2.Metrics": cg2.Metrics}.get(name)
        if cls is None:
            raise errors.SupervisorError(f"metrics of task {container_id}: unknown type {name}")
        data = cls()
        data.ParseFromString(metric.data.value)
        return metrics_to_stats(data, convert.timestamp_to_ns(metric.timestamp))
    raise errors.NotFound(f"task {container_id} not found")


def _delete_tuple(resp: tpb.DeleteResponse) -> tuple[int, int, int]:
    return resp.pid, resp.exit_status, convert.timestamp_to_ns(resp.exited_at)


def _mounts(rootfs: Iterable[dict]) -> list[mount_pb2.Mount]:
    return [mount_pb2.Mount(type=m.get("type", ""), source=m.get("source", ""),
                            target=m.get("target", ""), options=list(m.get("options", ())))
            for m in rootfs]


def _none(_resp) -> None:
    return None


class _Calls:
    """Each method builds its request and names the response conversion; `_call` (blocking in
    Client, a coroutine in AsyncClient) does the rest, so both classes share every method."""

    def __init__(self, address: str, namespace: str = "default"):
        self.address = address
        self.namespace = namespace
        self._metadata = ((NAMESPACE_KEY, namespace),)

    def _call(self, service: str, method: str, request, convert_response):
        raise NotImplementedError

    # version, namespaces
    def version(self):
        return self._call("version", "Version", empty_pb2.Empty(),
                          lambda r: {"version": r.version, "revision": r.revision})

    def server_uuid(self):
        return self._call("introspection", "Server", empty_pb2.Empty(), lambda r: r.uuid)

    def list_namespaces(self):
        return self._call("namespaces", "List", npb.ListNamespacesRequest(),
                          lambda r: [{"name": n.name, "labels": dict(n.labels)} for n in r.namespaces])

    def create_namespace(self, name: str, labels: dict | None = None):
        ns = npb.Namespace(name=name, labels=labels or {})
        return self._call("namespaces", "Create", npb.CreateNamespaceRequest(namespace=ns), _none)

    def delete_namespace(self, name: str):
        return self._call("namespaces", "Delete", npb.DeleteNamespaceRequest(name=name), _none)

    # containers
    def create_container(self, id: str, spec: dict, *, image: str = "",
                         runtime: str = "io.containerd.runc.v2", runtime_binary: str | None = None,
                         labels: dict | None = None):
        c = cpb.Container(id=id, image=image, labels=labels or {},
                          spec=convert.pack_json(convert.SPEC_URL, spec))
        c.runtime.name = runtime
        if runtime_binary:
            c.runtime.options.CopyFrom(convert.runc_options(runtime_binary))
        return self._call("containers", "Create", cpb.CreateContainerRequest(container=c),
                          lambda r: container_dict(r.container))

    def get_container(self, id: str):
        return self._call("containers", "Get", cpb.GetContainerRequest(id=id),
                          lambda r: container_dict(r.container))

    def list_containers(self, *filters: str):
        return self._call("containers", "List", cpb.ListContainersRequest(filters=list(filters)),
                          lambda r: [container_dict(c) for c in r.containers])

    def update_container(self, id: str, *, labels: dict | None = None, image: str | None = None,
                         spec: dict | None = None):
        """Replace the given fields (labels as a whole); the others stay as they are."""
        c = cpb.Container(id=id)
        paths = []
        if labels is not None:
            c.labels.update(labels)
            paths.append("labels")
        if image is not None:
            c.image = image
            paths.append("image")
        if spec is not None:
            c.spec.CopyFrom(convert.pack_json(convert.SPEC_URL, spec))
            paths.append("spec")
        req = cpb.UpdateContainerRequest(container=c, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return self._call("containers", "Update", req, lambda r: container_dict(r.container))

    def delete_container(self, id: str):
        return self._call("containers", "Delete", cpb.DeleteContainerRequest(id=id), _none)

    # tasks
    def create_task(self, container_id: str, *, rootfs: Iterable[dict] = (), stdin: str = "",
                    stdout: str = "", stderr: str = "", terminal: bool = False):
        req = tpb.CreateTaskRequest(container_id=container_id, rootfs=_mounts(rootfs), stdin=stdin,
                                    stdout=stdout, stderr=stderr, terminal=terminal)
        return self._call("tasks", "Create", req, lambda r: r.pid)

    def start(self, container_id: str, exec_id: str = ""):
        return self._call("tasks", "Start", tpb.StartRequest(container_id=container_id, exec_id=exec_id),
                          lambda r: r.pid)

    def wait(self, container_id: str, exec_id: str = ""):
        return self._call("tasks", "Wait", tpb.WaitRequest(container_id=container_id, exec_id=exec_id),
                          lambda r: (r.exit_status, convert.timestamp_to_ns(r.exited_at)))

    def kill(self, container_id: str, signal: int, *, exec_id: str = "", all: bool = False):
        req = tpb.KillRequest(container_id=container_id, exec_id=exec_id, signal=int(signal), all=all)
        return self._call("tasks", "Kill", req, _none)

    def delete_task(self, container_id: str):
        return self._call("tasks", "Delete", tpb.DeleteTaskRequest(container_id=container_id),
                          _delete_tuple)

    def get_task(self, container_id: str, exec_id: str = ""):
        return self._call("tasks", "Get", tpb.GetRequest(container_id=container_id, exec_id=exec_id),
                          lambda r: process_dict(r.process))

    def list_tasks(self):
        return self._call("tasks", "List", tpb.ListTasksRequest(),
                          lambda r: [process_dict(p) for p in r.tasks])

    def exec(self, container_id: str, exec_id: str, process: dict, *, terminal: bool = False,
             stdin: str = "", stdout: str = "", stderr: str = ""):
        req = tpb.ExecProcessRequest(container_id=container_id, exec_id=exec_id, terminal=terminal,
                                     stdin=stdin, stdout=stdout, stderr=stderr,
                                     spec=convert.pack_json(convert.PROCESS_URL, process))
        return self._call("tasks", "Exec", req, _none)

    def delete_process(self, container_id: str, exec_id: str):
        req = tpb.DeleteProcessRequest(container_id=container_id, exec_id=exec_id)
        return self._call("tasks", "DeleteProcess", req, _delete_tuple)

    def resize_pty(self, container_id: str, width: int, height: int, exec_id: str = ""):
        req = tpb.ResizePtyRequest(container_id=container_id, exec_id=exec_id, width=width, height=height)
        return self._call("tasks", "ResizePty", req, _none)

    def close_io(self, container_id: str, exec_id: str = ""):
        req = tpb.CloseIORequest(container_id=container_id, exec_id=exec_id, stdin=True)
        return self._call("tasks", "CloseIO", req, _none)

    def pids(self, container_id: str):
        return self._call("tasks", "ListPids", tpb.ListPidsRequest(container_id=container_id),
                          lambda r: [p.pid for p in r.processes])

    def pause(self, container_id: str):
        return self._call("tasks", "Pause", tpb.PauseTaskRequest(container_id=container_id), _none)

    def resume(self, container_id: str):
        return self._call("tasks", "Resume", tpb.ResumeTaskRequest(container_id=container_id), _none)

    def update(self, container_id: str, resources: dict):
        req = tpb.UpdateTaskRequest(container_id=container_id,
                                    resources=convert.pack_json(convert.RESOURCES_URL, resources))
        return self._call("tasks", "Update", req, _none)

    def metrics(self, container_id: str):
        req = tpb.MetricsRequest(filters=[f"id=={container_id}"])
        return self._call("tasks", "Metrics", req, lambda r: _metrics_dict(r, container_id))

    def publish(self, topic: str, event):
        """Publish a containerd.events message (or an Any) under topic in this namespace."""
        any_event = event if event.DESCRIPTOR.full_name == "google.protobuf.Any" else convert.pack(event)
        return self._call("events", "Publish", epb.PublishRequest(topic=topic, event=any_event), _none)

    def _subscribe_metadata(self, after: int | None):
        md = self._metadata
        if after is not None:
            md += ((EVENTS_AFTER_KEY, str(int(after))),)
        return md

    @staticmethod
    def _attach_open(container_id, exec_id, stdin, stdout, stderr):
        return streams_pb2.AttachRequest(open=streams_pb2.AttachOpen(
            container_id=container_id, exec_id=exec_id, stdin=stdin, stdout=stdout, stderr=stderr))


def _has_key(metadata, key: str) -> bool:
    return any(k == key for k, _ in (metadata or ()))


# --- blocking client ------------------------------------------------------------------------

# A private subchannel pool and short reconnect backoff: after a supervisor restart, grpc's
# process-wide pool would otherwise keep the old backoff (about a second) even for new channels.
_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class Client(_Calls):
    """Blocking client. Thread-safe; close() (or use as a context manager) when done."""

    def __init__(self, address: str, namespace: str = "default"):
        super().__init__(address, namespace)
        self._channel = grpc.insecure_channel(grpc_target(address), options=_CHANNEL_OPTIONS)
        self._stubs = {name: cls(self._channel) for name, cls in _STUBS.items()}

    def with_namespace(self, namespace: str) -> "Client":
        """A client for another namespace sharing this one's connection."""
        other = object.__new__(Client)
        _Calls.__init__(other, self.address, namespace)
        other._channel, other._stubs = self._channel, self._stubs
        return other

    def _call(self, service, method, request, convert_response):
        try:
            resp = getattr(self._stubs[service], method)(request, metadata=self._metadata)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        return convert_response(resp)

    def subscribe(self, *filters: str, after: int | None = None) -> "Subscription":
        return Subscription(self._stubs["events"], filters, self._subscribe_metadata(after))

    def attach(self, container_id: str, exec_id: str = "", *, stdin: bool = False,
               stdout: bool = True, stderr: bool = True) -> "Attachment":
        return Attachment(self._stubs["streams"], self._metadata,
                          self._attach_open(container_id, exec_id, stdin, stdout, stderr))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _raise_from_call(call) -> None:
    """The stream ended before the server confirmed it: raise its status as an error."""
    code = call.code()
    if code == grpc.StatusCode.OK:
        raise errors.SupervisorError("the server ended the stream before it was set up")
    raise errors.from_status(code, call.details())


class Subscription:
    """Events, as dicts, in sequence order; iterate, and close() to end the subscription."""

    def __init__(self, stub, filters, metadata):
        self._call = stub.Subscribe(epb.SubscribeRequest(filters=list(filters)), metadata=metadata)
        md = self._call.initial_metadata()
        if not _has_key(md, EVENTS_READY_KEY):
            _raise_from_call(self._call)
        #: the last sequence number stored when the subscription started
        self.start_seq = int(dict(md)[EVENTS_READY_KEY])

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        try:
            return envelope_dict(next(self._call))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise errors.from_rpc_error(e) from None

    def close(self) -> None:
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_END = object()


class Attachment:
    """A live attach to a process's stdio: iterate for (stream, data); write() to its stdin."""

    def __init__(self, stub, metadata, open_request):
        self._requests: queue.Queue = queue.Queue()
        self._requests.put(open_request)
        self._closed = threading.Event()
        self._call = stub.Attach(iter(self._requests.get, _END), metadata=metadata)
        if not _has_key(self._call.initial_metadata(), ATTACH_READY_KEY):
            self.close()
            _raise_from_call(self._call)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        try:
            for frame in self._call:
                yield int(frame.stream), frame.data
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._closed.is_set():
                return
            raise errors.from_rpc_error(e) from None

    def write(self, data: bytes) -> None:
        self._requests.put(streams_pb2.AttachRequest(stdin=data))

    def close_stdin(self) -> None:
        self._requests.put(streams_pb2.AttachRequest(close_stdin=True))

    def close(self) -> None:
        self._closed.set()
        self._requests.put(_END)
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- asyncio client -------------------------------------------------------------------------

class AsyncClient(_Calls):
    """grpc.aio client with Client's methods as coroutines. The channel opens on first use, in
    the running event loop; `await close()` when done."""

    def __init__(self, address: str, namespace: str = "default"):
        super().__init__(address, namespace)
        self._shared: dict = {}

    def with_namespace(self, namespace: str) -> "AsyncClient":
        """A client for another namespace sharing this one's connection."""
        other = AsyncClient(self.address, namespace)
        other._shared = self._shared
        return other

    def _stub(self, service: str):
        if "channel" not in self._shared:
            channel = grpc.aio.insecure_channel(grpc_target(self.address), options=_CHANNEL_OPTIONS)
            self._shared["channel"] = channel
            self._shared["stubs"] = {name: cls(channel) for name, cls in _STUBS.items()}
        return self._shared["stubs"][service]

    async def _call(self, service, method, request, convert_response):
        try:
            resp = await getattr(self._stub(service), method)(request, metadata=self._metadata)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        return convert_response(resp)

    async def subscribe(self, *filters: str, after: int | None = None) -> "AsyncSubscription":
        call = self._stub("events").Subscribe(epb.SubscribeRequest(filters=list(filters)),
                                              metadata=self._subscribe_metadata(after))
        md = await call.initial_metadata()
        if not _has_key(md, EVENTS_READY_KEY):
            await _raise_from_async_call(call)
        return AsyncSubscription(call, int(dict(md)[EVENTS_READY_KEY]))

    async def attach(self, container_id: str, exec_id: str = "", *, stdin: bool = False,
                     stdout: bool = True, stderr: bool = True) -> "AsyncAttachment":
        call = self._stub("streams").Attach(metadata=self._metadata)
        try:
            await call.write(self._attach_open(container_id, exec_id, stdin, stdout, stderr))
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        md = await call.initial_metadata()
        if not _has_key(md, ATTACH_READY_KEY):
            await _raise_from_async_call(call)
        return AsyncAttachment(call)

    async def close(self) -> None:
        channel = self._shared.pop("channel", None)
        if channel is not None:
            await channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def _raise_from_async_call(call) -> None:
    code = await call.code()
    if code == grpc.StatusCode.OK:
        raise errors.SupervisorError("the server ended the stream before it was set up")
    raise errors.from_status(code, await call.details())


class AsyncSubscription:
    """`async for event in sub`; close() ends it."""

    def __init__(self, call, start_seq: int):
        self._call = call
        self.start_seq = start_seq

    def __aiter__(self):
        return self

    async def __anext__(self) -> dict:
        try:
            env = await self._call.read()
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                raise StopAsyncIteration from None
            raise errors.from_rpc_error(e) from None
        except BaseException:
            self._call.cancel()
            raise
        if env is grpc.aio.EOF:
            raise StopAsyncIteration
        return envelope_dict(env)

    def close(self) -> None:
        self._call.cancel()


class AsyncAttachment:
    """`async for stream, data in att`; `await write(data)`, `await close_stdin()`, close()."""

    def __init__(self, call):
        self._call = call
        self._closed = False

    def __aiter__(self):
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        try:
            frame = await self._call.read()
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._closed:
                raise StopAsyncIteration from None
            raise errors.from_rpc_error(e) from None
        if frame is grpc.aio.EOF:
            raise StopAsyncIteration
        return int(frame.stream), frame.data

    async def write(self, data: bytes) -> None:
        await self._send(streams_pb2.AttachRequest(stdin=data))

    async def close_stdin(self) -> None:
        await self._send(streams_pb2.AttachRequest(close_stdin=True))

    async def _send(self, request) -> None:
        try:
            await self._call.write(request)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        except grpc.aio.UsageError:  # the call already ended: the process's stdio is gone
            raise errors.FailedPrecondition("attach stream already closed") from None

    def close(self) -> None:
        self._closed = True
        self._call.cancel()
