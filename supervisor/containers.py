"""Container records: what to run (spec, runtime, labels), not a running process (that is a task).

Plain logic over the store and the exchange; the gRPC Containers service adapts it, tests call it
directly. Messages are containerd.services.containers.v1.Container.
"""
from __future__ import annotations

import json
import time

from google.protobuf import any_pb2

from protos.containerd.events import container_pb2 as ev
from protos.containerd.services.containers.v1 import containers_pb2 as cpb
from supervisor import convert, filters, identifiers, runtimes
from supervisor.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from supervisor.events import Exchange
from supervisor.store import ContainerRecord, Store


def parse_spec(spec: any_pb2.Any, what: str) -> dict:
    """The OCI spec JSON carried in an Any; InvalidArgument naming what is wrong."""
    if not spec.type_url and not spec.value:
        raise InvalidArgument(f"{what}: spec must be set")
    if spec.type_url.rsplit("/", 1)[-1] != "Spec" or "runtime-spec" not in spec.type_url:
        raise InvalidArgument(f'{what}: spec has type "{spec.type_url}", want {convert.SPEC_URL}')
    try:
        value = json.loads(spec.value)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"{what}: spec is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: spec must be a JSON object")
    process = value.get("process")
    if process is not None and not isinstance(process, dict):
        raise InvalidArgument(f"{what}: spec.process must be an object")
    root = value.get("root")
    if root is not None and not (isinstance(root, dict) and isinstance(root.get("path", ""), str)):
        raise InvalidArgument(f"{what}: spec.root must be an object with a string path")
    return value


def _serialized(msg) -> bytes | None:
    return msg.SerializeToString() if msg is not None else None


