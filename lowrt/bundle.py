"""lowrt's own modules from one file of bytecode, read once, instead of one lookup each.

Every lowrt process imports 20-40 of its modules (lowrt itself, the container's init), and the
import system pays for each: a finder tried per sys.path entry, a stat, an open and a read of
its .pyc, in Python code that runs in both processes on a container's critical path (1.5 ms
of lowrt's imports here). `lowrt/__pycache__/bundle.<tag>.bin` holds every module's code,
marshalled, with the size and mtime (ns) of the source it was compiled from; the finder
installed by `lowrt/bin/lowrt` serves a module from it only while its source still has that
size and mtime (a stat, as the ordinary import makes). Any other module, or one whose source
changed, is imported as usual: the bundle can be stale or missing, never wrong.

A command that found the bundle missing or stale writes a new one before it exits (`save`),
unless Python is told not to write bytecode (PYTHONDONTWRITEBYTECODE, -B), as it would a
.pyc; `build` is also called by bench/lowrt_run.py.
"""
from __future__ import annotations

import marshal
import os
import sys

import _frozen_importlib
import _frozen_importlib_external

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_FILE = os.path.join(PACKAGE_DIR, "__pycache__", f"bundle.{sys.implementation.cache_tag}.bin")
# Not part of a lowrt process: the script (no module), and the generator of the seccomp tables.
_SKIP = ("bin", "seccomp/gentables.py")


class _Finder:
    """A meta path finder (and loader) for the modules in the bundle whose source is as it was."""

    def __init__(self, modules: dict, file_id: tuple[int, int]) -> None:
        self.modules = modules
        self.file_id = file_id   # the bundle's (st_dev, st_ino): it is replaced, never rewritten
        self.stale = False

    def find_spec(self, name: str, path=None, target=None):
        entry = self.modules.get(name)
        if entry is None:
            return None
        source, is_package, mtime_ns, size, _ = entry
        try:
            st = os.stat(source)
        except OSError:
            st = None
        if st is None or st.st_mtime_ns != mtime_ns or st.st_size != size:
            self.stale = True
            del self.modules[name]
            return None  # the ordinary import takes it (or reports it gone)
        spec = _frozen_importlib.ModuleSpec(name, self, origin=source, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(source)]
        spec.has_location = True
        return spec

    @staticmethod
    def create_module(spec):
        return None

    def exec_module(self, module) -> None:
        name = module.__spec__.name
        offset, length = self.modules[name][4]
        # Opened for each module, not held: the container's init closes every fd it inherited
        # before its later imports, and must hold none of the host's files. A bundle replaced
        # since its index was read (by another lowrt's save) is not this index's: the module is
        # then imported as usual.
        blob = b""
        try:
            fd = os.open(_FILE, os.O_RDONLY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == self.file_id:
                    blob = os.pread(fd, length, offset)
            finally:
                os.close(fd)
        except OSError:
            pass
        if len(blob) != length:
            _frozen_importlib_external.SourceFileLoader(name, module.__spec__.origin).exec_module(
                module)
            return
        exec(marshal.loads(blob), module.__dict__)


_finder: _Finder | None = None
_missing = False


def install() -> None:
    """Put the bundle's finder first in sys.meta_path, if there is a bundle for this Python."""
    global _finder, _missing
    # Only the index is read here (a few kB: the whole is over 600 kB); each module's code is
    # read when it is imported.
    try:
        with open(_FILE, "rb") as f:
            st = os.fstat(f.fileno())
            size = int.from_bytes(f.read(4), "little")
            magic, modules = marshal.loads(f.read(size))
    except (OSError, ValueError, EOFError, TypeError):
        _missing = True
        return
    if magic != _frozen_importlib_external.MAGIC_NUMBER:
        _missing = True
        return
    # Sources are recorded relative to the directory above the package: a copied or moved
    # package (bundle included) checks its own files.
    top = os.path.dirname(PACKAGE_DIR)
    start = 4 + size
    for name, (source, is_package, mtime_ns, source_size, (offset, length)) in modules.items():
        modules[name] = (os.path.join(top, source), is_package, mtime_ns, source_size,
                         (start + offset, length))
    _finder = _Finder(modules, (st.st_dev, st.st_ino))
    sys.meta_path.insert(0, _finder)


def save() -> None:
    """Write a fresh bundle if this process found it missing or stale (and may write bytecode).
    Failures are ignored: the bundle only saves time."""
    if sys.dont_write_bytecode or not (_missing or (_finder is not None and _finder.stale)):
        return
    try:
        build()
    except (OSError, SyntaxError, ValueError):
        pass


def build(package_dir: str = PACKAGE_DIR, out: str = "") -> str:
    """Compile every module of the package into a bundle; returns its path. Where it cannot be
    written (a read-only install, lowrt run by a user), that is found out before compiling."""
    out = out or os.path.join(package_dir, "__pycache__",
                              f"bundle.{sys.implementation.cache_tag}.bin")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            index, codes = _compile(package_dir)
            f.write(len(index).to_bytes(4, "little") + index)
            for code in codes:
                f.write(code)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out


def _compile(package_dir: str) -> tuple[bytes, list[bytes]]:
    """The bundle's index and its modules' code, in the index's order.

    The layout: the index's length (4 bytes), the index (magic, and per module its source,
    whether a package, the source's mtime and size, and where its code is, counted from the
    index's end), the code."""
    top = os.path.dirname(package_dir)
    index = {}
    codes = []
    offset = 0
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__"
                         and os.path.relpath(os.path.join(directory, d), package_dir) not in _SKIP)
        for name in sorted(files):
            path = os.path.join(directory, name)
            if not name.endswith(".py") or os.path.relpath(path, package_dir) in _SKIP:
                continue
            module = os.path.relpath(path, top)[:-3].replace(os.sep, ".")
            is_package = name == "__init__.py"
            if is_package:
                module = module.rsplit(".", 1)[0]
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                source = f.read()
            code = marshal.dumps(compile(source, path, "exec", dont_inherit=True))
            index[module] = (os.path.relpath(path, top), is_package, st.st_mtime_ns, st.st_size,
                             (offset, len(code)))
            codes.append(code)
            offset += len(code)
    return marshal.dumps((_frozen_importlib_external.MAGIC_NUMBER, index)), codes
