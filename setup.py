"""Build the optional C accelerator ``wsio.protocol._speedups``; everything else is in pyproject.toml.

The extension is optional: if it can't be compiled, the build warns and wsio
runs on its pure-Python framing. ``WSIO_NO_SPEEDUPS=1`` at build time skips it.
"""

import os
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class optional_build_ext(build_ext):
    """Turn any failure to build the extension into a warning."""

    def run(self):
        if os.environ.get("WSIO_NO_SPEEDUPS"):
            print("WSIO_NO_SPEEDUPS is set: not building wsio.protocol._speedups")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers, ...
            warnings.warn(f"wsio.protocol._speedups not built, using pure Python: {exc}", stacklevel=1)

    def build_extension(self, ext):
        if self.compiler.compiler_type == "msvc":
            ext.extra_compile_args = ["/O2"]
        try:
            super().build_extension(ext)
        except Exception as exc:
            warnings.warn(f"wsio.protocol._speedups not built, using pure Python: {exc}", stacklevel=1)


setup(
    ext_modules=[
        Extension(
            "wsio.protocol._speedups",
            ["src/wsio/protocol/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ],
    cmdclass={"build_ext": optional_build_ext},
)
