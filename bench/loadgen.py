"""The load generator for the server benchmarks: C clients, picows' C-accelerated client, or raw asyncio TCP.

``connrate`` and ``echo`` without compression (the TCP echo's too) run C clients on one epoll
loop each, where a C compiler is: bench/native/ws_connrate.c and bench/native/ws_echo_load.c. picows' client
took a whole core for about 5,600 connections a second, and before the fastest servers did
in the pipelined scenarios, whatever the server: the figures were its own. Everything else
(compression, ``verify``, broadcast, idle connections) runs on picows' client (where picows
isn't installed, wsio's callback client stands in: bench/ws_wsio.py). ``BENCH_LOADGEN=picows``
or ``BENCH_LOADGEN=wsio`` puts every operation on that Python client, to cross-check the C
ones; so does a machine without a compiler. The reply's ``generator`` says which ran ("C" or
"python").

It runs as one long-lived process (pinned to its own core by the runner) and
takes one JSON command per line on stdin, answering ``RESULT {...}`` on stdout:

    {"op": "echo", "proto": "ws", "port": 8765, "size": 1024, "window": 1, "conns": 1,
     "deflate": false, "warmup": 0.2, "duration": 1.0, "verify": false}
    {"op": "broadcast", "proto": "ws", "port": 8765, "size": 64, "conns": 1000, "window": 8, ...}
    {"op": "idle_open", "proto": "ws", "port": 8765, "conns": 5000, "deflate": false}
    {"op": "idle_close"}
    {"op": "connrate", "proto": "ws", "port": 8765, "concurrency": 8, "warmup": 0.2, "duration": 1.0}

``echo`` keeps ``window`` messages in flight on each of ``conns`` connections
(window 1 is ping-pong). Every figure is counted over ``duration`` seconds
after ``warmup``, together with the CPU time this process used, so that a
result limited by the load generator rather than the server shows up as such.
(The C clients poll their core rather than sleep between events: their
``loadgen_cpu`` is the CPU time they spent on connections, without that polling;
``loadgen_cpu_total`` has the polling in.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from . import native
from .common import (
    HOST,
    READ_BUFFER,
    Stats,
    abort_socket,
    binary_payload,
    cpu_seconds,
    install_exit_guards,
    raise_fd_limit,
    run_loop,
    running_loop_name,
)

if os.environ.get("BENCH_LOADGEN") == "wsio":  # to cross-check the load generator, or test the fallback
    from . import ws_wsio as backend
else:
    try:
        from . import ws_picows as backend  # type: ignore[no-redef]
    except ImportError:  # no picows here: wsio's callback client stands in, and the output says so
        from . import ws_wsio as backend  # type: ignore[no-redef]

CONNECT_CONCURRENCY = 100  # connections opened at once (the servers' backlog is larger)
MIN_COUNT = 3  # completions a measuring window must hold ...
MAX_STRETCH = 10.0  # ... stretched by up to this many seconds if needed
TIMEOUT = 60.0  # for any one step: connecting thousands, draining, closing


async def open_many(count: int, opener: Any, closer: Any) -> list[Any]:
    """Open ``count`` connections, ``CONNECT_CONCURRENCY`` at a time; on any failure close them all."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Any:
        async with gate:
            return await opener()

    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    try:
        await asyncio.wait(tasks, timeout=TIMEOUT * 4)
    finally:
        for task in tasks:
            task.cancel()
    opened = [t.result() for t in tasks if t.done() and not t.cancelled() and t.exception() is None]
    if len(opened) < count:
        closer(opened)
        failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if failed:
            raise failed[0]
        raise TimeoutError(f"opened {len(opened)} of {count} connections in {TIMEOUT * 4:.0f}s")
    return opened


# ---------------------------------------------------------------- raw TCP (the limit)


class TcpClient(asyncio.BufferedProtocol):
    """Sends ``size``-byte chunks, ``window`` at a time; a chunk back counts as a message."""

    def __init__(self, stats: Stats, size: int, window: int, trigger: bool = False) -> None:
        self.stats = stats
        self.size = size
        self.window = window
        self.trigger = trigger
        self.payload = binary_payload(size)
        self.received = 0
        self.done = 0
        self.paused = False
        self.owed = 0
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        self.replied = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        for _ in range(self.window):
            self.send()

    def send(self) -> None:
        # Flow control: past the transport's high-water mark, owe the message instead
        # (asyncio's write buffer copies itself on each write once it is large).
        if self.paused:
            self.owed += 1
        else:
            self.transport.write(self.payload)  # type: ignore[union-attr]

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        while self.owed and not self.paused:
            self.owed -= 1
            self.transport.write(self.payload)  # type: ignore[union-attr]

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER  # only counted

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        done = self.received // self.size
        new = done - self.done
        self.done = done
        self.stats.count += new
        if new and not self.replied.done():
            self.replied.set_result(None)
        if self.stats.running and self.window:
            for _ in range(new):
                self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def tcp_open(port: int, factory: Any) -> tuple[asyncio.Transport, Any]:
    loop = asyncio.get_running_loop()
    return await loop.create_connection(factory, HOST, port)  # type: ignore[return-value]


