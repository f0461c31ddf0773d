"""Generate a lean pure-Python codec module from a .proto, for processes that cannot afford upb.

`python protos/lean_codegen.py protos/berth/shim/v1/shim.proto` writes
`protos/berth/shim/v1/shim_lean.py` (next to the .proto, as protoc does with _pb2 modules). The
.proto is compiled by protoc (grpcio-tools) into a FileDescriptorSet, and the descriptors are
turned into message classes over protos/lean_runtime.py. Only what proto3 files like shim.proto
use is supported; anything else is refused at generation time, never mis-encoded at run time.
Generated modules are build output: made at install time, never committed.
"""
from __future__ import annotations

import keyword
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# FieldDescriptorProto.Type numbers -> lean_runtime kind names.
_KINDS = {5: "INT32", 3: "INT64", 13: "UINT32", 4: "UINT64", 8: "BOOL", 14: "ENUM",
          9: "STRING", 12: "BYTES", 11: "MESSAGE"}
_LABEL_REPEATED = 3


def _descriptor_set(proto: str):
    """Compile proto (relative to the repository root) into a FileDescriptorProto."""
    import grpc_tools
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            rc = protoc.main(["protoc", f"-I{ROOT}", f"-I{wkt}", f"--descriptor_set_out={out}",
                              proto])
        finally:
            os.chdir(cwd)
        if rc != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        fds = descriptor_pb2.FileDescriptorSet.FromString(Path(out).read_bytes())
    return fds.file[0]


class _Generator:
    def __init__(self, fdp) -> None:
        self.fdp = fdp
        if fdp.syntax != "proto3":
            raise ValueError(f"{fdp.name}: only proto3 is supported, not {fdp.syntax or 'proto2'}")
        if fdp.dependency:
            raise ValueError(f"{fdp.name}: imports are not supported ({', '.join(fdp.dependency)})")
        self.prefix = f".{fdp.package}." if fdp.package else "."
        self.classes: list[tuple[str, object]] = []     # (python name, DescriptorProto)
        self.nested: list[tuple[str, str, str]] = []     # (outer, inner name, python name)
        self.map_entries: dict[str, object] = {}        # full proto name -> entry DescriptorProto
        self.py_names: dict[str, str] = {}               # full proto name -> python name

    def _collect(self, msg, proto_scope: str, outer: str | None) -> None:
        full = f"{proto_scope}{msg.name}"
        if msg.options.map_entry:
            self.map_entries[full] = msg
            return
        py = f"{outer}_{msg.name}" if outer else msg.name
        self.py_names[full] = py
        self.classes.append((py, msg))
        if outer:
            self.nested.append((outer, msg.name, py))
        for nested in msg.nested_type:
            self._collect(nested, f"{full}.", py)
        if msg.extension or msg.extension_range:
            raise ValueError(f"{full}: extensions are not supported")

    def _field(self, owner: str, f) -> str:
        kind = _KINDS.get(f.type)
        if kind is None:
            raise ValueError(f"{owner}.{f.name}: field type {f.type} is not supported")
        if keyword.iskeyword(f.name):
            raise ValueError(f"{owner}.{f.name}: a python keyword cannot be a field name")
        if f.proto3_optional:
            raise ValueError(f"{owner}.{f.name}: proto3 optional is not supported")
        typ = "None"
        label = "SINGULAR"
        if f.type == 11 and f.type_name in self.map_entries:
            entry = self.map_entries[f.type_name]
            key, value = sorted(entry.field, key=lambda x: x.number)
            vkind = _KINDS.get(value.type)
            kkind = _KINDS.get(key.type)
            if kkind in (None, "MESSAGE", "ENUM", "BYTES") or vkind is None:
                raise ValueError(f"{owner}.{f.name}: map types are not supported")
            vcls = self.py_names[value.type_name] if vkind == "MESSAGE" else "None"
            typ = f"(_{kkind}, _{vkind}, {vcls})"
            return f"({f.number}, {f.name!r}, _MESSAGE, _MAP, {typ})"
        if f.type == 11:
            typ = self.py_names[f.type_name]
        if f.label == _LABEL_REPEATED:
            label = "REPEATED"
        elif f.HasField("oneof_index"):
            label = "ONEOF"
        return f"({f.number}, {f.name!r}, _{kind}, _{label}, {typ})"

    def _enum(self, enum, py_name: str, lines: list[str], constants_on: str | None) -> None:
        values = ", ".join(f"{v.name!r}: {v.number}" for v in enum.value)
        lines.append(f"{py_name} = _EnumType({enum.name!r}, {{{values}}})")
        for v in enum.value:
            target = f"{constants_on}.{v.name}" if constants_on else v.name
            lines.append(f"{target} = {v.number}")

    def render(self) -> str:
        fdp = self.fdp
        for msg in fdp.message_type:
            self._collect(msg, self.prefix, None)
        kinds = ", ".join(f"{k} as _{k}" for k in sorted(set(_KINDS.values())))
        lines = [
            f"# Generated by protos/lean_codegen.py from {fdp.name}. DO NOT EDIT.",
            '"""Lean codec for the messages of ' + fdp.name + ' (see protos/lean_runtime.py)."""',
            "from protos.lean_runtime import (",
            f"    {kinds},",
            "    MAP as _MAP, ONEOF as _ONEOF, REPEATED as _REPEATED, SINGULAR as _SINGULAR,",
            "    DecodeError, EnumType as _EnumType, Message as _Message, finish as _finish,",
            ")",
            "",
        ]
        for enum in fdp.enum_type:
            self._enum(enum, enum.name, lines, None)
        lines.append("")
        for py, msg in self.classes:
            slots = "".join(f"{f.name!r}, " for f in msg.field)
            lines += ["", f"class {py}(_Message):", f"    __slots__ = ({slots})", ""]
        for outer, inner, py in self.nested:
            lines.append(f"{outer}.{inner} = {py}")
        for py, msg in self.classes:
            fields = sorted(msg.field, key=lambda x: x.number)
            body = "".join(f"\n    {self._field(py, f)}," for f in fields)
            lines.append(f"{py}._FIELDS = ({body}\n)")
            oneofs = {}
            for f in msg.field:
                if f.HasField("oneof_index"):
                    oneofs.setdefault(msg.oneof_decl[f.oneof_index].name, []).append(f.name)
            if oneofs:
                items = ", ".join(f"{k!r}: {tuple(v)!r}" for k, v in oneofs.items())
                lines.append(f"{py}._ONEOFS = {{{items}}}")
            for enum in msg.enum_type:
                self._enum(enum, f"{py}.{enum.name}", lines, py)
        lines.append("")
        lines.append(f"_finish([{', '.join(py for py, _ in self.classes)}])")
        lines.append("")
        return "\n".join(lines)


def generate(proto: str, out_dir: str | os.PathLike[str] = ROOT) -> Path:
    """Write the lean module for proto (a path relative to the repository root) under out_dir."""
    source = _Generator(_descriptor_set(proto)).render()
    out = Path(out_dir) / proto.replace(".proto", "_lean.py")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(source)
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: lean_codegen.py PROTO [OUT_DIR]")
    print(generate(sys.argv[1], *sys.argv[2:3]))
