"""The benchmark's C programs, built from source with the system compiler at bench time.

``build("ws_echo")`` compiles ``bench/native/ws_echo.c`` with ``cc -O2`` into a
cache directory (``$XDG_CACHE_HOME/wsio-bench``, else ``~/.cache/wsio-bench``),
once per version of the source: the binary's name holds a hash of the source and
the compiler command, so an edit means a rebuild and nothing else does. No setup.py,
no Python headers: a plain program the runner starts like any server.

``ws_echo.c`` is the C reference server; ``ws_connrate.c`` is the load generator's
client for the connrate scenario (``connrate_generator()`` says when it runs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CC = os.environ.get("CC", "cc")
CFLAGS = ["-O2", "-Wall", "-Wextra"]


def compiler() -> str | None:
    """The C compiler's path, or None when there is none (the C servers are then skipped)."""
    return shutil.which(CC)


def connrate_generator() -> str:
    """Who drives the connrate scenario: ``"C"`` (``ws_connrate.c``, run by bench/loadgen.py) where a
    C compiler is, else ``"python"`` (the load generator's own client). ``BENCH_LOADGEN=wsio`` asks for
    wsio's client everywhere, to cross-check the load generator: then connrate is ``"python"`` too."""
    if os.environ.get("BENCH_LOADGEN") == "wsio" or compiler() is None:
        return "python"
    return "C"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wsio-bench")


def build(name: str) -> str:
    """The path of ``name``'s binary, compiled first if this source hasn't been; raises if it doesn't compile."""
    source = os.path.join(HERE, f"{name}.c")
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read() + " ".join([CC, *CFLAGS]).encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(), f"{name}-{digest}")
    if os.path.exists(target):
        return target
    cc = compiler()
    if cc is None:
        raise RuntimeError(f"no C compiler ({CC}) to build {name}.c")
    os.makedirs(cache_dir(), exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"  # then renamed: two runs building at once both get a whole binary
    proc = subprocess.run([cc, *CFLAGS, "-o", partial, source], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{CC} failed on {name}.c:\n{proc.stderr[-2000:]}")
    os.replace(partial, target)
    return target