def tcp_close_all(clients: list[Any]) -> None:
    for transport, _ in clients:
        abort_socket(transport.get_extra_info("socket"))
        transport.abort()


# ---------------------------------------------------------------- the operations


async def measure(stats: Stats, cmd: dict[str, Any]) -> dict[str, Any]:
    """Count what ``stats`` counts over ``duration`` seconds after ``warmup``, and the CPU time
    this process and the server used meanwhile (a share of one core: 1.0 is saturated)."""
    server = cmd.get("server_pid")
    await asyncio.sleep(cmd["warmup"])
    # Steady state starts once the first burst (a whole window per connection) is back.
    deadline = time.perf_counter() + MAX_STRETCH
    while stats.count < cmd.get("window", 1) * cmd.get("conns", 1) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    c0, t0, p0, s0 = stats.count, time.perf_counter(), time.process_time(), cpu_seconds(server)
    await asyncio.sleep(cmd["duration"])
    # A window with (almost) nothing in it says more about a stall than about a rate:
    # stretch it until a few completions, within limits.
    deadline = time.perf_counter() + MAX_STRETCH
    while stats.count - c0 < MIN_COUNT and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    c1, t1, p1, s1 = stats.count, time.perf_counter(), time.process_time(), cpu_seconds(server)
    stats.running = False
    elapsed = t1 - t0
    return {
        "count": c1 - c0,
        "elapsed": elapsed,
        "rate": (c1 - c0) / elapsed,
        "loadgen_cpu": round((p1 - p0) / elapsed, 3),
        "server_cpu": round((s1 - s0) / elapsed, 3),
    }


async def op_echo(cmd: dict[str, Any]) -> dict[str, Any]:
    stats = Stats()
    size, window, conns = cmd["size"], cmd.get("window", 1), cmd.get("conns", 1)
    port, deflate, verify = cmd["port"], cmd.get("deflate", False), cmd.get("verify", False)
    if not deflate and not verify and native.c_clients():  # the TCP echo's too: the same client, without framing
        args = [port, size, window, conns, cmd["warmup"], cmd["duration"], cmd["proto"]]
        return await run_c_client("ws_echo_load", args, cmd)
    if cmd["proto"] == "tcp":
        clients = await open_many(conns, lambda: tcp_open(port, lambda: TcpClient(stats, size, window)), tcp_close_all)
        close = tcp_close_all
    else:
        messages = backend.Messages(size, deflate)
        clients = await open_many(
            conns,
            lambda: backend.ws_open(port, lambda: backend.WsClient(stats, messages, window, verify), deflate),
            backend.ws_close_all,
        )
        close = backend.ws_close_all
    try:
        for _, client in clients:
            client.start()
        out = await measure(stats, cmd)
    finally:
        close(clients)
    if stats.errors:
        raise RuntimeError("; ".join(stats.errors))
    return {**out, "generator": "python"}


async def op_broadcast(cmd: dict[str, Any]) -> dict[str, Any]:
    """``conns`` connections listen; one sends triggers and the server sends each to all of them."""
    stats = Stats()
    size, window, conns, port = cmd["size"], cmd.get("window", 8), cmd["conns"], cmd["port"]
    verify = cmd.get("verify", False)
    if cmd["proto"] == "tcp":
        listeners = await open_many(conns - 1, lambda: tcp_open(port, lambda: TcpClient(stats, size, 0)), tcp_close_all)
        trigger = await tcp_open(port, lambda: TcpClient(stats, size, window))
        close = tcp_close_all
    else:
        messages = backend.Messages(size, False)
        listeners = await open_many(
            conns - 1,
            lambda: backend.ws_open(port, lambda: backend.WsClient(stats, None, 0, verify), False),
            backend.ws_close_all,
        )
        trigger = await backend.ws_open(port, lambda: backend.Trigger(stats, messages, window, False), False)
        close = backend.ws_close_all
    clients = [*listeners, trigger]
    await asyncio.sleep(0.05)  # let the server register the last connections

    async def refill() -> None:
        # A server may skip a connection whose buffer is full (broadcast() does):
        # if the trigger's own copy was skipped, start the chain again.
        last = -1
        while stats.running:
            await asyncio.sleep(0.05)
            if trigger[1].done == last and stats.running:
                trigger[1].start()
            last = trigger[1].done

    try:
        trigger[1].start()
        keeper = asyncio.ensure_future(refill())
        out = await measure(stats, cmd)
        keeper.cancel()
        out["min_per_connection"] = min(client.done for _, client in clients)
    finally:
        close(clients)
    if stats.errors:
        raise RuntimeError("; ".join(stats.errors))
    out["connections"] = conns
    return out


