"""100 WebSockets over one HTTP/2 connection vs 100 HTTP/1.1 connections, to the same wsio asyncio server.

Not part of ``make bench`` (the load generator there, picows, has no HTTP/2);
run it by hand::

    python bench/http2_mux.py [--websockets 100] [--repeats 3] [--window 1.0] [--transport both|cleartext|tls]

One wsio asyncio server process (``serve(echo, http2=True)``, compression off,
no keepalive pings) on CPU 0, and wsio's asyncio client in this process on
CPU 1 (``taskset`` / ``sched_setaffinity`` where there are two cores). For
each transport, cleartext (h2c with prior knowledge vs plain HTTP/1.1) and
TLS (ALPN h2 vs HTTP/1.1 over TLS, a ``trustme`` certificate), and for each
protocol, a fresh server process:

- **setup**: seconds from the first ``connect()`` until all ``--websockets``
  handshakes are done, all started at once (over HTTP/2: one TCP, and TLS,
  connection, then a stream each; over HTTP/1.1: one connection each);
- **server memory**: the server's RSS (``/proc/PID/status``) with the
  WebSockets open, minus its RSS before (after a few WebSockets were opened
  and closed, so that lazy imports don't count), per WebSocket;
- **ping-pong**: every WebSocket sends 64 B and waits for the echo, all at
  once: total messages per second over ``--window`` seconds;
- **pipelined**: every WebSocket keeps ``--depth`` messages of 64 B in flight;
- the server's and the client's CPU time over each window (cores: 1.00 is a
  whole core), and messages per server CPU-second, which varies less than
  the rates on a shared machine. A † marks a window where the client (the
  load) used more than 90% of its core: it may be what limited the figure.

The protocols alternate (h1 h2 h1 h2 ...) and each figure is the median of
``--repeats``; ratios are HTTP/2 over HTTP/1.1 (for setup and memory, below 1
means HTTP/2 is better). Results go to stdout, ``bench/results/http2_mux.md``
and ``bench/results/http2_mux.json`` (``--out`` to change the folder), with the
load average before and after. Bounded: each step has a time-out, the server
is ended by its PID and ends itself if this process goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

MESSAGE = b"x" * 64
STEP_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pinned() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


# -- the server process --------------------------------------------------------------


async def serve(port_file: str, certfile: str | None, keyfile: str | None) -> None:
    import wsio

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    context = None
    if certfile is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    async with wsio.serve(
        echo, "127.0.0.1", 0, ssl=context, http2=True, compression=None, ping_interval=None, backlog=1024
    ) as server:
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.rename(port_file + ".tmp", port_file)
        parent = os.getppid()
        while os.getppid() == parent:  # ends itself if the runner goes away
            await asyncio.sleep(0.5)


class Server:
    def __init__(self, tls: tuple[str, str] | None) -> None:
        self.port_file = tempfile.mktemp(prefix="wsio-h2mux-", suffix=".port")
        command = [sys.executable, os.path.abspath(__file__), "--serve", self.port_file]
        if tls is not None:
            command += ["--cert", tls[0], "--key", tls[1]]
        if pinned():
            command = ["taskset", "-c", "0", *command]
        env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
        # taskset execs Python: the PID is the server's own.
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + STEP_TIMEOUT
        while not os.path.exists(self.port_file):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server didn't start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)


# -- the client side (this process) ---------------------------------------------------


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def open_all(url: str, count: int, http2: bool, context: ssl.SSLContext | None) -> tuple[list[Any], float]:
    import wsio

    kwargs: dict[str, Any] = {"compression": None, "ping_interval": None, "http2": http2}
    if context is not None:
        kwargs["ssl"] = context
    start = time.perf_counter()
    websockets = await asyncio.wait_for(asyncio.gather(*(wsio.connect(url, **kwargs) for _ in range(count))), STEP_TIMEOUT)
    return list(websockets), time.perf_counter() - start


async def close_all(websockets: list[Any]) -> None:
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in websockets)), STEP_TIMEOUT)


async def measure(server: Server, websockets: list[Any], window: float, depth: int | None) -> dict[str, float]:
    """Messages per second over ``window`` (after a warm-up), all WebSockets at once."""
    received = 0
    stop = False

    async def pingpong(ws: Any) -> None:
        nonlocal received
        while not stop:
            await ws.send(MESSAGE)
            await ws.recv()
            received += 1

    async def pipelined(ws: Any, depth: int) -> None:
        nonlocal received
        room = asyncio.Semaphore(depth)
        sent = 0

        async def send() -> None:
            nonlocal sent
            while not stop:
                await room.acquire()
                await ws.send(MESSAGE)
                sent += 1

        sending = asyncio.ensure_future(send())
        got = 0
        while True:
            if stop and got >= sent:
                await sending  # it may send one more, past the room it was waiting for
                if got >= sent:
                    break
            await ws.recv()
            got += 1
            received += 1
            room.release()

    tasks = [asyncio.ensure_future(pingpong(ws) if depth is None else pipelined(ws, depth)) for ws in websockets]
    await asyncio.sleep(min(0.3, window / 3))  # warm-up
    count0, server0, client0, t0 = received, server.cpu_seconds(), own_cpu(), time.perf_counter()
    await asyncio.sleep(window)
    count1, server1, client1, t1 = received, server.cpu_seconds(), own_cpu(), time.perf_counter()
    stop = True
    await asyncio.wait_for(asyncio.gather(*tasks), STEP_TIMEOUT)
    elapsed = t1 - t0
    server_cpu = (server1 - server0) / elapsed
    return {
        "msg_per_s": (count1 - count0) / elapsed,
        "server_cpu": server_cpu,
        "client_cpu": (client1 - client0) / elapsed,
        "msg_per_server_cpu_s": (count1 - count0) / max(server1 - server0, 1 / CLOCK_TICKS),
    }


async def one_run(
    tls: tuple[str, str] | None, context: ssl.SSLContext | None, http2: bool, args: argparse.Namespace
) -> dict[str, Any]:
    server = Server(tls)
    try:
        url = f"{'wss' if tls else 'ws'}://localhost:{server.port}/"
        # Warm-up: lazy imports, the h2 machinery, the TLS context, on both ends.
        warm, _ = await open_all(url, 5, http2, context)
        await close_all(warm)
        await asyncio.sleep(0.3)
        rss0 = server.rss_kib()
        websockets, setup = await open_all(url, args.websockets, http2, context)
        ids = {ws.transport.get_extra_info("http2_stream_id") is not None for ws in websockets}
        assert ids == {http2}, f"expected http2={http2} on every WebSocket"
        tcp = len({ws.transport.get_extra_info("sockname") for ws in websockets})
        await asyncio.sleep(0.3)
        rss1 = server.rss_kib()
        result: dict[str, Any] = {
            "setup_s": setup,
            "tcp_connections": tcp,
            "server_kib_per_ws": (rss1 - rss0) / args.websockets,
            "server_rss_delta_kib": rss1 - rss0,
            "pingpong": await measure(server, websockets, args.window, None),
            "pipelined": await measure(server, websockets, args.window, args.depth),
        }
        await close_all(websockets)
        return result
    finally:
        server.stop()


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def spread(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(value)
    middle = statistics.median(values)
    return 100 * (max(values) - min(values)) / 2 / middle if middle else 0.0


ROWS = [
    ("setup of all WebSockets (ms)", ("setup_s",), 1000, "lower"),
    ("server memory (KiB per WebSocket)", ("server_kib_per_ws",), 1, "lower"),
    ("ping-pong (msg/s, all WebSockets)", ("pingpong", "msg_per_s"), 1, "higher"),
    ("ping-pong per server CPU-second", ("pingpong", "msg_per_server_cpu_s"), 1, "higher"),
    ("pipelined (msg/s)", ("pipelined", "msg_per_s"), 1, "higher"),
    ("pipelined per server CPU-second", ("pipelined", "msg_per_server_cpu_s"), 1, "higher"),
]


def report(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# 100 WebSockets: one HTTP/2 connection vs 100 HTTP/1.1 connections (wsio asyncio server)",
        "",
        f"Measured {meta['when']} in {meta['seconds']:.0f} s: {meta['websockets']} WebSockets, median of "
        f"{meta['repeats']} runs (h1 and h2 alternating, a fresh server each), {meta['window']} s windows, "
        f"64 B messages, {meta['depth']} in flight per WebSocket when pipelined; compression off.",
        f"Python {meta['python']} on {meta['platform']}, {meta['cpus']} CPUs; {meta['pinning']}.",
        f"Load average {meta['load_before']} before, {meta['load_after']} after "
        "(above 0 means other work shared the machine: figures are noisier and lower).",
        "Client: wsio's asyncio `connect()` in one process (it is the load, for both protocols); "
        "server: `wsio.serve(echo, http2=True)`, which serves both on one port.",
        "",
        "Ratio is HTTP/2 / HTTP/1.1. Spread is half the min-max range of the runs, in % of the median. "
        "CPU in cores (1.00 is a whole core); † where the client was above 0.9 of a core: it may be what limited the figure.",
    ]
    for transport, runs in results["transports"].items():
        h1, h2 = runs["http1"], runs["http2"]
        title = (
            "cleartext: h2c (prior knowledge) vs HTTP/1.1" if transport == "cleartext" else "TLS: h2 (ALPN) vs HTTP/1.1 over TLS"
        )
        lines += ["", f"## {title}", "", "| figure | HTTP/1.1 | HTTP/2 | ratio | better |", "|---|---|---|---|---|"]
        for name, path, scale, better in ROWS:
            a, b = median_of(h1, *path), median_of(h2, *path)
            ratio = b / a if a else float("nan")
            good = "HTTP/2" if (ratio < 1) == (better == "lower") else "HTTP/1.1"
            lines.append(
                f"| {name} | {a * scale:,.1f} ±{spread(h1, *path):.0f}% | {b * scale:,.1f} ±{spread(h2, *path):.0f}% "
                f"| {ratio:.2f}x | {good} |"
            )
        for scenario in ("pingpong", "pipelined"):
            cpu = []
            for label, group in (("HTTP/1.1", h1), ("HTTP/2", h2)):
                server = median_of(group, scenario, "server_cpu")
                client = median_of(group, scenario, "client_cpu")
                mark = " †" if client > 0.9 else ""
                cpu.append(f"{label} server {server:.2f}, client {client:.2f}{mark}")
            lines.append(f"| {scenario} CPU (cores) | {cpu[0]} | {cpu[1]} | | |")
        lines.append(f"| TCP connections | {median_of(h1, 'tcp_connections'):.0f} | {median_of(h2, 'tcp_connections'):.0f} | | |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    transports = ["cleartext", "tls"] if args.transport == "both" else [args.transport]
    results: dict[str, Any] = {"transports": {}}
    tls_files: tuple[str, str] | None = None
    contexts: dict[bool, ssl.SSLContext | None] = {False: None, True: None}
    if "tls" in transports:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("localhost")
        directory = tempfile.mkdtemp(prefix="wsio-h2mux-")
        certfile, keyfile = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        cert.private_key_and_cert_chain_pem.write_to_path(certfile)
        cert.private_key_pem.write_to_path(keyfile)
        tls_files = (certfile, keyfile)
        for http2 in (False, True):
            # HTTP/1.1 offers no ALPN (as a client without http2 does): offered h2, the server would pick it.
            context = contexts[http2] = ssl.create_default_context()
            ca.configure_trust(context)
            if http2:
                context.set_alpn_protocols(["h2", "http/1.1"])
    for transport in transports:
        runs: dict[str, list[dict[str, Any]]] = {"http1": [], "http2": []}
        tls = tls_files if transport == "tls" else None
        for repeat in range(args.repeats):
            for http2 in (False, True):
                run = await one_run(tls, contexts[http2] if tls else None, http2, args)
                runs["http2" if http2 else "http1"].append(run)
                print(
                    f"{transport} {'h2' if http2 else 'h1'} #{repeat + 1}: setup {run['setup_s'] * 1000:.0f} ms, "
                    f"{run['server_kib_per_ws']:.1f} KiB/ws, ping-pong {run['pingpong']['msg_per_s']:,.0f} msg/s, "
                    f"pipelined {run['pipelined']['msg_per_s']:,.0f} msg/s",
                    flush=True,
                )
        results["transports"][transport] = runs
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--websockets", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--transport", choices=["both", "cleartext", "tls"], default="both")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asyncio.run(serve(args.serve, args.cert, args.key))
        return
    if args.websockets > 100:
        parser.error("--websockets: at most 100, the server's default SETTINGS_MAX_CONCURRENT_STREAMS (one connection)")
    if pinned():
        os.sched_setaffinity(0, {1})
    load_before = "/".join(f"{x:.1f}" for x in os.getloadavg())
    start = time.time()
    results = asyncio.run(main_async(args))
    import wsio

    results["meta"] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start)),
        "seconds": time.time() - start,
        "websockets": args.websockets,
        "repeats": args.repeats,
        "window": args.window,
        "depth": args.depth,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinning": "server on CPU 0, client on CPU 1" if pinned() else "not pinned (no taskset or one core)",
        "load_before": load_before,
        "load_after": "/".join(f"{x:.1f}" for x in os.getloadavg()),
        "wsio": getattr(wsio, "__version__", "?"),
    }
    text = report(results)
    print()
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "http2_mux.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "http2_mux.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
