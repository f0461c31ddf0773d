"""Generate the Python modules for every .proto under protos/ with grpcio-tools.

Run by setup.py at install time (generated code is never committed) and by the test that checks
that the installed modules match the .proto files. Modules land next to their .proto, so
`protos/berth/shim/v1/shim.proto` becomes the module `protos.berth.shim.v1.shim_pb2`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Also generated as lean pure-Python codecs (protos/lean_codegen.py): read by processes that run
# once per container and cannot afford protobuf's runtime (berth-shim).
LEAN_PROTOS = ["protos/berth/shim/v1/shim.proto"]


def proto_files() -> list[str]:
    """Paths relative to the repository root, the include root the imports are written against."""
    return sorted(str(p.relative_to(ROOT)) for p in HERE.rglob("*.proto"))


def _has_services(path: Path) -> bool:
    return any(line.lstrip().startswith("service ") for line in path.read_text().splitlines())


def generate(out_dir: str | os.PathLike[str] = ROOT) -> list[str]:
    """Write the _pb2 (and, for files with services, _pb2_grpc) modules under out_dir."""
    import grpc_tools
    from grpc_tools import protoc

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = proto_files()
    with_services = [f for f in files if _has_services(ROOT / f)]
    out = str(out_dir)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for group, extra in ((files, []), (with_services, [f"--grpc_python_out={out}"])):
            if not group:
                continue
            args = ["protoc", f"-I{ROOT}", f"-I{wkt}", f"--python_out={out}", *extra, *group]
            if protoc.main(args) != 0:
                raise RuntimeError(f"protoc failed on {' '.join(group)}")
    finally:
        os.chdir(cwd)
    import runpy  # by path: setup.py runs this file before the protos package is importable

    lean = runpy.run_path(str(HERE / "lean_codegen.py"))["generate"]
    for proto in LEAN_PROTOS:
        lean(proto, out)
    return files


if __name__ == "__main__":
    generate(sys.argv[1] if len(sys.argv) > 1 else ROOT)
