"""The lean shim codec (protos/lean_codegen.py) must speak exactly protobuf's wire format.

Random messages of every type in shim.proto are built twice, as shim_pb2 (protoc's module) and
as shim_lean objects, and their encodings compared byte for byte with protobuf's deterministic
serialization; each side must decode the other's bytes back to the same message.
"""
from __future__ import annotations

import filecmp
import random

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

from protos import lean_codegen
from protos.berth.shim.v1 import shim_lean, shim_pb2

SHIM_PROTO = "protos/berth/shim/v1/shim.proto"
MESSAGES = sorted(shim_pb2.DESCRIPTOR.message_types_by_name)


def test_lean_module_matches_the_proto(tmp_path):
    fresh = lean_codegen.generate(SHIM_PROTO, tmp_path)
    installed = lean_codegen.ROOT / SHIM_PROTO.replace(".proto", "_lean.py")
    assert filecmp.cmp(fresh, installed, shallow=False), \
        "shim_lean.py differs from what shim.proto generates now: reinstall (protos/generate.py)"


def _scalar(rng: random.Random, field):
    t = field.type
    pick = rng.random()
    if t == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if t == FD.TYPE_STRING:
        return rng.choice(["", "x", "busybox-1", "ünïcødé ✓", "a" * rng.randint(0, 300),
                           "\0\n"])
    if t == FD.TYPE_BYTES:
        noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        return rng.choice([b"", b"\x00\xff", noise])
    if t == FD.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values])
    edges = {
        FD.TYPE_UINT32: (0, 1, 127, 128, 2**32 - 1),
        FD.TYPE_UINT64: (0, 1, 300, 2**63, 2**64 - 1),
        FD.TYPE_INT32: (0, -1, 1, -(2**31), 2**31 - 1),
        FD.TYPE_INT64: (0, -1, 1, -(2**63), 2**63 - 1, 1_700_000_000_123_456_789),
    }[t]
    if pick < 0.6:
        return rng.choice(edges)
    lo, hi = min(edges), max(edges)
    return rng.randint(lo, hi)


def _build(rng: random.Random, desc, depth: int = 0):
    """The same random content as (pb2 message, lean message)."""
    pb = getattr(shim_pb2, desc.name)() if desc.containing_type is None else None
    if pb is None:
        pb = getattr(getattr(shim_pb2, desc.containing_type.name), desc.name)()
    lean_cls = getattr(shim_lean, desc.name) if desc.containing_type is None else \
        getattr(getattr(shim_lean, desc.containing_type.name), desc.name)
    kwargs = {}
    chosen_oneofs = {o.name: rng.choice([*o.fields, None]) for o in desc.oneofs}
    for f in desc.fields:
        if f.containing_oneof is not None and chosen_oneofs[f.containing_oneof.name] is not f:
            continue
        if rng.random() < 0.25 and f.containing_oneof is None:
            continue  # left at its default
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vfield = f.message_type.fields_by_name["value"]
            kfield = f.message_type.fields_by_name["key"]
            m = {_scalar(rng, kfield): _scalar(rng, vfield) for _ in range(rng.randint(0, 5))}
            getattr(pb, f.name).update(m)
            kwargs[f.name] = dict(m)
        elif f.is_repeated and f.message_type is not None:
            items = [_build(rng, f.message_type, depth + 1) for _ in range(rng.randint(0, 3))]
            getattr(pb, f.name).extend(p for p, _ in items)
            kwargs[f.name] = [lm for _, lm in items]
        elif f.is_repeated:
            items = [_scalar(rng, f) for _ in range(rng.randint(0, 6))]
            getattr(pb, f.name).extend(items)
            kwargs[f.name] = items
        elif f.message_type is not None:
            p, lm = _build(rng, f.message_type, depth + 1)
            getattr(pb, f.name).CopyFrom(p)
            kwargs[f.name] = lm
        else:
            v = _scalar(rng, f)
            setattr(pb, f.name, v)
            kwargs[f.name] = v
    return pb, lean_cls(**kwargs)


@pytest.mark.parametrize("name", MESSAGES)
def test_lean_encoding_is_byte_identical_to_protobuf(name):
    rng = random.Random(name)
    desc = shim_pb2.DESCRIPTOR.message_types_by_name[name]
    for _ in range(60):
        pb, lean = _build(rng, desc)
        wire = pb.SerializeToString(deterministic=True)
        assert lean.SerializeToString() == wire, f"{name}: {lean!r}"
        back = type(lean).FromString(wire)
        assert back == lean
        assert back.SerializeToString() == wire
        assert type(pb).FromString(lean.SerializeToString()) == pb


def test_lean_decodes_unpacked_repeated_and_skips_unknown_fields():
    # cpu_percpu_ns (5) unpacked, then an unknown varint field 99 and an unknown bytes field 98.
    wire = bytes([0x28, 1, 0x28, 2]) + bytes([0x98, 0x06, 7]) + bytes([0x92, 0x06, 2, 0xAA, 0xBB])
    msg = shim_lean.StatsResponse.FromString(wire)
    assert msg.cpu_percpu_ns == [1, 2]


@pytest.mark.parametrize("wire", [b"\x0a\x05ab", b"\x08", b"\x0a\x02\xff\xfe", b"\x0b"])
def test_lean_rejects_malformed_input(wire):
    with pytest.raises(shim_lean.DecodeError):
        shim_lean.StateRequest.FromString(wire)


def test_oneof_and_enum_helpers_match_protobuf():
    req = shim_lean.Request(seq=3, kill=shim_lean.KillRequest(id="c", signal=9))
    assert req.WhichOneof("body") == "kill"
    assert shim_lean.Request().WhichOneof("body") is None
    assert shim_lean.ErrorCode.Name(shim_lean.NOT_FOUND) == \
        shim_pb2.ErrorCode.Name(shim_pb2.NOT_FOUND)
    assert shim_lean.AttachFrame.STDERR == shim_pb2.AttachFrame.STDERR
