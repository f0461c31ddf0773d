"""The generated protobuf/gRPC modules must be exactly what protoc makes of the .proto files now.

They are generated at install time and never committed; a .proto edited after install, or a
module edited by hand, shows up here.
"""
from __future__ import annotations

import filecmp
from pathlib import Path

from protos import generate


def _generated(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in (root / "protos").rglob("*.py")
            if p.name.endswith(("_pb2.py", "_pb2_grpc.py", "_lean.py"))}


def test_generated_modules_match_the_protos(tmp_path):
    generate.generate(tmp_path)
    fresh = _generated(tmp_path)
    installed = _generated(generate.ROOT)
    assert fresh, "protoc generated nothing"
    assert sorted(installed) == sorted(fresh), "generated modules missing or stale: reinstall"
    differing = [name for name in fresh if not filecmp.cmp(fresh[name], installed[name], shallow=False)]
    assert not differing, f"generated code differs from its .proto (reinstall): {differing}"


def test_every_proto_has_a_module():
    for proto in generate.proto_files():
        module = generate.ROOT / proto.replace(".proto", "_pb2.py")
        assert module.exists(), f"no generated module for {proto}"
