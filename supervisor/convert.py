"""Conversions between containerd's wire messages and the plain values berth passes around.

Shared by the server and the client library: type URLs of the JSON payloads containerd carries in
Any fields, Timestamp <-> unix nanoseconds, and protobuf messages <-> dicts.
"""
from __future__ import annotations

import json
from typing import Any as AnyValue

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from protos.containerd.events import container_pb2, namespace_pb2, task_pb2 as event_task_pb2
from protos.containerd.runc.options import oci_pb2

# containerd packs the OCI runtime spec and its parts as JSON under these type URLs.
SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
RESOURCES_URL = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
# Messages travel under their bare full name, as containerd's typeurl writes them.
RUNC_OPTIONS_URL = "containerd.runc.v1.Options"
PROCESS_DETAILS_URL = "containerd.runc.v1.ProcessDetails"

STATUS_NAMES = ("unknown", "created", "running", "stopped", "paused", "pausing")

EVENT_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for module in (event_task_pb2, container_pb2, namespace_pb2)
    for cls in (getattr(module, name) for name in module.DESCRIPTOR.message_types_by_name)
}


def ns_to_timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def timestamp_to_ns(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def pack(message: Message) -> any_pb2.Any:
    """An Any under the message's bare full name (containerd's typeurl convention)."""
    return any_pb2.Any(type_url=message.DESCRIPTOR.full_name, value=message.SerializeToString())


def pack_json(type_url: str, value: AnyValue) -> any_pb2.Any:
    return any_pb2.Any(type_url=type_url, value=json.dumps(value).encode())


def runc_options(binary_name: str) -> any_pb2.Any:
    return pack(oci_pb2.Options(binary_name=binary_name))


def unpack_runc_options(options: any_pb2.Any | None) -> oci_pb2.Options | None:
    """containerd.runc.v1.Options from a runtime options Any, None when it holds something else."""
    if options is None or not options.type_url:
        return None
    if options.type_url.rsplit("/", 1)[-1] != RUNC_OPTIONS_URL:
        return None
    opts = oci_pb2.Options()
    opts.ParseFromString(options.value)
    return opts


def unpack_event(event: any_pb2.Any) -> Message | None:
    cls = EVENT_TYPES.get(event.type_url.rsplit("/", 1)[-1])
    if cls is None:
        return None
    msg = cls()
    msg.ParseFromString(event.value)
    return msg


def to_dict(message: Message) -> dict:
    """Every field of message (defaults included), Timestamps as unix nanoseconds, Anys decoded
    when they are an event payload, else {"type_url", "value"}."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value(vfield, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, v) for v in value]
        elif field.message_type is not None and not message.HasField(field.name) \
                and field.message_type.full_name != "google.protobuf.Timestamp":
            out[field.name] = None
        else:
            out[field.name] = _value(field, value)
    return out


def _value(field, value):
    if field.message_type is None:
        if field.enum_type is not None:
            return field.enum_type.values_by_number[value].name.lower()
        return value
    name = field.message_type.full_name
    if name == "google.protobuf.Timestamp":
        return timestamp_to_ns(value)
    if name == "google.protobuf.Any":
        inner = unpack_event(value)
        return to_dict(inner) if inner is not None else {"type_url": value.type_url, "value": value.value}
    return to_dict(value)
