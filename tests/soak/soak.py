"""Soak: thousands of connections with churn and mixed traffic, then nothing may be left behind.

``python tests/soak/soak.py [--seconds 900] [--connections 2000] [--mode asyncio]``

A wsio server runs in one process (``tests/hostile/server.py``, default
settings) and the load generator (``tests/soak/load.py``, wsio asyncio
clients) in another, so that each has a core. After a warm-up with the full
load, the server's file descriptors, asyncio tasks, Python objects and RSS are read through
``GET /stats`` (from ``/proc``, in the server process) once every connection
has closed; then the load runs for the given time, and once it has ended and
every connection has closed the same numbers must be back: fds, tasks and
threads exactly, Python objects and RSS within 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from tests.helpers import wait_for_line  # noqa: E402

SERVER_SCRIPT = os.path.join(ROOT, "tests", "hostile", "server.py")
LOAD_SCRIPT = os.path.join(HERE, "load.py")
RSS_TOLERANCE = 0.10
#: The server runs with allocations of 64 KiB and more served by mmap(), which
#: gives them back to the system when freed. With glibc's defaults, the churn of
#: 64 KiB-sized blocks (zlib's compression state, asyncio's receive buffers)
#: fragments the heap, and RSS creeps up while nothing is leaked: measured over
#: 15 minutes, +16% RSS with Python objects and allocator blocks back to their
#: start; with this setting, -0.1% over 4 minutes. A real leak keeps its memory
#: mapped either way, so the check still catches one; ``--default-malloc`` shows
#: the other figure.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_idle(port: int, timeout: float = 60) -> dict[str, Any]:
    """Wait until the server holds no connection (the /stats one aside) and has settled; return its stats then.

    Settled: file descriptors, tasks and threads the same in three snapshots in
    a row, 0.25 s apart. Handler tasks and threads finish a moment after their
    connection, later on a busy machine: one snapshot taken a fixed time after
    the last connection closed may count some of them, at the start or at the end.
    """
    deadline = time.monotonic() + timeout
    previous: tuple[int, int, int] | None = None
    same = 0
    while True:
        current = stats(port)
        if current["connections"] == 0:
            key = (current["fds"], current["tasks"], current["threads"])
            same = same + 1 if key == previous else 0
            previous = key
            if same >= 2:
                return current
        else:
            previous, same = None, 0
        if time.monotonic() > deadline:
            raise AssertionError(f"the server didn't settle {timeout}s after the load stopped: {current}")
        time.sleep(0.25)


def run_load(port: int, seconds: float, connections: int, seed: int, progress: bool) -> dict[str, Any]:
    """Run the load generator for ``seconds``; sample the server meanwhile; return the load's counts and the peaks."""
    load = subprocess.Popen(
        [sys.executable, LOAD_SCRIPT, str(port), str(seconds), str(connections), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    peak: dict[str, int] = {"connections": 0, "rss_kib": 0, "fds": 0}
    started = time.monotonic()
    try:
        while load.poll() is None:
            time.sleep(2)
            try:
                sample = stats(port)
            except (urllib.error.URLError, TimeoutError):
                continue  # a busy moment: the next sample will do
            for key in peak:
                peak[key] = max(peak[key], sample[key])
            if progress:
                print(
                    f"  t={time.monotonic() - started:5.0f}s connections={sample['connections']} fds={sample['fds']} "
                    f"tasks={sample['tasks']} rss={sample['rss_kib'] // 1024} MiB",
                    flush=True,
                )
        out, _ = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()  # our own child, by its handle
            load.wait()
    if load.returncode != 0:
        raise AssertionError(f"the load generator failed ({load.returncode}): {out[-2000:]}")
    counts = json.loads(out.strip().splitlines()[-1])
    counts["server_peak"] = peak
    return counts


def soak(
    seconds: float,
    connections: int = 2000,
    mode: str = "asyncio",
    warmup: float | None = None,
    progress: bool = True,
    default_malloc: bool = False,
) -> dict[str, Any]:
    """Run the soak; return the numbers; raise AssertionError if something was left behind.

    ``default_malloc`` runs the server with glibc's default malloc settings
    instead of :data:`MALLOC_ENV` (see there why).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The warm-up must reach the steady mix (sessions live up to 30 s) so that the
    # allocator's high-water mark is set before the start is measured.
    warmup = warmup if warmup is not None else max(60.0, seconds * 0.1)
    # The threaded server holds at most 1,000 connections by default: the soak asks for what it needs.
    options = {"max_connections": connections + 500} if mode == "sync" else {}
    server = subprocess.Popen(
        [sys.executable, SERVER_SCRIPT, mode, "0", json.dumps(options)],  # 0: it says which port
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # thousands of INFO lines; the hostile tests check the log
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **({} if default_malloc else MALLOC_ENV)},
    )
    try:
        port = int(wait_for_line(server, "listening ").split()[1])
        if progress:
            print(f"warm-up: {warmup:.0f}s with {connections} connections", flush=True)
        warm = run_load(port, warmup, connections, seed=1, progress=progress)
        start = wait_idle(port)
        if progress:
            print(f"after warm-up: {start}", flush=True)
            print(f"soak: {seconds:.0f}s with {connections} connections", flush=True)
        load = run_load(port, seconds, connections, seed=2, progress=progress)
        end = wait_idle(port)
        if progress:
            print(f"after the soak: {end}", flush=True)
        growth = (end["rss_kib"] - start["rss_kib"]) / start["rss_kib"]
        result = {
            "mode": mode,
            "seconds": seconds,
            "warmup": warm,
            "load": load,
            "start": start,
            "end": end,
            "rss_growth": round(growth, 4),
        }
        assert load.get("wrong_echo", 0) == 0, result
        assert load["server_peak"]["connections"] >= connections * 0.9, (
            f"the load never reached {connections} connections: {result}"
        )
        assert end["fds"] == start["fds"], f"file descriptors left behind: {start['fds']} -> {end['fds']}"
        assert end["tasks"] == start["tasks"], f"tasks left behind: {start['tasks']} -> {end['tasks']}"
        assert end["threads"] == start["threads"], f"threads left behind: {start['threads']} -> {end['threads']}"
        assert end["objects"] <= start["objects"] * (1 + RSS_TOLERANCE), (
            f"Python objects left behind: {start['objects']} -> {end['objects']}"
        )
        assert end["blocks"] <= start["blocks"] * (1 + RSS_TOLERANCE), (
            f"allocator blocks left behind: {start['blocks']} -> {end['blocks']}"
        )
        assert abs(growth) <= RSS_TOLERANCE, f"RSS {start['rss_kib']} KiB -> {end['rss_kib']} KiB ({growth:+.1%})"
        return result
    finally:
        server.terminate()  # our own child, by its handle
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description="wsio soak test")
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--mode", choices=["asyncio", "sync"], default="asyncio")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="glibc's default malloc settings for the server (RSS then creeps up by fragmentation)",
    )
    args = parser.parse_args()
    result = soak(args.seconds, args.connections, args.mode, args.warmup, default_malloc=args.default_malloc)
    print(json.dumps(result, indent=2))
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
