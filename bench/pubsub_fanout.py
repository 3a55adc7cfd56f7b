"""Pub/sub fan-out benchmark: 10,000 subscribers over 2 server processes, wsio's Hub vs websockets' broadcast().

Not part of ``make bench`` (it needs redis-server and 10,000 connections); run it by hand::

    python bench/pubsub_fanout.py [--subscribers 10000] [--messages 20] [--size 64]

For each library (wsio, websockets) and each backend (memory, Redis) it starts
2 server processes and 2 client processes (each client process opens half the
connections to one server, and counts the bytes it receives), then publishes
``--messages`` messages of ``--size`` bytes to the topic everybody is
subscribed to:

- memory: each server publishes to its own subscribers (an in-memory hub
  doesn't cross processes); deliveries = messages x subscribers.
- Redis: server 0 publishes; server 1 gets the messages through Redis;
  deliveries = messages x subscribers, as well.

The websockets side is the same fan-out written by hand on ``websockets``'
``broadcast()``: a set of connections per process and, with Redis, a redis-py
subscriber task that broadcasts what other processes publish (skipping its own
by an origin prefix), the way its FAQ suggests.

It reports publish calls per second (the publishing loop alone), deliveries
per second (from the first publish until every client has every byte), and
the servers' CPU time (user + system) per delivery: the steadiest of the three
on a shared machine, where the others depend on what else runs. All on
loopback; bounded in time (``--timeout`` per phase); raises RLIMIT_NOFILE to
its hard limit. Results go to stdout and ``reports/pubsub/fanout.json``.

``--recovery`` measures recovery instead (wsio only)::

    python bench/pubsub_fanout.py --recovery [--clients 5000] [--missed 100]

2 server processes with a hub on one Redis, ``history_size`` = 2 x missed,
serving the JSON protocol. ``--clients`` clients subscribe to one topic on
server 0 and go away; server 1 publishes ``--missed`` messages; then every
client comes back at once, on server 1, with its position
(``{"type": "subscribe", ..., "offset": ..., "epoch": ...}``), and reads what it
missed until the answer. It reports how long until every client has
recovered, recoveries and recovered messages per second, and the servers' CPU
time. The clients run in this process (a few client processes would be
fairer to the servers on a machine with more cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC = "bench"


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds() -> float:
    """CPU time of this process so far, user and system (send() calls are most of it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def frame_size(size: int) -> int:
    """Bytes on the wire of an unmasked, uncompressed text frame of ``size`` bytes."""
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


# -- server processes ---------------------------------------------------------------------


async def control(handle: Any) -> None:
    """Read commands from stdin, one per line; answer on stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        answer = await handle(line.decode().split())
        print(answer, flush=True)


async def serve_wsio(port: int, redis_url: str | None) -> None:
    import wsio

    hub = wsio.Hub(redis_url, channel_prefix="bench:")
    await hub.start()

    async def handler(ws: wsio.ServerConnection) -> None:
        await hub.subscribe(ws, TOPIC)
        await ws.wait_closed()

    async def handle(command: list[str]) -> str:
        if command[0] == "count":
            return str(len(hub.subscribers(TOPIC)))
        if command[0] == "cpu":
            return json.dumps(cpu_seconds())
        n, size = int(command[1]), int(command[2])
        payload = "x" * size
        start = time.perf_counter()
        for _ in range(n):
            await hub.publish(TOPIC, payload)
        return json.dumps({"seconds": time.perf_counter() - start, "dropped": hub.dropped})

    async with wsio.serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await control(handle)
    await hub.close()


async def serve_websockets(port: int, redis_url: str | None) -> None:
    from websockets.asyncio.server import broadcast, serve

    connections: set[Any] = set()
    origin = os.urandom(8)
    channel = b"bench-ws:" + TOPIC.encode()
    client = None
    if redis_url is not None:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe(channel)

        async def relay() -> None:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                data = message["data"]
                if data[:8] == origin:
                    continue  # our own: broadcast when published
                payload = data[9:]
                broadcast(connections, payload.decode() if data[8:9] == b"T" else payload)

        relay_task = asyncio.get_running_loop().create_task(relay())

    async def handler(ws: Any) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    async def handle(command: list[str]) -> str:
        if command[0] == "count":
            return str(len(connections))
        if command[0] == "cpu":
            return json.dumps(cpu_seconds())
        n, size = int(command[1]), int(command[2])
        payload = "x" * size
        start = time.perf_counter()
        for _ in range(n):
            broadcast(connections, payload)
            if client is not None:
                await client.publish(channel, origin + b"T" + payload.encode())
        return json.dumps({"seconds": time.perf_counter() - start, "dropped": None})

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await control(handle)
    if client is not None:
        relay_task.cancel()
        await client.aclose()


# -- client processes ------------------------------------------------------------------------

REQUEST = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


class Counter(asyncio.Protocol):
    """One subscriber: sends the handshake, then only counts the bytes it receives."""

    opened = 0
    received = 0
    expected = -1
    done: asyncio.Future[float] | None = None

    def __init__(self) -> None:
        self.head = b""
        self.open = False

    def connection_made(self, transport: Any) -> None:
        transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            self.open = True
            Counter.opened += 1
        Counter.received += len(data)
        if Counter.received >= Counter.expected and Counter.done is not None and not Counter.done.done():
            Counter.done.set_result(time.monotonic())


async def run_clients(port: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    transports = []
    batch = 250
    for i in range(0, count, batch):
        results = await asyncio.gather(
            *(loop.create_connection(Counter, "127.0.0.1", port) for _ in range(min(batch, count - i)))
        )
        transports.extend(t for t, _ in results)
    while Counter.opened < count:
        await asyncio.sleep(0.01)
    print("connected", flush=True)

    async def handle(command: list[str]) -> str:
        # expect <bytes> <timeout>: wait until that many bytes arrived in all since connecting
        # (absolute: the data may arrive before this command is read)
        Counter.expected = int(command[1])
        Counter.done = loop.create_future()
        if Counter.received >= Counter.expected:
            Counter.done.set_result(time.monotonic())
        try:
            finished = await asyncio.wait_for(Counter.done, float(command[2]))
        except asyncio.TimeoutError:
            finished = None
        return json.dumps({"finished": finished, "received": Counter.received})

    await control(handle)
    for transport in transports:
        transport.abort()


# -- the orchestra ----------------------------------------------------------------------------


class Child:
    """A child process of this script, spoken to by lines on stdin and stdout."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def expect(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == word, f"expected {word!r}, got {line!r}"

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def answer(self) -> Any:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()  # EOF ends the control loop
            except BrokenPipeError:
                pass
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def serve_recovery(port: int, redis_url: str, history: int) -> None:
    import wsio
    from wsio.pubsub.json_protocol import handle as json_handle

    hub = wsio.Hub(redis_url, channel_prefix="bench-recovery:", history_size=history)
    await hub.start()

    def anyone(ws: Any, topic: str) -> bool:
        return True

    async def handler(ws: wsio.ServerConnection) -> None:
        await json_handle(hub, ws, can_subscribe=anyone, can_publish=anyone)

    async def handle(command: list[str]) -> str:
        if command[0] == "cpu":
            return json.dumps(cpu_seconds())
        n, size = int(command[1]), int(command[2])
        payload = "x" * size
        for _ in range(n):
            await hub.publish(TOPIC, payload)
        return json.dumps({"published": n})

    async with wsio.serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await control(handle)
    await hub.close()


async def recover_clients(
    ports: list[int], servers: list[Child], clients: int, missed: int, size: int, timeout: float
) -> dict[str, Any]:
    import wsio

    gate = asyncio.Semaphore(200)  # connections being opened at once

    async def subscribe(port: int, position: dict[str, Any] | None) -> tuple[Any, dict[str, Any], int]:
        async with gate:
            ws = await wsio.connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=timeout, ping_interval=None)
        command: dict[str, Any] = {"type": "subscribe", "topic": TOPIC}
        if position is not None:
            command.update(offset=position["offset"], epoch=position["epoch"])
        await ws.send(json.dumps(command))
        pubs = 0
        while True:
            message = await ws.recv(timeout=timeout)
            if message.startswith('{"type":"pub"'):
                pubs += 1
                continue
            return ws, json.loads(message), pubs

    first = await asyncio.gather(*(subscribe(ports[0], None) for _ in range(clients)))
    position = first[0][1]
    await asyncio.gather(*(ws.close() for ws, _, _ in first))
    servers[1].send(f"publish {missed} {size}")
    servers[1].answer()
    cpu_before = []
    for server in servers:
        server.send("cpu")
        cpu_before.append(server.answer())
    start = time.monotonic()
    back = await asyncio.gather(*(subscribe(ports[1], position) for _ in range(clients)))
    elapsed = time.monotonic() - start
    cpu = 0.0
    for server, before in zip(servers, cpu_before):
        server.send("cpu")
        cpu += server.answer() - before
    recovered = sum(1 for _, answer, pubs in back if answer.get("recovered") and answer.get("missed") == missed == pubs)
    await asyncio.gather(*(ws.close() for ws, _, _ in back))
    return {
        "clients": clients,
        "missed": missed,
        "size": size,
        "recovered": recovered,
        "seconds": round(elapsed, 2),
        "recoveries_per_s": round(clients / elapsed),
        "messages_per_s": round(clients * missed / elapsed),
        "server_cpu_seconds": round(cpu, 2),
    }


