"""The Autobahn TestSuite (kosoku) against a Starlette echo app on uvicorn + wsio.

Every one of the 517 cases must end OK or INFORMATIONAL, for the message
exchange and the closing handshake, as for wsio's own server
(tests/autobahn/test_autobahn.py, whose helpers this reuses). Reports go to
reports/autobahn/asgi-<http>/.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("uvicorn", reason="the asgi extra is not installed")
pytest.importorskip("starlette", reason="the asgi extra is not installed")

from tests.autobahn.test_autobahn import REPORTS, assert_all_pass, kosoku_command, read_results  # noqa: E402
from tests.helpers import free_port, start_process, wait_for_line  # noqa: E402

HERE = pathlib.Path(__file__).parent


@pytest.mark.timeout(1800)
def test_uvicorn_wsio_server() -> None:
    outdir = REPORTS / "asgi-httptools"
    port = free_port()
    server = start_process([sys.executable, str(HERE / "autobahn_echo.py"), str(port), "httptools"])
    try:
        wait_for_line(server, "listening")
        subprocess.run(
            [*kosoku_command(), f"127.0.0.1:{port}", "-p", "2", "-o", str(outdir)],
            check=False,
            timeout=1500,
            capture_output=True,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert_all_pass(read_results(outdir))
