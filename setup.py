"""Generates the protobuf/gRPC modules before packaging; everything else is in pyproject.toml."""
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        runpy.run_path(str(HERE / "protos" / "generate.py"))["generate"](HERE)
        super().run()


setup(cmdclass={"build_py": BuildPyWithProtos})
