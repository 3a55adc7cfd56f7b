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
        expected, missing = available(
            registry.REQUIRES,
            list(registry.REQUIRES),
            getattr(registry, "PROGRAMS", None),
            getattr(registry, "SHARED_LIBRARIES", None),
        )
        assert ran == set(expected)
        assert {"wsio_asyncio", "wsio_listener"} <= ran
        if side == "server":
            # The test extra installs socketify and make's system-deps Debian's libuv1 it loads; the C
            # reference needs only cc (wsio's own accelerator does too): a missing one is a failure, not a skip.
            assert {"socketify_server", "c_epoll"} <= ran, meta["skipped"]
        for name in missing:
            assert meta["skipped"][f"{side} {name}"].endswith("is not installed")
    if installed("picows"):
        assert "picows" in meta["load_generator"]
    assert meta["event_loop"].startswith("asyncio")  # without --uvloop
    assert meta["malloc_env"] == {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    assert meta["server_loops"]["wsio_asyncio"] == "asyncio"
    assert meta["server_loops"]["c_epoll"] == "epoll"


def test_a_missing_program_or_shared_library_is_a_skip_with_its_reason() -> None:
    keep, missing = available(
        servers.REQUIRES,
        ["socketify_server", "c_epoll", "tcp_echo"],
        {"c_epoll": ["no-such-compiler"]},
        {"socketify_server": {"no-such-library": "libno-such-library1"}},
    )
    assert keep == ["tcp_echo"]
    assert missing["c_epoll"] == "no-such-compiler is not installed"
    assert "apt-get install -y libno-such-library1" in missing["socketify_server"]


def test_the_c_reference_builds_and_answers_a_websocket_client(tmp_path: Any) -> None:
    """bench/native/ws_echo.c, built with cc -O2 into a cache dir, against a client that isn't the load generator."""
    from websockets.sync.client import connect

    from bench.native import build
    from bench.procs import free_port

    binary = build("ws_echo")
    assert build("ws_echo") == binary  # cached: the same source isn't compiled twice
    port = free_port()
    server = subprocess.Popen([binary, str(port), "echo"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline().removeprefix("READY "))
        assert ready["pid"] == server.pid and ready["loop"] == "epoll"
        with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
            ws.send("héllo")
            assert ws.recv() == "héllo"
            big = os.urandom(3 * 1024 * 1024 + 5)  # streamed through a 256 KiB read buffer
            ws.send(big)
            assert ws.recv() == big
            ws.send([b"frag", b"mented"])  # continuation frames, echoed as they come
            assert ws.recv() == b"fragmented"
            assert ws.ping(b"are you there").wait(5)
            ws.close(4000, "done")
        assert (ws.close_code, ws.close_reason) == (4000, "done")  # the close frame echoed
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.timeout(120)
def test_the_c_connrate_generator_counts_handshakes_and_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/native/ws_connrate.c, connrate's load generator, against the C reference and the TCP echo."""
    import asyncio

    from bench import loadgen
    from bench.native import build
    from bench.procs import free_port

    generator = build("ws_connrate")

    def connrate(port: int, proto: str, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([generator, str(port), "8", "0.1", "0.5", proto, *more], capture_output=True, text=True, timeout=30)

    ws_port, tcp_port = free_port(), free_port()
    ws_server = subprocess.Popen([build("ws_echo"), str(ws_port), "echo"], stdout=subprocess.PIPE, text=True)
    tcp_server = subprocess.Popen(
        [sys.executable, "-m", "bench.servers.tcp_echo", "--port", str(tcp_port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        for server in (ws_server, tcp_server):
            assert server.stdout is not None
            assert server.stdout.readline().startswith("READY ")  # it listens
        for port, proto, server in ((ws_port, "ws", ws_server), (tcp_port, "tcp", tcp_server)):
            proc = connrate(port, proto, str(server.pid))
            assert proc.returncode == 0, proc.stderr
            out = json.loads(proc.stdout)
            assert out["count"] > 0 and out["rate"] > 0, out
            assert 0.5 <= out["elapsed"] < 5 and abs(out["rate"] - out["count"] / out["elapsed"]) < 1, out
            assert 0 <= out["busy"] <= out["cpu"] + 0.01 and out["server_cpu"] >= 0, out
        # A server that doesn't answer the upgrade with 101 (the TCP echo sends the request back).
        proc = connrate(tcp_port, "ws")
        assert proc.returncode == 1 and "the upgrade was refused: GET / HTTP/1.1" in proc.stderr and not proc.stdout
        # Through the load generator's op, in the shape the runner reads.
        monkeypatch.delenv("BENCH_LOADGEN", raising=False)
        cmd = {"op": "connrate", "proto": "ws", "port": ws_port, "concurrency": 8, "warmup": 0.1, "duration": 0.5}
        out = asyncio.run(loadgen.op_connrate({**cmd, "server_pid": ws_server.pid}))
        assert out["generator"] == "C" and out["count"] > 0 and out["rate"] > 0, out
        assert {"elapsed", "loadgen_cpu", "loadgen_cpu_total", "server_cpu"} <= set(out)
    finally:
        for server in (ws_server, tcp_server):
            server.terminate()
            server.wait(10)
    # Nothing listens: an error, not a figure.
    proc = connrate(free_port(), "ws")
    assert proc.returncode == 1 and "connect: Connection refused" in proc.stderr and not proc.stdout
    with pytest.raises(RuntimeError, match="Connection refused"):
        asyncio.run(loadgen.op_connrate({**cmd, "port": free_port()}))


@pytest.fixture(scope="module")
def uvloop_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # uvloop is in the test extra: a missing one is a failure, not a skip.
    assert installed("uvloop"), "python -m bench --uvloop needs uvloop (the test extra installs it)"
    out = tmp_path_factory.mktemp("bench-uvloop")
    run_bench(
        out,
        "--uvloop",
        "--groups",
        "pingpong",
        "--servers",
        "wsio_asyncio,picows_core,socketify_server,c_epoll",
        "--clients",
        "wsio_asyncio,wsio_sync",
        timeout=120,
    )
    assert "Event loop: uvloop" in (out / "latest.md").read_text()
    return json.loads((out / "latest.json").read_text())


def test_a_run_names_the_allocator_settings_every_process_inherited(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # glibc's malloc settings change the large-message figures by up to 2x
    # (docs/topics/performance.md): a results file made with them must say so.
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "67108864")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    run_bench(tmp_path, "--side", "server", "--groups", "conns-1MiB", "--servers", "wsio_listener", timeout=120)
    text = (tmp_path / "latest.md").read_text()
    assert "Allocator: MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=67108864 for every process." in text
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["meta"]["malloc_env"] == {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "67108864"}
    assert data["server"]["conns2-1MiB"]["results"]["wsio_listener"]["median"] > 0


def test_uvloop_runs_the_asyncio_servers_clients_and_load_generator_on_uvloop(uvloop_results: dict) -> None:
    meta = uvloop_results["meta"]
    assert meta["event_loop"].startswith("uvloop")
    assert meta["load_generator_loop"] == "uvloop"
    loops = meta["server_loops"]
    assert loops["wsio_asyncio"] == loops["picows_core"] == "uvloop"
    assert loops["c_epoll"] == "epoll" and loops["socketify_server"].startswith("libuv")  # their own loops
    assert meta["client_loops"] == {"wsio_asyncio": "uvloop", "wsio_sync": "threads"}
    for side in ("server", "client"):
        for case, entry in uvloop_results[side].items():
            for impl, r in entry["results"].items():
                assert r.get("median", 0) > 0, f"{side} {case} {impl}: {r}"


@pytest.mark.parametrize("side", ["server", "client"])
def test_a_number_for_every_scenario_and_implementation(results: dict, side: str) -> None:
    registry = servers if side == "server" else clients
    cases = results[side]
    expected_cases = {
        "server": {
            "pingpong-16B",
            "pingpong-1KiB",
            "pingpong-64KiB",
            "pingpong-1MiB",
            "pipelined-16B",
            "pipelined-1MiB",
            "conns2-1MiB",  # several large messages alive at once (smoke mode: 2 connections)
            "connrate",
            "deflate-pingpong-1KiB",
            "deflate-pipelined-1KiB",
        },
        "client": {"pingpong-16B", "pingpong-1MiB", "pipelined-1KiB", "connrate", "deflate-pingpong-1KiB"},
    }[side]
    assert expected_cases <= set(cases)
    assert any(c.startswith("conns") for c in cases)
    if side == "server":
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


@pytest.mark.timeout(120)
def test_the_c_echo_generator_counts_whole_messages_and_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/native/ws_echo_load.c, the echo scenarios' load generator: against the C reference and wsio's
    callback server (messages of every size, pipelined, many connections), and the TCP echo (tcp mode; no 101)."""
    import asyncio

    from bench import loadgen
    from bench.native import build
    from bench.procs import free_port

    generator = build("ws_echo_load")

    def echo(port: int, size: int, window: int, conns: int, *more: str, proto: str = "ws") -> subprocess.CompletedProcess[str]:
        args = [generator, str(port), str(size), str(window), str(conns), "0.1", "0.4", proto, *more]
        return subprocess.run(args, capture_output=True, text=True, timeout=30)

    c_port, wsio_port, tcp_port = free_port(), free_port(), free_port()
    servers = [
        subprocess.Popen([build("ws_echo"), str(c_port), "echo"], stdout=subprocess.PIPE, text=True),
        subprocess.Popen(
            [sys.executable, "-m", "bench.servers.wsio_listener", "--port", str(wsio_port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "bench.servers.tcp_echo", "--port", str(tcp_port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        ),
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            assert server.stdout.readline().startswith("READY ")  # it listens
        for port, server in ((c_port, servers[0]), (wsio_port, servers[1])):
            # Ping-pong, pipelined across the 125-byte and 64 KiB frame-length forms, many connections.
            for size, window, conns in ((16, 1, 1), (1000, 64, 1), (70000, 8, 1), (1 << 20, 2, 1), (64, 1, 20)):
                proc = echo(port, size, window, conns, str(server.pid))
                assert proc.returncode == 0, (size, window, conns, proc.stderr)
                out = json.loads(proc.stdout)
                assert out["count"] >= 3 and out["rate"] > 0, out
                # elapsed has 6 decimals: at millions a second, the rate is that close.
                assert 0.4 <= out["elapsed"] < 5 and abs(out["rate"] - out["count"] / out["elapsed"]) < 1 + out["rate"] * 1e-5, (
                    out
                )
                assert 0 <= out["busy"] <= out["cpu"] + 0.01 and out["server_cpu"] > 0, out
        # Without WebSocket, against the TCP echo (the limit): SIZE bytes back are a message.
        for size, window, conns in ((16, 1, 1), (1000, 64, 1), (1 << 20, 2, 1), (64, 1, 20)):
            proc = echo(tcp_port, size, window, conns, str(servers[2].pid), proto="tcp")
            assert proc.returncode == 0, (size, window, conns, proc.stderr)
            out = json.loads(proc.stdout)
            assert out["count"] >= 3 and out["server_cpu"] > 0, out
        # A server that doesn't answer the upgrade with 101 (the TCP echo sends the request back).
        proc = echo(tcp_port, 16, 1, 1)
        assert proc.returncode == 1 and "the upgrade was refused: GET / HTTP/1.1" in proc.stderr and not proc.stdout
        # Through the load generator's op, in the shape the runner reads; a Python client when asked.
        cmd = {"op": "echo", "proto": "ws", "port": c_port, "size": 64, "window": 4, "conns": 2, "warmup": 0.1, "duration": 0.4}
        monkeypatch.delenv("BENCH_LOADGEN", raising=False)
        out = asyncio.run(loadgen.op_echo({**cmd, "server_pid": servers[0].pid}))
        assert out["generator"] == "C" and out["count"] > 0 and out["rate"] > 0, out
        assert {"elapsed", "loadgen_cpu", "loadgen_cpu_total", "server_cpu"} <= set(out)
        out = asyncio.run(loadgen.op_echo({**cmd, "port": wsio_port, "deflate": True}))  # compression: picows' client
        assert out["generator"] == "python" and out["count"] > 0, out
        monkeypatch.setenv("BENCH_LOADGEN", "picows")
        out = asyncio.run(loadgen.op_echo(cmd))
        assert out["generator"] == "python" and out["count"] > 0, out
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    # Nothing listens: an error, not a figure.
    proc = echo(free_port(), 16, 1, 1)
    assert proc.returncode == 1 and "Connection refused" in proc.stderr and not proc.stdout
