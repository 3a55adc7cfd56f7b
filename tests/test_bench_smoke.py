"""The benchmark suite works: `python -m bench --smoke` runs every scenario once, with tiny counts.

Timings are not tests: this checks only that each scenario gives a number for
each implementation it ran, and that replies were right (smoke mode verifies
every echo). Implementations whose library isn't installed are skipped by the
suite, and this test checks that the skip was for that reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import ROOT

sys.path.insert(0, ROOT)

from bench import clients, servers  # noqa: E402
from bench.run import available  # noqa: E402

pytestmark = pytest.mark.timeout(420)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def run_bench(out: Any, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m bench --smoke --no-charts --out OUT ARGS``; fails the test unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--smoke", "--no-charts", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    proc = run_bench(out, timeout=400)
    assert "load generator" in proc.stdout  # says which client drives the servers
    assert (out / "latest.md").exists()
    return json.loads((out / "latest.json").read_text())


def test_every_installed_implementation_ran(results: dict) -> None:
    meta = results["meta"]
    for side, registry in (("server", servers), ("client", clients)):
        ran = set(meta[f"{side}s"])
        expected, missing = available(registry.REQUIRES, list(registry.REQUIRES))
        assert ran == set(expected)
        assert {"wsio_asyncio", "wsio_listener"} <= ran
        for name in missing:
            assert meta["skipped"][f"{side} {name}"].endswith("is not installed")
    if installed("picows"):
        assert "picows" in meta["load_generator"]


@pytest.mark.parametrize("side", ["server", "client"])
def test_a_number_for_every_scenario_and_implementation(results: dict, side: str) -> None:
    registry = servers if side == "server" else clients
    cases = results[side]
    expected_cases = {
        "server": {"pingpong-16B", "pingpong-1KiB", "pingpong-64KiB", "pingpong-1MiB", "pipelined-16B", "pipelined-1MiB",
                   "connrate", "deflate-pingpong-1KiB", "deflate-pipelined-1KiB"},
        "client": {"pingpong-16B", "pingpong-1MiB", "pipelined-1KiB", "connrate", "deflate-pingpong-1KiB"},
    }[side]
    assert expected_cases <= set(cases)
    if side == "server":
        assert any(c.startswith("conns") for c in cases)
        assert any(c.startswith("broadcast") for c in cases)
        assert sum(c.startswith("idle") for c in cases) == 2  # with and without compression
    problems = []
    for case, entry in cases.items():
        for impl in results["meta"][f"{side}s"]:
            r = entry["results"][impl]
            if "na" in r:
                # Only "no compression" is an acceptable gap.
                if not (case.startswith(("deflate", "idle")) and "deflate" in case and impl in registry.NO_DEFLATE):
                    problems.append(f"{case} {impl}: n/a")
            elif not isinstance(r.get("median"), (int, float)):
                problems.append(f"{case} {impl}: {r.get('error', r)}")
            elif entry["unit"] != "KiB/conn" and r["median"] <= 0:  # memory may not grow for a few connections
                problems.append(f"{case} {impl}: {r.get('error', r)}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the ASGI suite (--suite asgi)


@pytest.fixture(scope="module")
def asgi_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    expected, _ = available(servers.ASGI_REQUIRES, list(servers.ASGI_REQUIRES))
    # The test extra installs uvicorn, starlette, httptools and uvloop: a missing one is a failure, not a skip.
    assert "uvicorn_wsio" in expected, "the ASGI suite needs uvicorn, starlette, httptools and uvloop"
    out = tmp_path_factory.mktemp("bench-asgi")
    run_bench(out, "--suite", "asgi", timeout=120)
    assert "## Targets" in (out / "asgi.md").read_text()
    assert not (out / "latest.json").exists()  # the main suite's results are left alone
    return json.loads((out / "asgi.json").read_text())


def test_asgi_suite_runs_every_engine_once(asgi_results: dict) -> None:
    meta = asgi_results["meta"]
    assert meta["suite"] == "asgi"
    expected, missing = available(servers.ASGI_REQUIRES, list(servers.ASGI_REQUIRES))
    assert set(meta["servers"]) == set(expected)
    for name in missing:
        assert meta["skipped"][f"server {name}"].endswith("is not installed")
    assert asgi_results["client"] == {}  # servers only
    cases = asgi_results["server"]
    assert {"connrate", "pingpong-16B", "pipelined-16B"} <= set(cases)
    assert any(c.startswith("conns") for c in cases) and any(c.startswith("idle") for c in cases)
    problems = []
    for case, entry in cases.items():
        for impl in meta["servers"]:
            r = entry["results"][impl]
            if impl in servers.IDLE_ONLY and not case.startswith("idle"):
                if "na" not in r:  # the floor only holds idle connections
                    problems.append(f"{case} {impl}: {r}")
            elif not isinstance(r.get("median"), (int, float)) or (entry["unit"] != "KiB/conn" and r["median"] <= 0):
                problems.append(f"{case} {impl}: {r.get('error', r)}")
    assert not problems, "\n".join(problems)