IDLE: list[Any] = []


async def op_idle_open(cmd: dict[str, Any]) -> dict[str, Any]:
    port, deflate = cmd["port"], cmd.get("deflate", False)
    stats = Stats()
    t0 = time.perf_counter()
    if cmd["proto"] == "tcp":
        clients = await open_many(cmd["conns"], lambda: tcp_open(port, lambda: TcpClient(stats, 1, 0)), tcp_close_all)
        IDLE[:] = [("tcp", clients)]
    else:
        clients = await open_many(
            cmd["conns"],
            lambda: backend.ws_open(port, lambda: backend.WsClient(stats, None, 0, False), deflate),
            backend.ws_close_all,
        )
        IDLE[:] = [("ws", clients)]
    return {"opened": len(clients), "open_seconds": time.perf_counter() - t0}


async def op_idle_close(cmd: dict[str, Any]) -> dict[str, Any]:
    for proto, clients in IDLE:
        (tcp_close_all if proto == "tcp" else backend.ws_close_all)(clients)
    IDLE.clear()
    await asyncio.sleep(0.05)
    return {"closed": True}


async def op_connrate(cmd: dict[str, Any]) -> dict[str, Any]:
    """Connect, handshake, close (the WebSocket closing handshake), ``concurrency`` at a time."""
    if native.c_clients():
        args = [cmd["port"], cmd.get("concurrency", 8), cmd["warmup"], cmd["duration"], cmd["proto"]]
        return await run_c_client("ws_connrate", args, cmd)
    stats = Stats()
    port = cmd["port"]

    async def ws_once() -> None:
        transport, client = await backend.ws_open(port, lambda: backend.WsClient(stats, None, 0, False), False)
        await backend.ws_close(transport, client)

    async def tcp_once() -> None:
        # The same round trip without the HTTP upgrade: one byte there and back.
        quiet = Stats()
        quiet.running = False  # one byte, not a stream
        transport, client = await tcp_open(port, lambda: TcpClient(quiet, 1, 1))
        client.start()
        await asyncio.wait_for(client.replied, 5)
        transport.close()
        await asyncio.wait_for(client.lost, 5)

    once = tcp_once if cmd["proto"] == "tcp" else ws_once

    async def worker() -> None:
        while stats.running:
            await once()
            stats.count += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(cmd.get("concurrency", 8))]
    try:
        out = await measure(stats, cmd)
        await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)
    finally:
        for w in workers:
            w.cancel()
    return {**out, "generator": "python"}


async def run_c_client(name: str, args: list[Any], cmd: dict[str, Any]) -> dict[str, Any]:
    """An operation by bench/native/NAME.c, a child of this process (so on its core): its JSON line, as measure()'s."""
    loop = asyncio.get_running_loop()
    binary = await loop.run_in_executor(None, native.build, name)
    args = [str(arg) for arg in args]
    if cmd.get("server_pid"):
        args.append(str(cmd["server_pid"]))
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await proc.communicate()  # it ends itself: a few seconds past the window at most
    finally:
        if proc.returncode is None:  # cancelled (the command's time-out): end it, by its PID
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited with status {proc.returncode}: {stderr.decode(errors='replace').strip()}")
    out = json.loads(stdout)
    return {
        "count": out["count"],
        "elapsed": out["elapsed"],
        "rate": out["rate"],
        "loadgen_cpu": round(out["busy"], 3),
        "loadgen_cpu_total": round(out["cpu"], 3),
        "server_cpu": round(out["server_cpu"], 3),
        "generator": "C",
    }


OPS = {
    "echo": op_echo,
    "broadcast": op_broadcast,
    "idle_open": op_idle_open,
    "idle_close": op_idle_close,
    "connrate": op_connrate,
}


async def serve_commands() -> None:
    loop = asyncio.get_running_loop()
    print("READY " + json.dumps({"client": backend.NAME, "loop": running_loop_name()}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break  # the runner is gone
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            out = await asyncio.wait_for(OPS[cmd["op"]](cmd), cmd.get("timeout", 120))
        except BaseException as exc:  # noqa: BLE001 - reported to the runner, which goes on
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    logging.getLogger("picows").setLevel(logging.ERROR)  # flow control notices
    raise_fd_limit()
    install_exit_guards(max_seconds=3600)
    run_loop(serve_commands())


if __name__ == "__main__":
    main()
