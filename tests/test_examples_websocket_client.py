"""Each websocket-client FAQ example in examples/faq_websocket_client runs by itself and exits 0 within seconds."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples" / "faq_websocket_client"

# What each program must print: proof that it did what its question asks.
EXPECTED = {
    "compression.py": "permessage-deflate",
    "connection_closed.py": "Connection is already closed.",
    "disable_hostname_verification.py": "WebSocket: WebSocket",
    "disable_ssl_verification.py": "WebSocket: WebSocket",
    "keepalive.py": "keepalive pongs received",
    "naming.py": "one changed import",
    "reconnect.py": "on_reconnect",
    "slowness.py": "skip_utf8_validation accepted",
    "sni.py": "server received SNI: localhost",
    "subprotocols.py": "chosen by the server: base64",
}


def test_every_example_is_tested() -> None:
    programs = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    assert programs == set(EXPECTED)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_example(program: str) -> None:
    if program.startswith(("disable_", "sni")):
        import cryptography  # noqa: F401  (the test extra installs it)
    source = (EXAMPLES / program).read_text()
    assert "from wsio import sync as websocket" in source
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, program],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert EXPECTED[program] in result.stdout, result.stdout
    assert elapsed < 15, f"{program} took {elapsed:.1f}s"
