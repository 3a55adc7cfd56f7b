"""The wsio command line: the echo server and the client, scripted through pipes."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import free_port, start_process, wait_for_line


def test_client_sends_lines_and_prints_replies() -> None:
    port = free_port()
    server = start_process([sys.executable, "-m", "wsio", "serve", "--echo", str(port)])
    try:
        wait_for_line(server, "echo server on")
        result = subprocess.run(
            [sys.executable, "-m", "wsio", f"ws://127.0.0.1:{port}/"],
            input="hello\nsecond line\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< hello", "< second line"]
    assert "Connection closed: code 1000" in result.stderr


def test_client_reports_a_refused_connection() -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "wsio", f"ws://127.0.0.1:{port}/"],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert f"Failed to connect to ws://127.0.0.1:{port}/" in result.stderr


def test_client_rejects_a_bad_header_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsio", "ws://127.0.0.1:1/", "--header", "no colon here"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "expected 'Name: value'" in result.stderr


def test_serve_needs_a_target() -> None:
    result = subprocess.run([sys.executable, "-m", "wsio", "serve"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "--echo PORT or module:handler" in result.stderr
