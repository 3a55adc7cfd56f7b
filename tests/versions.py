"""The other CPythons on this machine (3.10 and up), each with a venv and wsio's wheel built for it.

``python tests/versions.py`` lists them; ``python tests/versions.py prepare 3.12``
(or ``prepare all``) makes ``.venvs/3.12/``: a venv of that Python with the
packages ``tests/protocol``, ``tests/asyncio`` and ``tests/sync`` import (the
``test-core`` extra), and wsio installed from a wheel built for it from the
files git tracks, C accelerator included. ``make test`` runs those suites in
each venv, on both paths; ``tests/test_build.py`` checks each wheel.

Where they are looked for: pyenv's ``~/.pyenv/versions/3.1*``, then
``python3.10`` ... ``python3.19`` on PATH. The default interpreter (the one
running this) is left out: the whole suite runs on it. 3.9 and older are not
supported.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
MIN_VERSION = (3, 10)

_PROBE = "import sys, platform, sysconfig; print(platform.python_implementation(), sys.version_info[0], sys.version_info[1], int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))), sys.executable)"


def _probe(python: str) -> tuple[str, str] | None:
    """(``"3.12"``, the interpreter's real path) for a usable CPython, else None."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=30, env=_clean_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None  # e.g. a pyenv shim of a version that isn't installed
    fields = done.stdout.split()
    if len(fields) < 5 or fields[0] != "CPython" or fields[3] != "0":
        return None  # PyPy, or a free-threaded build (not supported)
    major, minor = int(fields[1]), int(fields[2])
    if (major, minor) < MIN_VERSION:
        return None
    return f"{major}.{minor}", os.path.realpath(" ".join(fields[4:]))


def _clean_env() -> dict[str, str]:
    """This environment without what would make another Python load our venv or our path."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "__PYVENV_LAUNCHER__")
    return {k: v for k, v in os.environ.items() if k not in drop}


def find_pythons() -> dict[str, str]:
    """``{"3.12": "/path/to/python3.12", ...}``: one interpreter per version, the default's left out."""
    default = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates: list[str] = []
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")

    # Newest patch release first, so it wins over older ones of the same version.
    def patch_key(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) if p.isdigit() else -1 for p in name.replace("-", ".").split("."))

    for python in sorted(
        glob.glob(os.path.join(pyenv_root, "versions", "3.1[0-9]*", "bin", "python3")), key=patch_key, reverse=True
    ):
        candidates.append(python)
    for minor in range(MIN_VERSION[1], 20):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(found)
    pythons: dict[str, str] = {}
    for candidate in candidates:
        probed = _probe(candidate)
        if probed is None:
            continue
        version, path = probed
        if version != default and version not in pythons:
            pythons[version] = path
    return dict(sorted(pythons.items(), key=lambda item: tuple(map(int, item[0].split(".")))))


def core_test_requirements() -> list[str]:
    """The ``test-core`` extra of pyproject.toml: what tests/protocol, asyncio and sync import."""
    import tomllib  # the default interpreter is 3.11+

    with open(ROOT / "pyproject.toml", "rb") as file:
        return list(tomllib.load(file)["project"]["optional-dependencies"]["test-core"])


def copy_sources(tree: Path) -> None:
    """The files git tracks (as they are in the work tree) into ``tree``; without git, all but build products."""
    if tree.exists():
        shutil.rmtree(tree)
    if not (ROOT / ".git").exists():
        ignore = shutil.ignore_patterns(
            ".venv", ".venvs", "build", "dist", "*.egg-info", "*.so", "__pycache__", "node_modules", "reports"
        )
        shutil.copytree(ROOT, tree, ignore=ignore)
        return
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():  # tracked files deleted in the work tree are skipped
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)


def venv_python(version: str) -> Path:
    return VENVS / version / "bin" / "python"


def wheel_of(version: str) -> Path | None:
    wheels = sorted((VENVS / version / "dist").glob("wsio-*.whl"))
    return wheels[-1] if len(wheels) == 1 else None


#: Run in a version's venv, away from the source tree: wsio comes from the wheel, with its accelerator.
CHECK_INSTALLED = (
    "import sys, wsio, wsio.protocol._speedups; from wsio.protocol import frames; "
    "assert frames.SPEEDUPS, 'wsio.protocol._speedups is not used'; "
    "from wsio.asyncio import transport; assert transport.Pump is not None, 'wsio.asyncio._transport is not used'; "
    "assert wsio.__file__.startswith(sys.prefix), wsio.__file__; "
    "print(sys.version.split()[0], wsio.__version__, wsio.protocol._speedups.__file__)"
)


def _run(args: list[str | Path], log: list[str], cwd: Path = ROOT) -> None:
    log.append("$ " + " ".join(map(str, args)))
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=_clean_env(), timeout=900)
    log.append((done.stdout + done.stderr).strip()[-4000:])
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: " + "\n".join(log))


def prepare(version: str, python: str) -> str:
    """Make ``.venvs/<version>``: a venv with the test-core packages and wsio's wheel, built here; return a log."""
    venv = VENVS / version
    log: list[str] = []
    if not venv_python(version).exists():
        _run([python, "-m", "venv", venv], log)
    pip = [venv_python(version), "-m", "pip", "--disable-pip-version-check", "-q"]
    # setuptools and wheel: the wheel is built without build isolation, with these.
    _run([*pip, "install", "setuptools>=77", "wheel", *core_test_requirements()], log)
    tree = venv / "tree"
    copy_sources(tree)
    dist = venv / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    env_note = {k: v for k, v in os.environ.items() if k == "WSIO_NO_SPEEDUPS"}
    if env_note:
        raise RuntimeError("WSIO_NO_SPEEDUPS is set: the wheel would be built without its accelerator")
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, tree], log)
    wheel = wheel_of(version)
    if wheel is None:
        raise RuntimeError(f"no single wsio wheel in {dist}:\n" + "\n".join(log))
    _run([*pip, "install", "--no-deps", "--force-reinstall", wheel], log)
    shutil.rmtree(tree, ignore_errors=True)
    _run([venv_python(version), "-I", "-c", CHECK_INSTALLED], log, cwd=venv)
    return "\n".join(log)


def main(argv: list[str]) -> int:
    pythons = find_pythons()
    if not argv:
        for version, path in pythons.items():
            print(version, path)
        return 0 if pythons else 1
    if argv[0] == "prepare":
        wanted = list(pythons) if argv[1:] in ([], ["all"]) else argv[1:]
        for version in wanted:
            if version not in pythons:
                print(f"no Python {version} found (found: {', '.join(pythons) or 'none'})", file=sys.stderr)
                return 1
            print(prepare(version, pythons[version]).splitlines()[-1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
