"""The benchmark's C programs, built from source with the system compiler at bench time.

``build("ws_echo")`` compiles ``bench/native/ws_echo.c`` with ``cc -O2`` into a
cache directory (``$XDG_CACHE_HOME/wsio-bench``, else ``~/.cache/wsio-bench``),
once per version of the source: the binary's name holds a hash of the source and
the compiler command, so an edit means a rebuild and nothing else does. No setup.py,
no Python headers: a plain program the runner starts like any server.

``ws_echo.c`` is the C reference server; ``ws_connrate.c`` and ``ws_echo_load.c``
are the load generator's clients for the connrate scenario and for the echo
scenarios without compression (``c_clients()`` says when they run). Both include
``ws_common.h``, which is part of what a binary's name hashes.
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


def c_clients() -> bool:
    """Whether bench/loadgen.py runs the C clients: ``ws_connrate.c`` for connrate and ``ws_echo_load.c``
    for echo without compression. Yes where a C compiler is, unless ``BENCH_LOADGEN`` names a Python
    client for everything, to cross-check the C ones: ``picows`` (the load generator's own) or ``wsio``."""
    return os.environ.get("BENCH_LOADGEN") not in ("picows", "wsio") and compiler() is not None


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wsio-bench")


def build(name: str) -> str:
    """The path of ``name``'s binary, compiled first if this source hasn't been; raises if it doesn't compile."""
    source = os.path.join(HERE, f"{name}.c")
    digest = hashlib.sha256(" ".join([CC, *CFLAGS]).encode())
    # The source and the headers beside it (ws_common.h): an edit to either is a rebuild.
    for path in [source, *sorted(os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".h"))]:
        with open(path, "rb") as f:
            digest.update(f.read())
    target = os.path.join(cache_dir(), f"{name}-{digest.hexdigest()[:16]}")
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
