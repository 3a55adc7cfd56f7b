"""The Autobahn TestSuite (through kosoku) against the wsio server and the wsio client.

Every one of the 517 cases must end OK or INFORMATIONAL, for the message
exchange and for the closing handshake: no FAILED, NON-STRICT, UNIMPLEMENTED
or ERROR. The HTML and JSON reports stay in reports/autobahn/ for CI.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.helpers import free_port, start_process, wait_for_line

HERE = pathlib.Path(__file__).parent
REPORTS = pathlib.Path(__file__).parents[2] / "reports" / "autobahn"
ALL_CASES = 517
CLIENT_SCRIPTS = {"asyncio": "fuzzing_client.py", "sync": "fuzzing_client_sync.py"}
ACCEPTED = {"OK", "INFORMATIONAL"}


def kosoku_command() -> list[str]:
    script = pathlib.Path(sys.executable).parent / "kosoku"
    return [str(script)] if script.exists() else ["kosoku"]


def read_results(outdir: pathlib.Path) -> dict[str, tuple[str, str]]:
    results = {}
    for path in outdir.glob("*_case_*.json"):
        case = json.loads(path.read_text())
        results[case["id"]] = (case["behavior"], case["behaviorClose"])
    return results


def assert_all_pass(results: dict[str, tuple[str, str]], cases: int = ALL_CASES) -> None:
    bad = {case: verdict for case, verdict in results.items() if not set(verdict) <= ACCEPTED}
    assert not bad, f"{len(bad)} cases not OK: {dict(sorted(bad.items())[:20])}"
    assert len(results) == cases


def fuzz_server(
    command: list[str], port: int, outdir: pathlib.Path, exclude: tuple[str, ...] = (), cases: int = ALL_CASES
) -> None:
    """Start the echo server ``command`` (it prints "listening" on ``port``), run the cases against it, check them."""
    server = start_process(command)
    try:
        wait_for_line(server, "listening")
        subprocess.run(
            [*kosoku_command(), f"127.0.0.1:{port}", "-p", "2", "-o", str(outdir), *(f"-x{case}" for case in exclude)],
            check=False,
            timeout=1500,
            capture_output=True,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert_all_pass(read_results(outdir), cases)


@pytest.mark.timeout(1800)
def test_server(tmp_path: pathlib.Path) -> None:
    port = free_port()
    fuzz_server([sys.executable, str(HERE / "echo_server.py"), str(port)], port, REPORTS / "server")


# The callback API's server reads whole single-frame messages in C (ReadLane) and hands
# everything else to the same core as the asyncio server above, which runs every case.
# Left out here, for time (~200 s of CPU; all 517 pass against it, run by hand): the
# compression cases (12.x, 13.x: compressed frames always take the core's path) and
# 9.1-9.6 (messages of 64 KiB to 16 MiB, in frames that mostly span several reads: the
# core's path too); 9.7 and 9.8 (many small messages) stay.
CALLBACK_EXCLUDED = ("12.*", "13.*", "9.1.*", "9.2.*", "9.3.*", "9.4.*", "9.5.*", "9.6.*")
CALLBACK_CASES = 259


@pytest.mark.timeout(900)
def test_server_callback_api() -> None:
    port = free_port()
    command = [sys.executable, str(HERE / "echo_server.py"), str(port), "callback"]
    fuzz_server(command, port, REPORTS / "server-callback", CALLBACK_EXCLUDED, CALLBACK_CASES)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("client", ["asyncio", "sync"])
def test_client(client: str) -> None:
    outdir = REPORTS / f"client-{client}"
    port = free_port()
    fuzzing_server = start_process(
        [*kosoku_command(), "-m", "fuzzingserver", f"127.0.0.1:{port}", "-o", str(outdir)], stderr_to_stdout=True
    )
    try:
        wait_for_line(fuzzing_server, "listening")
        subprocess.run(
            [sys.executable, str(HERE / CLIENT_SCRIPTS[client]), f"ws://127.0.0.1:{port}", f"wsio-{client}"],
            check=True,
            timeout=1500,
        )
        fuzzing_server.wait(60)
    finally:
        if fuzzing_server.poll() is None:
            fuzzing_server.terminate()
            fuzzing_server.wait(10)
    assert_all_pass(read_results(outdir))
