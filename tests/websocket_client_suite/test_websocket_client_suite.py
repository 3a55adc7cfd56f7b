"""websocket-client's own test suite, unedited, against ``wsio.websocket_client``.

The test downloads websocket-client's source distribution once (into
``.cache/websocket-client/`` of the checkout, with pip), copies its
``websocket/tests/`` folder byte for byte, starts the suite's echo server as
its CI does (``websocket/tests/echo-server.py`` with ``LOCAL_WS_SERVER_PORT``,
here on a free loopback port) and runs the suite with pytest in a
subprocess where ``import websocket`` gives wsio's mirror (the
``websocket_alias`` plugin next to this file).

Every test must pass, except those listed in :data:`EXCEPTED` (each with why)
and the ones the suite itself skips: it reaches the internet only with
``TEST_WITH_INTERNET=1``, which a test run on loopback doesn't set.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

VERSION = "1.9.2"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "websocket-client"
HERE = Path(__file__).resolve().parent

_REDIRECT_MOCKS = (
    "They replace websocket-client's private websocket._core.connect and websocket._core.handshake "
    "with mocks to drive WebSocket.connect()'s redirect loop. wsio's WebSocket.connect() opens the "
    "connection with wsio's own client, which follows redirects itself (redirect_limit), so the mocks "
    "are never called. The behaviours are tested against real servers in tests/sync/test_compat.py: "
    "test_redirects_followed_up_to_the_limit, test_bad_redirects_raise."
)

#: Tests that pin down websocket-client internals real programs have no reason
#: to depend on, which wsio's mirror doesn't reproduce: test id -> why.
EXCEPTED: dict[str, str] = {
    "websocket_tests/test_websocket.py::WebSocketCoreUnitTests::test_connect_handles_redirects": _REDIRECT_MOCKS,
    "websocket_tests/test_websocket.py::WebSocketCoreUnitTests::test_connect_redirect_invalid_target_raises": _REDIRECT_MOCKS,
    "websocket_tests/test_websocket.py::WebSocketCoreUnitTests::test_connect_redirect_limit_exhausted_raises": _REDIRECT_MOCKS,
    "websocket_tests/test_websocket.py::WebSocketCoreUnitTests::test_connect_redirect_without_location_raises": _REDIRECT_MOCKS,
    "websocket_tests/test_app.py::WebSocketAppTest::test_reconnect": (
        "Left excepted on purpose: matching it would be wrong for users. The reconnection it tests "
        "works (its pong_count == 2 assertion passes); its last assertion is which error on_error gets "
        "after on_pong calls app.sock.shutdown(), which closes the socket under the running "
        "run_forever(ping_interval=2, ping_timeout=1, reconnect=3). In websocket-client 1.9.2 the "
        "closed descriptor silently leaves the dispatcher's selector (epoll drops it), so nothing reads "
        "the socket any more: the ping thread's next ping fails to send (logged at debug level only), "
        "and one ping_timeout later check() raises WebSocketTimeoutException('ping/pong timed out'), "
        "about 3 s after the shutdown. No ping timed out: the application closed the connection. "
        "Without ping_interval, websocket-client never notices at all and run_forever() neither "
        "returns nor reconnects. wsio's reader notices the shutdown at once and reports "
        "WebSocketConnectionClosedException('Connection is already closed.'), then reconnects after "
        "reconnect seconds, with or without keepalive. A real keepalive timeout (a peer that stops "
        "answering) is reported as WebSocketTimeoutException('ping/pong timed out') by wsio too "
        "(tests/sync/test_compat.py::test_app_keepalive_timeout_is_reported_as_timeout)."
    ),
}

#: Why the suite skips tests by itself: 15 need the internet, one its authors disabled.
EXPECTED_SKIP_REASONS = ("Internet-requiring tests are disabled", "Test disabled for now (requires rel)")

#: How many of websocket-client 1.9.2's tests pass (all but the excepted and the skipped).
EXPECTED_PASSED = 200


def _sdist() -> Path:
    """websocket-client's sdist, downloaded once (pip's own cache makes a retry cheap)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"websocket_client-{VERSION}.tar.gz"
    if not archive.exists():
        for attempt in range(3):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"websocket-client=={VERSION}",
                    "-d",
                    str(CACHE),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode == 0 and archive.exists():
                break
            time.sleep(2 * (attempt + 1))
        else:
            pytest.fail(f"couldn't download websocket-client {VERSION} with pip:\n{result.stdout}\n{result.stderr}")
    return archive


def _suite(tmp_path: Path) -> Path:
    """The suite's ``websocket/tests/`` folder, as shipped, in ``tmp_path/websocket_tests``."""
    prefix = f"websocket_client-{VERSION}/websocket/tests/"
    target = tmp_path / "websocket_tests"
    with tarfile.open(_sdist()) as archive:
        for member in archive.getmembers():
            if member.name.startswith(prefix) and member.isfile():
                destination = target / member.name[len(prefix) :]
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                destination.write_bytes(source.read())
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the suite's echo server exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the suite's echo server isn't listening on port {port} after {timeout} s")


def _outcomes(report: str) -> dict[str, str]:
    """``test id -> PASSED / FAILED / ERROR / SKIPPED`` from pytest's ``-rA`` summary."""
    outcomes = {}
    for line in report.splitlines():
        match = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", line)
        if match:
            outcomes[match.group(2)] = match.group(1)
    return outcomes


@pytest.mark.timeout(600)
def test_websocket_client_suite(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    port = _free_port()
    env = {
        **os.environ,
        "LOCAL_WS_SERVER_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    env.pop("TEST_WITH_INTERNET", None)
    server = subprocess.Popen(
        [sys.executable, str(suite / "echo-server.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_listening(port, server)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "websocket_alias",
                "-p",
                "no:cacheprovider",
                "-q",
                "-rA",
                "--timeout=60",
                "--continue-on-collection-errors",
                "-o",
                "addopts=",
                str(suite),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
    finally:
        server.kill()
        server.communicate()
    report = result.stdout + result.stderr
    outcomes = _outcomes(report)
    assert outcomes, f"no test ran:\n{report[-5000:]}"
    failed = sorted(test for test, outcome in outcomes.items() if outcome in ("FAILED", "ERROR") and test not in EXCEPTED)
    passed_excepted = sorted(test for test in EXCEPTED if outcomes.get(test) == "PASSED")
    skipped = [line for line in report.splitlines() if line.startswith("SKIPPED")]
    unexpected_skips = [line for line in skipped if not any(reason in line for reason in EXPECTED_SKIP_REASONS)]
    assert not failed, f"{len(failed)} websocket-client tests fail on wsio:\n" + "\n".join(failed) + "\n\n" + report[-20000:]
    assert not passed_excepted, f"these excepted tests now pass; remove them from EXCEPTED: {passed_excepted}"
    assert not unexpected_skips, "tests skipped for another reason than internet access:\n" + "\n".join(unexpected_skips)
    passed = sum(outcome == "PASSED" for outcome in outcomes.values())
    excepted = sum(outcome in ("FAILED", "ERROR") for outcome in outcomes.values())
    print(f"websocket-client's suite on wsio: {passed} passed, {excepted} excepted, {len(skipped)} skipped by the suite")
    assert passed >= EXPECTED_PASSED, f"only {passed} tests passed, not {EXPECTED_PASSED}:\n{report[-5000:]}"
