"""Build the optional C accelerator; everything else is in pyproject.toml.

Two extensions: ``wsio.protocol._speedups`` (framing, masking, UTF-8, the read
path of both APIs) and ``wsio.asyncio._transport`` (the socket transport's read
and write steps). Both are optional: if one can't be compiled, the build warns
and wsio runs on the pure-Python code instead. ``WSIO_NO_SPEEDUPS=1`` at build
time skips them.
"""

import os
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class optional_build_ext(build_ext):
    """Turn any failure to build the extension into a warning."""

    def run(self):
        if os.environ.get("WSIO_NO_SPEEDUPS"):
            print("WSIO_NO_SPEEDUPS is set: not building the C accelerator")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers, ...
            warnings.warn(f"the C accelerator not built, using pure Python: {exc}", stacklevel=1)

    def build_extension(self, ext):
        if self.compiler.compiler_type == "msvc":
            ext.extra_compile_args = ["/O2"]
        try:
            super().build_extension(ext)
        except Exception as exc:
            warnings.warn(f"{ext.name} not built, using pure Python: {exc}", stacklevel=1)


setup(
    ext_modules=[
        Extension(
            "wsio.protocol._speedups",
            ["src/wsio/protocol/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "wsio.asyncio._transport",
            ["src/wsio/asyncio/_transport.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
    ],
    cmdclass={"build_ext": optional_build_ext},
)