def recovery(redis_url: str, clients: int, missed: int, size: int, timeout: float) -> dict[str, Any]:
    ports = [free_port(), free_port()]
    history = str(2 * missed)
    servers = [Child("--role", "recovery-server", "--port", str(p), "--redis", redis_url, "--count", history) for p in ports]
    try:
        for server in servers:
            server.expect("ready")
        return asyncio.run(recover_clients(ports, servers, clients, missed, size, timeout))
    finally:
        for server in servers:
            server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scenario(
    lib: str, backend: str, redis_url: str | None, subscribers: int, messages: int, size: int, timeout: float
) -> dict[str, Any]:
    per_server = subscribers // 2
    ports = [free_port(), free_port()]
    servers = [
        Child("--role", "server", "--lib", lib, "--port", str(p), *(["--redis", redis_url] if redis_url else [])) for p in ports
    ]
    clients: list[Child] = []
    try:
        for server in servers:
            server.expect("ready")
        started = time.monotonic()
        clients = [Child("--role", "client", "--port", str(p), "--count", str(per_server)) for p in ports]
        for client in clients:
            client.expect("connected")
        connect_seconds = time.monotonic() - started
        for server in servers:
            deadline = time.monotonic() + timeout
            while True:
                server.send("count")
                if int(server.answer()) >= per_server or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        expected_bytes = messages * frame_size(size) * per_server
        cpu_before = []
        for server in servers:
            server.send("cpu")
            cpu_before.append(server.answer())
        for client in clients:
            client.send(f"expect {expected_bytes} {timeout}")
        start = time.monotonic()
        publishers = servers if backend == "memory" else servers[:1]
        for server in publishers:
            server.send(f"publish {messages} {size}")
        published = [server.answer() for server in publishers]
        done = [client.answer() for client in clients]
        cpu = 0.0
        for server, before in zip(servers, cpu_before):
            server.send("cpu")
            cpu += server.answer() - before
        finished = [d["finished"] for d in done]
        received_messages = sum(d["received"] for d in done) // frame_size(size)
        elapsed = (max(finished) - start) if all(finished) else None
        publish_calls = messages * len(publishers)
        publish_seconds = max(p["seconds"] for p in published)
        return {
            "lib": lib,
            "backend": backend,
            "subscribers": per_server * 2,
            "messages": messages,
            "size": size,
            "connect_seconds": round(connect_seconds, 2),
            "publish_calls_per_s": round(publish_calls / publish_seconds, 1),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_us_per_delivery": round(cpu / max(received_messages, 1) * 1e6, 2),
            "deliveries": received_messages,
            "expected_deliveries": messages * per_server * 2,
            "delivery_seconds": round(elapsed, 3) if elapsed else None,
            "deliveries_per_s": round(received_messages / elapsed) if elapsed else None,
            "dropped": [p["dropped"] for p in published],
        }
    finally:
        for child in clients + servers:
            child.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["main", "server", "client", "recovery-server"], default="main")
    parser.add_argument("--lib", choices=["wsio", "websockets"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    parser.add_argument("--count", type=int)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", choices=["wsio", "websockets"])
    parser.add_argument("--recovery", action="store_true", help="measure recovery instead of fan-out")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--missed", type=int, default=100)
    args = parser.parse_args()
    raise_nofile()
    if args.role == "recovery-server":
        asyncio.run(serve_recovery(args.port, args.redis, args.count))
        return
    if args.role == "server":
        serve = serve_wsio if args.lib == "wsio" else serve_websockets
        asyncio.run(serve(args.port, args.redis))
        return
    if args.role == "client":
        asyncio.run(run_clients(args.port, args.count))
        return

    sys.path.insert(0, ROOT)
    from tests.pubsub.redis_server import RedisServer

    redis = RedisServer()
    redis.start()
    load_before = os.getloadavg()
    if args.recovery:
        try:
            result = recovery(redis.url, args.clients, args.missed, args.size, args.timeout)
        finally:
            redis.close()
        print(json.dumps(result))
        print(f"load average before: {load_before}, after: {os.getloadavg()}; {os.cpu_count()} CPUs")
        os.makedirs(os.path.join(ROOT, "reports", "pubsub"), exist_ok=True)
        with open(os.path.join(ROOT, "reports", "pubsub", "recovery.json"), "w") as f:
            json.dump(result, f, indent=2)
        return
    results = []
    try:
        for backend in ("memory", "redis"):
            for lib in ("wsio", "websockets"):
                if args.only and lib != args.only:
                    continue
                url = redis.url if backend == "redis" else None
                result = scenario(lib, backend, url, args.subscribers, args.messages, args.size, args.timeout)
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        redis.close()
    print()
    print(
        f"{args.subscribers} subscribers over 2 processes, {args.messages} messages of {args.size} bytes, loopback, {os.cpu_count()} CPUs"
    )
    print(f"load average before: {load_before}, after: {os.getloadavg()}")
    print(
        f"{'library':<11} {'backend':<7} {'publish/s':>10} {'deliveries/s':>13} {'delivered':>15} "
        f"{'seconds':>8} {'server CPU us/delivery':>23}"
    )
    for r in results:
        print(
            f"{r['lib']:<11} {r['backend']:<7} {r['publish_calls_per_s']:>10} {r['deliveries_per_s'] or '-':>13} "
            f"{r['deliveries']:>7}/{r['expected_deliveries']:<7} {r['delivery_seconds'] or '-':>8} "
            f"{r['server_cpu_us_per_delivery']:>23}"
        )
    os.makedirs(os.path.join(ROOT, "reports", "pubsub"), exist_ok=True)
    with open(os.path.join(ROOT, "reports", "pubsub", "fanout.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