class Containers:
    def __init__(self, store: Store, exchange: Exchange, default_runtime: str):
        self.store = store
        self.exchange = exchange
        self.default_runtime = default_runtime

    # --- conversions
    @staticmethod
    def to_message(rec: ContainerRecord) -> cpb.Container:
        c = cpb.Container(id=rec.id, labels=rec.labels, image=rec.image,
                          snapshotter=rec.snapshotter, snapshot_key=rec.snapshot_key,
                          created_at=convert.ns_to_timestamp(rec.created_at),
                          updated_at=convert.ns_to_timestamp(rec.updated_at))
        c.runtime.name = rec.runtime_name
        if rec.runtime_options:
            c.runtime.options.ParseFromString(rec.runtime_options)
        c.spec.ParseFromString(rec.spec)
        if rec.extensions:
            ext = cpb.Container()
            ext.ParseFromString(rec.extensions)
            for k, v in ext.extensions.items():
                c.extensions[k].CopyFrom(v)
        return c

    def runtime_of(self, rec: ContainerRecord) -> runtimes.Runtime:
        opts = None
        if rec.runtime_options:
            raw = any_pb2.Any()
            raw.ParseFromString(rec.runtime_options)
            opts = convert.unpack_runc_options(raw)
        return runtimes.resolve(rec.runtime_name, opts.binary_name if opts else None,
                                self.default_runtime, f'container "{rec.id}"')

    # --- operations
    def get(self, namespace: str, id: str) -> ContainerRecord:
        rec = self.store.get_container(namespace, id)
        if rec is None:
            raise NotFound(f'container "{id}" in namespace "{namespace}": not found')
        return rec

    def list(self, namespace: str, filter_strings=()) -> list[ContainerRecord]:
        flt = filters.parse(filter_strings)
        return [r for r in self.store.list_containers(namespace) if flt.match(self._adaptor(r))]

    @staticmethod
    def _adaptor(rec: ContainerRecord) -> filters.Adaptor:
        return filters.mapping_adaptor({
            "id": rec.id, "image": rec.image, "labels": rec.labels,
            "runtime": {"name": rec.runtime_name}, "snapshotter": rec.snapshotter,
            "snapshot_key": rec.snapshot_key,
        })

    def create(self, namespace: str, c: cpb.Container) -> ContainerRecord:
        identifiers.validate(c.id, "container.id")
        what = f'container "{c.id}"'
        parse_spec(c.spec, what)
        options = c.runtime.options if c.runtime.HasField("options") else None
        opts = convert.unpack_runc_options(options)
        runtimes.resolve(c.runtime.name, opts.binary_name if opts else None,
                         self.default_runtime, what)
        if self.store.get_container(namespace, c.id) is not None:
            raise AlreadyExists(f'container "{c.id}": already exists')
        now = time.time_ns()
        ext = cpb.Container()
        for k, v in c.extensions.items():
            ext.extensions[k].CopyFrom(v)
        rec = ContainerRecord(
            namespace=namespace, id=c.id, labels=dict(c.labels), image=c.image,
            runtime_name=c.runtime.name, runtime_options=_serialized(options),
            spec=c.spec.SerializeToString(), snapshotter=c.snapshotter,
            snapshot_key=c.snapshot_key, extensions=ext.SerializeToString() if c.extensions else None,
            created_at=now, updated_at=now)
        event = ev.ContainerCreate(id=c.id, image=c.image)
        event.runtime.name = c.runtime.name
        if options is not None:
            event.runtime.options.CopyFrom(options)

        def apply():
            self.store.ensure_namespace(namespace)
            self.store.insert_container(rec)
        self.exchange.publish(namespace, "/containers/create", event, apply=apply)
        return rec

    def update(self, namespace: str, c: cpb.Container, paths: list[str]) -> ContainerRecord:
        if not c.id:
            raise InvalidArgument("container.id: identifier must not be empty")
        rec = self.get(namespace, c.id)
        what = f'container "{c.id}"'
        if not paths:
            # No mask: every mutable field the request carries; the immutable ones must match.
            if c.runtime.name and c.runtime.name != rec.runtime_name:
                raise InvalidArgument(f"{what}: runtime field is immutable")
            if c.snapshotter and c.snapshotter != rec.snapshotter:
                raise InvalidArgument(f"{what}: snapshotter field is immutable")
            paths = ["labels", "image", "snapshot_key", "extensions"]
            if c.spec.value:
                paths.append("spec")
        for path in paths:
            head, _, key = path.partition(".")
            if head == "labels":
                if key:
                    if key in c.labels and c.labels[key]:
                        rec.labels[key] = c.labels[key]
                    else:
                        rec.labels.pop(key, None)
                else:
                    rec.labels = dict(c.labels)
            elif head == "image":
                rec.image = c.image
            elif head == "spec":
                parse_spec(c.spec, what)
                rec.spec = c.spec.SerializeToString()
            elif head in ("snapshot_key", "snapshotkey"):
                rec.snapshot_key = c.snapshot_key
            elif head == "extensions":
                ext = cpb.Container()
                if rec.extensions:
                    ext.ParseFromString(rec.extensions)
                if key:
                    if key in c.extensions:
                        ext.extensions[key].CopyFrom(c.extensions[key])
                    else:
                        ext.extensions.pop(key, None)
                else:
                    ext.ClearField("extensions")
                    for k, v in c.extensions.items():
                        ext.extensions[k].CopyFrom(v)
                rec.extensions = ext.SerializeToString() if ext.extensions else None
            elif head in ("runtime", "snapshotter", "id", "created_at", "updated_at"):
                raise InvalidArgument(f'{what}: field "{path}" is immutable')
            else:
                raise InvalidArgument(f'{what}: cannot update field "{path}"')
        rec.updated_at = time.time_ns()
        event = ev.ContainerUpdate(id=rec.id, image=rec.image, labels=rec.labels,
                                   snapshot_key=rec.snapshot_key)
        self.exchange.publish(namespace, "/containers/update", event,
                              apply=lambda: self.store.update_container(rec))
        return rec

    def delete(self, namespace: str, id: str) -> None:
        self.get(namespace, id)
        if self.store.get_process(namespace, id, "") is not None:
            raise FailedPrecondition(f'container "{id}" in namespace "{namespace}": '
                                     "has a task; delete the task first")
        self.exchange.publish(namespace, "/containers/delete", ev.ContainerDelete(id=id),
                              apply=lambda: self.store.delete_container(namespace, id))
