"""The Autobahn TestSuite (kosoku) against a Starlette echo app on uvicorn + wsio.

Every one of the 517 cases must end OK or INFORMATIONAL, for the message
exchange and the closing handshake, as for wsio's own server
(tests/autobahn/test_autobahn.py, whose helpers this reuses). Reports go to
reports/autobahn/asgi-<http>/.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

import starlette  # noqa: F401  (the test extra has it and uvicorn: missing, these tests fail)
import uvicorn  # noqa: F401

from tests.autobahn.test_autobahn import REPORTS, fuzz_server  # noqa: E402
from tests.helpers import free_port  # noqa: E402

HERE = pathlib.Path(__file__).parent


@pytest.mark.timeout(1800)
def test_uvicorn_wsio_server() -> None:
    port = free_port()
    fuzz_server([sys.executable, str(HERE / "autobahn_echo.py"), str(port), "httptools"], port, REPORTS / "asgi-httptools")
