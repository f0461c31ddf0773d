"""The runtime behind the lean protobuf modules that protos/lean_codegen.py generates.

Why this exists: one berth-shim runs per container, and importing protobuf's runtime (upb) costs
~6 MB of resident memory per process, more than the rest of the shim together. The shim protocol
needs only proto3 scalars, strings, bytes, enums, nested and repeated messages, packed repeated
scalars, one map and oneofs of messages, so a table-driven codec of ~200 lines covers it. Its
encodings are byte-identical to protobuf's deterministic serialization (fields in number order,
map entries sorted by key as upb sorts them, with both key and value written), which
tests/shim/test_codec.py checks against the protoc-generated shim_pb2 module.

Messages are plain objects with one slot per field. Singular message fields default to None
(protobuf returns an empty default instance instead); `HasField` and `WhichOneof` work as in
protobuf. Setting one member of a oneof does not clear the others: set only one.
"""
from __future__ import annotations

# Field kinds. Varint kinds differ only in how a decoded value is narrowed.
INT32, INT64, UINT32, UINT64, BOOL, ENUM, STRING, BYTES, MESSAGE = range(9)
# Field labels.
SINGULAR, REPEATED, MAP, ONEOF = range(4)

_VARINT_KINDS = frozenset((INT32, INT64, UINT32, UINT64, BOOL, ENUM))
_MASK64 = (1 << 64) - 1


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message."""


def encode_varint(value: int, out: bytearray) -> None:
    # Negative int32/int64/enum values are sign-extended to 64 bits: always 10 bytes.
    value &= _MASK64
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _narrow(kind: int, v: int) -> int | bool:
    if kind == UINT64:
        return v
    if kind == INT64:
        return v - (1 << 64) if v >> 63 else v
    if kind == UINT32:
        return v & 0xFFFFFFFF
    if kind == BOOL:
        return v != 0
    v &= 0xFFFFFFFF  # INT32 and ENUM
    return v - (1 << 32) if v >> 31 else v


def _encode_scalar(kind: int, tag: int, value, out: bytearray) -> None:
    """One key and value, written even when it is the default (map entries need that)."""
    encode_varint(tag, out)
    if kind in _VARINT_KINDS:
        encode_varint(int(value), out)
    else:
        raw = value.encode() if kind == STRING else bytes(value)
        encode_varint(len(raw), out)
        out += raw


def _decode_scalar(kind: int, wire: int, data: bytes, pos: int):
    if kind in _VARINT_KINDS:
        if wire != 0:
            raise DecodeError(f"wire type {wire} for a varint field")
        v, pos = decode_varint(data, pos)
        return _narrow(kind, v), pos
    if wire != 2:
        raise DecodeError(f"wire type {wire} for a length-delimited field")
    n, pos = decode_varint(data, pos)
    if pos + n > len(data):
        raise DecodeError("truncated length-delimited field")
    raw = data[pos:pos + n]
    if kind == STRING:
        try:
            return raw.decode(), pos + n
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid utf-8 in a string field: {e}") from None
    return bytes(raw), pos + n


def _skip(wire: int, data: bytes, pos: int) -> int:
    if wire == 0:
        return decode_varint(data, pos)[1]
    if wire == 1:
        pos += 8
    elif wire == 2:
        n, pos = decode_varint(data, pos)
        pos += n
    elif wire == 5:
        pos += 4
    else:
        raise DecodeError(f"unsupported wire type {wire}")
    if pos > len(data):
        raise DecodeError("truncated field")
    return pos


_DEFAULTS = {INT32: 0, INT64: 0, UINT32: 0, UINT64: 0, BOOL: False, ENUM: 0, STRING: "",
             BYTES: b""}


class Message:
    """Base of every generated message class.

    Subclasses set `_FIELDS`: (number, name, kind, label, type) tuples in number order, where
    type is the message class for MESSAGE fields and, for MAP fields, a (key kind, value kind,
    value class or None) tuple; and `_ONEOFS`: oneof name -> member names.
    """
    __slots__ = ()
    _FIELDS: tuple = ()
    _ONEOFS: dict[str, tuple[str, ...]] = {}
    _BY_NUMBER: dict = {}

    def __init__(self, **kwargs) -> None:
        for _, name, kind, label, _t in self._FIELDS:
            if label == REPEATED:
                value = []
            elif label == MAP:
                value = {}
            elif kind == MESSAGE or label == ONEOF:
                value = None
            else:
                value = _DEFAULTS[kind]
            setattr(self, name, value)
        for name, value in kwargs.items():
            if name not in self.__slots__:
                raise ValueError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, list(value) if isinstance(value, tuple) else value)

    # -- encoding ---------------------------------------------------------------------------
    def SerializeToString(self, deterministic: bool = True) -> bytes:  # noqa: N802 (protobuf's)
        out = bytearray()
        self._encode(out)
        return bytes(out)

    def _encode(self, out: bytearray) -> None:
        for number, name, kind, label, typ in self._FIELDS:
            value = getattr(self, name)
            if label == SINGULAR:
                if kind == MESSAGE:
                    if value is not None:
                        _encode_message(number, value, out)
                elif value:
                    _encode_scalar(kind, number << 3 | (0 if kind in _VARINT_KINDS else 2),
                                   value, out)
            elif label == ONEOF:
                if value is not None:
                    if kind == MESSAGE:
                        _encode_message(number, value, out)
                    else:
                        _encode_scalar(kind, number << 3 | (0 if kind in _VARINT_KINDS else 2),
                                       value, out)
            elif label == REPEATED:
                if not value:
                    continue
                if kind == MESSAGE:
                    for item in value:
                        _encode_message(number, item, out)
                elif kind in _VARINT_KINDS:  # proto3 packs repeated scalars
                    packed = bytearray()
                    for item in value:
                        encode_varint(int(item), packed)
                    encode_varint(number << 3 | 2, out)
                    encode_varint(len(packed), out)
                    out += packed
                else:
                    for item in value:
                        _encode_scalar(kind, number << 3 | 2, item, out)
            else:  # MAP: entries sorted by key, key and value always written
                key_kind, value_kind, value_cls = typ
                for key in sorted(value, key=_upb_string_order if key_kind == STRING else None):
                    entry = bytearray()
                    _encode_scalar(key_kind, 1 << 3 | (0 if key_kind in _VARINT_KINDS else 2),
                                   key, entry)
                    item = value[key]
                    if value_kind == MESSAGE:
                        _encode_message(2, item if item is not None else value_cls(), entry)
                    else:
                        _encode_scalar(value_kind,
                                       2 << 3 | (0 if value_kind in _VARINT_KINDS else 2),
                                       item, entry)
                    encode_varint(number << 3 | 2, out)
                    encode_varint(len(entry), out)
                    out += entry

    # -- decoding ---------------------------------------------------------------------------
    @classmethod
    def FromString(cls, data: bytes):  # noqa: N802 (protobuf's name)
        msg = cls()
        data = bytes(data)
        msg._decode(data, 0, len(data))
        return msg

    def ParseFromString(self, data: bytes) -> int:  # noqa: N802 (protobuf's name)
        self.__init__()
        self._decode(bytes(data), 0, len(data))
        return len(data)

    def _decode(self, data: bytes, pos: int, end: int) -> None:
        fields = self._BY_NUMBER
        # Work on a copy of just this message, so that every length check is against its end.
        sub = data if pos == 0 and end == len(data) else data[pos:end]
        pos, end = 0, len(sub)
        while pos < end:
            key, pos = decode_varint(sub, pos)
            number, wire = key >> 3, key & 7
            spec = fields.get(number)
            if spec is None:
                pos = _skip(wire, sub, pos)
                continue
            _, name, kind, label, typ = spec
            if kind == MESSAGE and label != MAP:
                if wire != 2:
                    raise DecodeError(f"wire type {wire} for message field {name}")
                n, pos = decode_varint(sub, pos)
                if pos + n > end:
                    raise DecodeError(f"truncated message field {name}")
                item = typ()
                item._decode(sub, pos, pos + n)
                pos += n
                if label == REPEATED:
                    getattr(self, name).append(item)
                else:
                    current = getattr(self, name)
                    if current is not None:  # protobuf merges repeated occurrences
                        current._merge(item)
                    else:
                        setattr(self, name, item)
                        if label == ONEOF:
                            self._clear_oneof_except(name)
            elif label == MAP:
                if wire != 2:
                    raise DecodeError(f"wire type {wire} for map field {name}")
                n, pos = decode_varint(sub, pos)
                if pos + n > end:
                    raise DecodeError(f"truncated map entry in {name}")
                k, v = _decode_map_entry(typ, sub, pos, pos + n)
                getattr(self, name)[k] = v
                pos += n
            elif label == REPEATED and kind in _VARINT_KINDS and wire == 2:
                n, pos = decode_varint(sub, pos)
                stop = pos + n
                if stop > end:
                    raise DecodeError(f"truncated packed field {name}")
                items = getattr(self, name)
                while pos < stop:
                    v, pos = decode_varint(sub, pos)
                    items.append(_narrow(kind, v))
            else:
                value, pos = _decode_scalar(kind, wire, sub, pos)
                if label == REPEATED:
                    getattr(self, name).append(value)
                else:
                    setattr(self, name, value)
                    if label == ONEOF:
                        self._clear_oneof_except(name)
        if pos != end:
            raise DecodeError("field runs past the end of the message")

    def _merge(self, other: "Message") -> None:
        for _, name, kind, label, _t in self._FIELDS:
            value = getattr(other, name)
            if label == REPEATED:
                getattr(self, name).extend(value)
            elif label == MAP:
                getattr(self, name).update(value)
            elif kind == MESSAGE:
                if value is not None:
                    mine = getattr(self, name)
                    if mine is None:
                        setattr(self, name, value)
                    else:
                        mine._merge(value)
            elif label == ONEOF:
                if value is not None:
                    setattr(self, name, value)
            elif value != _DEFAULTS[kind]:
                setattr(self, name, value)

    def _clear_oneof_except(self, name: str) -> None:
        for members in self._ONEOFS.values():
            if name in members:
                for other in members:
                    if other != name:
                        setattr(self, other, None)

    # -- protobuf-like helpers --------------------------------------------------------------
    def WhichOneof(self, oneof: str) -> str | None:  # noqa: N802 (protobuf's name)
        try:
            members = self._ONEOFS[oneof]
        except KeyError:
            raise ValueError(f"{type(self).__name__} has no oneof {oneof!r}") from None
        for name in members:
            if getattr(self, name) is not None:
                return name
        return None

    def HasField(self, name: str) -> bool:  # noqa: N802 (protobuf's name)
        if name in self._ONEOFS:
            return self.WhichOneof(name) is not None
        value = getattr(self, name)
        return value is not None and value is not False and value != 0 and value != "" \
            and value != b""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        parts = []
        for _, name, kind, label, _t in self._FIELDS:
            value = getattr(self, name)
            if value is None or (label in (REPEATED, MAP) and not value) or \
                    (label == SINGULAR and kind != MESSAGE and value == _DEFAULTS[kind]):
                continue
            parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _upb_string_order(key: str) -> tuple[int, ...]:
    # upb's deterministic order for string keys: bytewise, but a key sorts after every longer key
    # it is a prefix of ("ab" before "a"); the end marker 256 is above every byte.
    return (*key.encode(), 256)


def _encode_message(number: int, msg: Message, out: bytearray) -> None:
    body = bytearray()
    msg._encode(body)
    encode_varint(number << 3 | 2, out)
    encode_varint(len(body), out)
    out += body


def _decode_map_entry(typ: tuple, data: bytes, pos: int, end: int):
    key_kind, value_kind, value_cls = typ
    key = _DEFAULTS[key_kind]
    value = value_cls() if value_kind == MESSAGE else _DEFAULTS[value_kind]
    while pos < end:
        tag, pos = decode_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 1:
            key, pos = _decode_scalar(key_kind, wire, data, pos)
        elif number == 2 and value_kind == MESSAGE:
            n, pos = decode_varint(data, pos)
            value = value_cls()
            value._decode(data, pos, pos + n)
            pos += n
        elif number == 2:
            value, pos = _decode_scalar(value_kind, wire, data, pos)
        else:
            pos = _skip(wire, data, pos)
    if pos != end:
        raise DecodeError("map entry runs past its end")
    return key, value


def finish(classes: list[type[Message]]) -> None:
    """Index each class's fields by number once every class a field refers to exists."""
    for cls in classes:
        cls._BY_NUMBER = {f[0]: f for f in cls._FIELDS}


class EnumType:
    """What protobuf's EnumTypeWrapper offers that callers use: Name() and Value()."""
    __slots__ = ("_by_name", "_by_number", "name")

    def __init__(self, name: str, values: dict[str, int]) -> None:
        self.name = name
        self._by_name = dict(values)
        self._by_number = {v: k for k, v in reversed(list(values.items()))}

    def Name(self, number: int) -> str:  # noqa: N802 (protobuf's name)
        try:
            return self._by_number[number]
        except KeyError:
            raise ValueError(f"enum {self.name} has no value {number}") from None

    def Value(self, name: str) -> int:  # noqa: N802 (protobuf's name)
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"enum {self.name} has no value named {name!r}") from None

    def keys(self) -> list[str]:
        return list(self._by_name)

    def values(self) -> list[int]:
        return list(self._by_name.values())
