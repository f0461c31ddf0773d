"""lowrt's modules from one file of bytecode (lowrt/bundle.py): used while every source is as it
was when the bundle was made, never in place of a source that changed, rebuilt when missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import importlib.util

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


def _bundled_as(pkg: Path, version: str) -> Path:
    """A bundle made from a cli.py that says version, the original then put back with the
    bundled one's size and mtime: lowrt says version while it runs the bundle's code."""
    cli = pkg / "lowrt" / "cli.py"
    original = cli.read_text()
    cli.write_text(original.replace('VERSION = "0.1.0"', f'VERSION = "{version}"'))
    st = cli.stat()
    made = Path(bundle.build(str(pkg / "lowrt")))
    cli.write_text(original)
    os.utime(cli, ns=(st.st_atime_ns, st.st_mtime_ns))
    return made


def test_a_bundle_for_another_python_is_not_used(tmp_path):
    pkg = _copy(tmp_path)
    made = _bundled_as(pkg, "9.9.9")
    assert _version(pkg) == "lowrt version 9.9.9"
    data = made.read_bytes()
    magic = importlib.util.MAGIC_NUMBER
    assert data.count(magic) >= 1
    made.write_bytes(data.replace(magic, b"\0\0\r\n", 1))  # the first: the index's
    assert _version(pkg) == "lowrt version 0.1.0"


def test_a_bundle_replaced_after_its_index_was_read_is_not_read_from(tmp_path):
    """The index is read at start and each module's code when imported: a bundle that another
    lowrt replaced meanwhile (its offsets are not this index's) is left alone."""
    pkg = _copy(tmp_path)
    made = _bundled_as(pkg, "9.9.9")
    code = (f"import sys; sys.path.insert(0, {str(pkg)!r})\n"
            "from lowrt import bundle\n"
            "bundle.install()\n"
            f"import os; os.replace({str(made)!r} + '.new', {str(made)!r})\n"
            "from lowrt import cli\n"
            "print(cli.VERSION)\n")
    # the replacement: another layout (a module more, before cli's code)
    (pkg / "lowrt" / "a_pad.py").write_text("PAD = " + repr("x" * 5000) + "\n")
    other = Path(bundle.build(str(pkg / "lowrt"), out=str(made) + ".new"))
    (pkg / "lowrt" / "a_pad.py").unlink()
    assert other.exists()
    made2 = _bundled_as(pkg, "8.8.8")  # what the index read first says: 8.8.8 at its offsets
    assert made2 == made
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.strip() == "0.1.0"


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


def test_a_bundle_that_cannot_be_written_is_no_error(tmp_path):
    pkg = _copy(tmp_path)
    (pkg / "lowrt" / "__pycache__").write_text("not a directory")
    assert _version(pkg, write_bytecode=True) == "lowrt version 0.1.0"
    assert (pkg / "lowrt" / "__pycache__").read_text() == "not a directory"
