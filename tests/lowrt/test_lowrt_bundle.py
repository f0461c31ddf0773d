"""lowrt's modules from one file of bytecode (lowrt/bundle.py): used while every source is as it
was when the bundle was made, never in place of a source that changed, rebuilt when missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lowrt import bundle

REPO = Path(__file__).resolve().parents[2]


def _copy(tmp: Path) -> Path:
    """A copy of the package and its script, without bytecode: lowrt as a fresh install."""
    pkg = tmp / "pkg"
    shutil.copytree(REPO / "lowrt", pkg / "lowrt", ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _version(pkg: Path, write_bytecode: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(pkg)  # before the venv's site-packages, which the script appends
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run([sys.executable, "-S", str(pkg / "lowrt" / "bin" / "lowrt"), "--version"],
                         capture_output=True, text=True, env=env, timeout=30, check=True)
    return out.stdout.splitlines()[0]


def test_bundle_serves_modules_only_while_their_source_is_unchanged(tmp_path):
    pkg = _copy(tmp_path)
    cli = pkg / "lowrt" / "cli.py"
    original = cli.read_text()
    assert 'VERSION = "0.1.0"' in original
    # A bundle made from a cli.py that says 9.9.9, then the original put back with the
    # bundled one's size and mtime: what runs is the bundle's.
    cli.write_text(original.replace('VERSION = "0.1.0"', 'VERSION = "9.9.9"'))
    st = cli.stat()
    bundle.build(str(pkg / "lowrt"))
    cli.write_text(original)
    os.utime(cli, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _version(pkg) == "lowrt version 9.9.9"
    # Any change to the source's mtime and it is imported as usual.
    os.utime(cli, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert _version(pkg) == "lowrt version 0.1.0"


def test_a_missing_bundle_is_written_unless_bytecode_may_not_be(tmp_path):
    pkg = _copy(tmp_path)
    made = pkg / "lowrt" / "__pycache__" / f"bundle.{sys.implementation.cache_tag}.bin"
    assert _version(pkg) == "lowrt version 0.1.0"
    assert not made.exists()  # PYTHONDONTWRITEBYTECODE
    assert _version(pkg, write_bytecode=True) == "lowrt version 0.1.0"
    assert made.exists()
    assert _version(pkg) == "lowrt version 0.1.0"


def test_a_bundle_for_another_python_is_not_used(tmp_path):
    pkg = _copy(tmp_path)
    made = Path(bundle.build(str(pkg / "lowrt")))
    data = made.read_bytes()
    import marshal
    magic, modules = marshal.loads(data)
    cli = modules["lowrt.cli"]
    code = compile((pkg / "lowrt" / "cli.py").read_text().replace('"0.1.0"', '"9.9.9"'),
                   str(pkg / cli[0]), "exec")
    modules["lowrt.cli"] = (*cli[:4], marshal.dumps(code))
    made.write_bytes(marshal.dumps((magic, modules)))
    assert _version(pkg) == "lowrt version 9.9.9"  # this bundle is read...
    made.write_bytes(marshal.dumps((b"\0\0\r\n", modules)))
    assert _version(pkg) == "lowrt version 0.1.0"  # ...and this one, with another magic, not


def test_a_moved_package_checks_its_own_sources(tmp_path):
    """The bundle names sources relative to the package: copied elsewhere with it, it is checked
    against the copy's files, not against those it was made from."""
    pkg = _copy(tmp_path)
    bundle.build(str(pkg / "lowrt"))
    moved = tmp_path / "moved"
    shutil.copytree(pkg, moved)
    cli = moved / "lowrt" / "cli.py"
    cli.write_text(cli.read_text().replace('VERSION = "0.1.0"', 'VERSION = "7.7.7"'))
    assert _version(moved) == "lowrt version 7.7.7"
