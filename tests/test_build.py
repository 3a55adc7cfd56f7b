"""Packaging: ``python -m build`` makes an sdist and a wheel with the C accelerator.

Builds from a copy of the files git tracks (the work tree stays clean; untracked
and ignored files, such as an in-place ``_speedups*.so``, stay out), the sdist
first and the wheel from the sdist, as installers do. The wheel is installed in
a fresh venv and must import with the accelerator and run the sans-I/O core.
The build backend is downloaded into build's isolated environment.

On each other CPython from 3.10 up (tests/versions.py), the wheel built for it
in ``.venvs/3.X/`` (``make test`` builds them first; alone, this test does)
must carry the accelerator for that version and load it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import wsio

from tests import versions

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(300)

#: Run in the fresh venv: the accelerator is there, and a handshake and a message
#: cross from a client core to a server core.
SMOKE = """
import sys, wsio
from wsio.protocol import frames
from wsio.protocol.machine import ClientProtocol, ServerProtocol
from wsio.protocol.deflate import enable_client_permessage_deflate, enable_server_permessage_deflate
from wsio.protocol.uri import parse_uri
from wsio.protocol.http11 import Request

assert frames.SPEEDUPS, "wsio.protocol._speedups is not used"
from wsio.asyncio import transport
assert transport.Pump is not None, "wsio.asyncio._transport is not used"
client = ClientProtocol(parse_uri("ws://localhost/chat"), extensions=enable_client_permessage_deflate(None))
server = ServerProtocol(extensions=enable_server_permessage_deflate(None))
client.send_request(client.connect())
[request] = server.receive_data(client.data_to_send())
assert isinstance(request, Request), request
server.send_response(server.accept(request))
client.receive_data(server.data_to_send())
assert client.deflate is not None and server.deflate is not None, "permessage-deflate not negotiated"
message = "hello " * 1000
assert server.receive_data(client.send_message(message)) == [message]
assert client.receive_data(server.send_message(b"\\x00\\xff" * 5000)) == [b"\\x00\\xff" * 5000]
print(wsio.__version__, wsio.__file__, frames.SPEEDUPS)
"""


def run(args: list[str], cwd: Path, timeout: float = 240) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WSIO_NO_SPEEDUPS", "PIP_REQUIRE_VIRTUALENV")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def copy_sources(tree: Path) -> None:
    """The files git tracks (or, in an unpacked sdist, all but build products) into ``tree``."""
    if not (ROOT / ".git").exists():
        ignore = shutil.ignore_patterns(".venv", "build", "dist", "*.egg-info", "*.so", "__pycache__", "node_modules", "reports")
        shutil.copytree(ROOT, tree, ignore=ignore)
        return
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():  # tracked files deleted in the work tree are skipped
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)


def test_sdist_and_wheel(tmp_path: Path) -> None:
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("the build package is missing: pip install build (the test extra has it)")
    tree = tmp_path / "tree"
    copy_sources(tree)

    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(tree)], cwd=tmp_path)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")

    # The sdist: enough to rebuild everything, accelerator included.
    with tarfile.open(sdist) as archive:
        top = sdist.name[: -len(".tar.gz")]
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert top == f"wsio-{wsio.__version__}", f"sdist {sdist.name} is not version {wsio.__version__}"
    wanted = [
        "src/wsio/protocol/_speedups.c",
        "src/wsio/protocol/_speedups.pyi",
        "src/wsio/asyncio/_transport.c",
        "src/wsio/asyncio/_transport.pyi",
        "setup.py",
        "pyproject.toml",
        "README.md",
        "src/wsio/py.typed",
        "src/wsio/__init__.py",
    ]
    wanted += ["MANIFEST.in", "tests/protocol/test_frames.py", "tests/interop/node/package.json", "examples/chat/server.py"]
    wanted += [name for name in ("LICENSE", "CHANGELOG.md") if (ROOT / name).exists()]
    missing = [name for name in wanted if name not in names]
    assert not missing, f"the sdist lacks {missing}"
    assert not [name for name in names if name.endswith((".so", ".pyc")) or "node_modules" in name], "build products in the sdist"

    # The wheel: platform-specific, with the compiled accelerator, its stub and py.typed.
    tags = wheel.name[: -len(".whl")].split("-")[-3:]
    assert tags[2] != "any" and tags[1] != "none", f"{wheel.name} is not a platform wheel"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        info = Parser().parsestr(archive.read(metadata).decode())
    assert [name for name in names if name.startswith("wsio/protocol/_speedups") and name.endswith(".so")], (
        f"no _speedups*.so in {sorted(names)}"
    )
    assert "wsio/py.typed" in names
    assert "wsio/protocol/_speedups.pyi" in names, "the C accelerator's stub is not in the wheel"
    assert [name for name in names if name.startswith("wsio/asyncio/_transport") and name.endswith(".so")], (
        f"no _transport*.so in {sorted(names)}"
    )
    assert "wsio/asyncio/_transport.pyi" in names, "the C transport's stub is not in the wheel"
    assert info["Name"] == "wsio"
    assert info["Version"] == wsio.__version__, f"the wheel says {info['Version']}, wsio.__version__ is {wsio.__version__}"

    # Installed alone in a fresh venv, away from the source tree.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)
    out = run([str(python), "-I", "-c", SMOKE], cwd=tmp_path).split()
    assert out[0] == wsio.__version__, out
    assert out[1].startswith(str(venv)), f"imported wsio from {out[1]}, not from the venv"
    assert out[2] == "True"


OTHER_PYTHONS = versions.find_pythons()


@pytest.mark.parametrize("version", list(OTHER_PYTHONS))
def test_wheel_on_another_python(version: str, tmp_path: Path) -> None:
    """The wheel builds for ``version``, carries its accelerator, and loads it there."""
    if not os.environ.get("WSIO_VERSION_WHEELS_READY") or versions.wheel_of(version) is None:
        versions.prepare(version, OTHER_PYTHONS[version])  # not built by make test's runner just now
    wheel = versions.wheel_of(version)
    assert wheel is not None, f"no wheel in .venvs/{version}/dist"
    cp = "cp" + version.replace(".", "")
    name, wheel_version, python_tag, abi_tag, platform_tag = wheel.name[: -len(".whl")].split("-")
    assert (name, wheel_version) == ("wsio", wsio.__version__), wheel.name
    assert (python_tag, abi_tag) == (cp, cp) and platform_tag != "any", f"{wheel.name} is not a {cp} platform wheel"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for extension in ("wsio/protocol/_speedups", "wsio/asyncio/_transport"):
        assert [n for n in names if n.startswith(f"{extension}.cpython-{version.replace('.', '')}") and n.endswith(".so")], (
            sorted(names)
        )
    venv = versions.VENVS / version
    out = run([str(versions.venv_python(version)), "-I", "-c", SMOKE], cwd=tmp_path).split()
    assert out[0] == wsio.__version__, out
    assert out[1].startswith(str(venv)), f"imported wsio from {out[1]}, not from {venv}"
    assert out[2] == "True"
