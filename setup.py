"""Generates the protobuf/gRPC modules and builds the hello-world program before packaging;
everything else is in pyproject.toml."""
import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        runpy.run_path(str(HERE / "protos" / "generate.py"))["generate"](HERE)
        self._build_hello()
        super().run()

    def _build_hello(self) -> None:
        """engine/images/hello/hello: the static program of berth's built-in hello-world image.
        Without a C compiler berthd builds it on first start instead (or goes without)."""
        hello = runpy.run_path(str(HERE / "engine" / "images" / "hello" / "build.py"))
        try:
            binary = hello["build"](hello["BINARY"])
        except RuntimeError as e:
            print(f"warning: {e}")
            return
        if not self.editable_mode:
            dest = Path(self.build_lib) / "engine" / "images" / "hello" / "hello"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, dest)


setup(cmdclass={"build_py": BuildPyWithProtos})
