"""uvicorn's own WebSocket tests, unedited, with wsio.asgi.UvicornProtocol as the engine.

The uvicorn sdist (it ships ``tests/``) is fetched once into ``.cache/uvicorn``
with pip and unpacked there. Its ``tests/protocols/test_websocket.py`` runs in a
subprocess with ``-p wsio_uvicorn_plugin``, which makes the ``ws_protocol_cls``
fixture yield wsio's class; ``http_protocol_cls`` keeps uvicorn's own
parametrization (httptools and h11; zttp when installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import uvicorn  # noqa: E402, F401 - see pyproject's test extra

UVICORN_VERSION = "0.54.0"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "uvicorn"
HERE = Path(__file__).resolve().parent

#: Tests that cannot apply to a third-party engine, with why. Nothing else may fail.
EXCEPTED = {
    # Both assert isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)),
    # uvicorn's two engine classes, before looking at the keepalive state. The
    # behaviour itself (a ping answered keeps the connection, no ping timer
    # when ws_ping_interval is None) is covered by tests/asgi/test_starlette.py.
    "test_server_keepalive_ping_pong",
    "test_server_keepalive_disabled",
    # Asserts that reading pauses as soon as one message waits unreceived, with
    # the default ws_max_queue=32: the policy of uvicorn's sansio engine, which
    # ignores ws_max_queue. wsio's engine honours it (reading pauses at 32
    # messages, as with uvicorn's websockets engine, max_queue=ws_max_queue).
    # What the test is about, closing resumes paused reads so that the client's
    # close frame gets through, is tested with ws_max_queue=1 in
    # tests/asgi/test_starlette.py::test_app_close_resumes_paused_reading.
    "test_close_resumes_reads_paused_on_an_unconsumed_message",
}
#: The only reason a test may be skipped: an HTTP protocol class that isn't installed.
ALLOWED_SKIP = "zttp not installed."


def uvicorn_sdist() -> Path:
    """Return uvicorn's unpacked sdist, downloading it on first use."""
    tree = CACHE / f"uvicorn-{UVICORN_VERSION}"
    if (tree / "tests" / "protocols" / "test_websocket.py").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"uvicorn-{UVICORN_VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
             f"uvicorn=={UVICORN_VERSION}", "-d", str(CACHE)],
            check=True, timeout=300,
        )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return tree


@pytest.mark.timeout(600)
def test_uvicorn_websocket_suite(tmp_path: Path) -> None:
    tree = uvicorn_sdist()
    report = tmp_path / "report.xml"
    env = dict(os.environ, PYTHONPATH=str(HERE))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "wsio_uvicorn_plugin", "-p", "no:cacheprovider",
         "-o", "addopts=-rs", "-q", f"--junitxml={report}", "tests/protocols/test_websocket.py"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=560,
    )  # fmt: skip
    cases = ET.parse(report).getroot().iter("testcase")
    passed: dict[str, list[str]] = {}
    failed: list[str] = []
    skipped: list[str] = []
    for case in cases:
        name = case.get("name", "")
        base, _, params = name.partition("[")
        outcome = {child.tag for child in case}
        if "failure" in outcome or "error" in outcome:
            if base not in EXCEPTED:
                failed.append(name)
        elif "skipped" in outcome:
            message = case.find("skipped").get("message", "")  # type: ignore[union-attr]
            if ALLOWED_SKIP not in message:
                skipped.append(f"{name}: {message}")
        elif "wsio-" in params:
            passed.setdefault(params.split("-")[1].split("]")[0], []).append(base)
        # else: a test that names uvicorn's own engine in its Config (ws_max_size
        # with WebSocketsSansIOProtocol); it doesn't run wsio and isn't counted.
    assert not failed, result.stdout[-5000:]
    assert not skipped
    # Every HTTP protocol class installed ran the whole file.
    assert set(passed) >= {"h11", "httptools"}, passed
    print("uvicorn's WebSocket tests on wsio:", {http: len(names) for http, names in passed.items()}, "passed")
    for http, names in passed.items():
        assert len(names) >= 68, (http, len(names))  # 68 of 71 with wsio in 0.54.0, 3 excepted
