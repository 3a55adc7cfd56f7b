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

``--compare`` sets wsio's Hub beside the fan-out people write without a hub::

    python bench/pubsub_fanout.py --compare [--subscribers 2000] [--messages 50] [--size 64]

Three set-ups, every server on wsio (``wsio.serve``), the same subscribers and
the same messages (server 0 publishes, every subscriber of both servers gets
each message):

- ``hub/memory``: ``Hub()`` in memory; each server publishes to its own
  subscribers (there is no Redis to cross), as in the memory scenario above;
- ``hub/redis``: ``Hub("redis://...")``: one Redis subscription per process and
  topic, the hub fans out to its connections;
- ``plain/redis``: no hub: each connection's handler opens its own redis-py
  asyncio ``PubSub``, subscribes to the channel and forwards what it gets with
  ``await ws.send(...)``: one Redis connection and subscription per client.

Besides deliveries/s and the servers' CPU per delivery, it reports Redis's CPU
per delivery (``/proc/PID/stat`` of the redis-server it started), Redis's
connections, and memory per idle subscriber: the RSS of each server process
(``VmRSS``, after a GC) and of redis-server once every subscriber is connected
and subscribed, minus their RSS before (after one connection was opened and
closed, so that lazy imports don't count), divided by the subscribers. The
plain approach's ratios to ``hub/redis`` come last. It writes
``bench/results/pubsub.md`` and ``bench/results/pubsub.json`` (``--results
DIR`` elsewhere), with the load average before and after.

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
import gc
import json
import os
import platform
import resource
import socket
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


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process, in KiB (``VmRSS`` in ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of another process so far, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled_rss() -> str:
    gc.collect()
    return json.dumps(rss_kib())


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


def control_handler(count: Any, publish: Any, dropped: Any) -> Any:
    """The answers of a server process to the driver's commands: count, cpu, rss, or ``publish N SIZE``."""

    async def handle(command: list[str]) -> str:
        if command[0] == "count":
            return str(count())
        if command[0] == "cpu":
            return json.dumps(cpu_seconds())
        if command[0] == "rss":
            return settled_rss()
        n, size = int(command[1]), int(command[2])
        payload = "x" * size
        start = time.perf_counter()
        for _ in range(n):
            await publish(payload)
        return json.dumps({"seconds": time.perf_counter() - start, "dropped": dropped()})

    return handle


async def serve_wsio(port: int, redis_url: str | None) -> None:
    import wsio

    hub = wsio.Hub(redis_url, channel_prefix="bench:")
    await hub.start()

    async def handler(ws: wsio.ServerConnection) -> None:
        await hub.subscribe(ws, TOPIC)
        await ws.wait_closed()

    handle = control_handler(
        lambda: len(hub.subscribers(TOPIC)), lambda payload: hub.publish(TOPIC, payload), lambda: hub.dropped
    )

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

    async def publish(payload: str) -> None:
        broadcast(connections, payload)
        if client is not None:
            await client.publish(channel, origin + b"T" + payload.encode())

    handle = control_handler(lambda: len(connections), publish, lambda: None)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await control(handle)
    if client is not None:
        relay_task.cancel()
        await client.aclose()


PLAIN_CHANNEL = "bench-plain:" + TOPIC


async def serve_plain(port: int, redis_url: str) -> None:
    """The fan-out written without a hub: each connection's handler subscribes to Redis itself.

    One redis-py asyncio ``PubSub`` (so one Redis connection) per WebSocket
    connection, and a task that forwards each message it reads; publishing is
    a plain ``PUBLISH``, which Redis sends to every subscribed connection.
    """
    import redis.asyncio

    import wsio

    # redis-py's pool holds 100 connections unless told otherwise, and each PubSub takes one.
    client = redis.asyncio.Redis.from_url(redis_url, max_connections=1_000_000)
    subscribed = 0

    async def handler(ws: wsio.ServerConnection) -> None:
        nonlocal subscribed
        pubsub = client.pubsub()
        await pubsub.subscribe(PLAIN_CHANNEL)
        subscribed += 1

        async def forward() -> None:
            try:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await ws.send(message["data"].decode())
            except wsio.ConnectionClosed:
                pass

        task = asyncio.get_running_loop().create_task(forward())
        try:
            await ws.wait_closed()
        finally:
            subscribed -= 1
            task.cancel()
            await pubsub.aclose()

    handle = control_handler(lambda: subscribed, lambda payload: client.publish(PLAIN_CHANNEL, payload), lambda: None)

    async with wsio.serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await control(handle)
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


def warm_up(port: int) -> None:
    """Open one WebSocket connection and close it, so that lazy imports and first-use caches don't count as memory."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(REQUEST)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # a masked close frame, code 1000
        sock.settimeout(2)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass


def redis_clients(redis: Any) -> int:
    """``connected_clients`` from ``INFO clients``."""
    info = redis.command("INFO", "clients").decode()
    return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("connected_clients:")))


def scenario(
    lib: str,
    backend: str,
    redis_url: str | None,
    subscribers: int,
    messages: int,
    size: int,
    timeout: float,
    redis: Any = None,
) -> dict[str, Any]:
    per_server = subscribers // 2
    ports = [free_port(), free_port()]
    servers = [
        Child("--role", "server", "--lib", lib, "--port", str(p), *(["--redis", redis_url] if redis_url else [])) for p in ports
    ]
    redis_pid = redis.process.pid if redis is not None and redis.process is not None else None
    clients: list[Child] = []
    try:
        for server in servers:
            server.expect("ready")
        # Memory: each server's RSS (and redis-server's) after one connection opened
        # and closed, then again once every subscriber is connected and idle.
        for port in ports:
            warm_up(port)
        time.sleep(0.3)
        rss_before = []
        for server in servers:
            server.send("rss")
            rss_before.append(server.answer())
        redis_rss_before = rss_kib(redis_pid) if redis_pid else None
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
        if lib == "plain" and redis is not None:
            # redis-py's subscribe() doesn't wait for Redis to confirm: wait until Redis counts them all.
            deadline = time.monotonic() + timeout
            while int(redis.command("PUBSUB", "NUMSUB", PLAIN_CHANNEL)[1]) < per_server * 2:
                assert time.monotonic() < deadline, "the subscriptions didn't all reach Redis"
                time.sleep(0.05)
        time.sleep(0.5)  # settle
        rss_after = []
        for server in servers:
            server.send("rss")
            rss_after.append(server.answer())
        redis_rss_after = rss_kib(redis_pid) if redis_pid else None
        connections_to_redis = redis_clients(redis) - 1 if redis is not None and backend == "redis" else 0  # not INFO's own
        expected_bytes = messages * frame_size(size) * per_server
        cpu_before = []
        for server in servers:
            server.send("cpu")
            cpu_before.append(server.answer())
        redis_cpu_before = process_cpu_seconds(redis_pid) if redis_pid else 0.0
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
        redis_cpu = process_cpu_seconds(redis_pid) - redis_cpu_before if redis_pid else 0.0
        finished = [d["finished"] for d in done]
        received_messages = sum(d["received"] for d in done) // frame_size(size)
        elapsed = (max(finished) - start) if all(finished) else None
        publish_calls = messages * len(publishers)
        publish_seconds = max(p["seconds"] for p in published)
        subscribed = per_server * 2
        return {
            "lib": lib,
            "backend": backend,
            "subscribers": subscribed,
            "messages": messages,
            "size": size,
            "connect_seconds": round(connect_seconds, 2),
            "publish_calls_per_s": round(publish_calls / publish_seconds, 1),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_us_per_delivery": round(cpu / max(received_messages, 1) * 1e6, 2),
            "redis_cpu_us_per_delivery": round(redis_cpu / max(received_messages, 1) * 1e6, 2) if backend == "redis" else None,
            "deliveries": received_messages,
            "expected_deliveries": messages * subscribed,
            "delivery_seconds": round(elapsed, 3) if elapsed else None,
            "deliveries_per_s": round(received_messages / elapsed) if elapsed else None,
            "dropped": [p["dropped"] for p in published],
            "server_kib_per_subscriber": round((sum(rss_after) - sum(rss_before)) / subscribed, 2),
            "redis_kib_per_subscriber": round((redis_rss_after - redis_rss_before) / subscribed, 2)
            if backend == "redis" and redis_rss_before is not None and redis_rss_after is not None
            else None,
            "redis_connections": connections_to_redis,
        }
    finally:
        for child in clients + servers:
            child.stop()


COMPARED = [("wsio", "memory", "hub/memory"), ("wsio", "redis", "hub/redis"), ("plain", "redis", "plain/redis")]


def compare(redis: Any, args: Any, load_before: tuple[float, float, float]) -> None:
    """``--compare``: the three set-ups, one after the other, then a table and the ratios."""
    started = time.time()
    results = []
    for lib, backend, label in COMPARED:
        url = redis.url if backend == "redis" else None
        result = scenario(lib, backend, url, args.subscribers, args.messages, args.size, args.timeout, redis)
        result["setup"] = label
        results.append(result)
        print(json.dumps(result), flush=True)
    load_after = os.getloadavg()
    hub, plain = results[1], results[2]

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a and b else "n/a"

    def fmt(x: Any, spec: str = ",") -> str:
        return "-" if x is None else format(x, spec)

    lines = [
        "# Pub/sub fan-out: wsio's Hub beside a Redis subscription per connection",
        "",
        f"`python bench/pubsub_fanout.py --compare --subscribers {args.subscribers} --messages {args.messages} "
        f"--size {args.size}`, measured {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(started))} UTC, "
        f"{time.time() - started:.1f} s in all.",
        f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; servers, clients "
        "and redis-server not pinned.",
        f"Load average {'/'.join(f'{x:.1f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} after (above 0 means other work shared the machine: "
        "figures are noisier and lower; not final figures).",
        "",
        f"{args.subscribers:,} subscribers over 2 wsio server processes (2 client processes), {args.messages} messages "
        f"of {args.size} bytes published by server 0 (hub/memory: by each server to its own); every server is "
        "`wsio.serve`, only the fan-out differs. *us/delivery* is CPU time (user + system) per message delivered; "
        "*KiB/subscriber* is the RSS growth per idle subscribed connection.",
        "",
        "| set-up | deliveries/s | delivered | server CPU us/delivery | Redis CPU us/delivery "
        "| server KiB/subscriber | Redis KiB/subscriber | Redis connections |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['setup']} | {fmt(r['deliveries_per_s'])} | {r['deliveries']:,}/{r['expected_deliveries']:,} "
            f"| {r['server_cpu_us_per_delivery']} | {fmt(r['redis_cpu_us_per_delivery'])} "
            f"| {r['server_kib_per_subscriber']} | {fmt(r['redis_kib_per_subscriber'])} | {r['redis_connections']} |"
        )
    server_cpu = ratio(plain["server_cpu_us_per_delivery"], hub["server_cpu_us_per_delivery"])
    lines += [
        "",
        "plain/redis against hub/redis, the same subscribers and messages through the same Redis:",
        "",
        f"- deliveries/s: the hub delivers {ratio(hub['deliveries_per_s'], plain['deliveries_per_s'])} as many per second;",
        f"- server CPU per delivery: the plain approach costs {server_cpu} the hub's;",
        f"- Redis CPU per delivery: {plain['redis_cpu_us_per_delivery']} us against {hub['redis_cpu_us_per_delivery']} us "
        f"({ratio(plain['redis_cpu_us_per_delivery'], hub['redis_cpu_us_per_delivery'])}; clock ticks of 10 ms: "
        f"Redis writes each message to {plain['redis_connections']:,} connections instead of {hub['redis_connections']});",
        f"- server memory per idle subscriber: {ratio(plain['server_kib_per_subscriber'], hub['server_kib_per_subscriber'])} "
        f"the hub's, plus {fmt(plain['redis_kib_per_subscriber'])} KiB in redis-server "
        f"(hub: {fmt(hub['redis_kib_per_subscriber'])}).",
        "",
    ]
    report = "\n".join(lines)
    print()
    print(report)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "pubsub.md"), "w") as f:
        f.write(report)
    meta = {
        "command": f"--compare --subscribers {args.subscribers} --messages {args.messages} --size {args.size}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    with open(os.path.join(args.results, "pubsub.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
        f.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["main", "server", "client", "recovery-server"], default="main")
    parser.add_argument("--lib", choices=["wsio", "websockets", "plain"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    parser.add_argument("--count", type=int)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", choices=["wsio", "websockets"])
    parser.add_argument("--recovery", action="store_true", help="measure recovery instead of fan-out")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="wsio's Hub (memory, Redis) beside a redis-py PubSub per connection, with memory per subscriber",
    )
    parser.add_argument(
        "--results", default=os.path.join(ROOT, "bench", "results"), help="where --compare writes pubsub.{md,json}"
    )
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--missed", type=int, default=100)
    args = parser.parse_args()
    raise_nofile()
    if args.role == "recovery-server":
        asyncio.run(serve_recovery(args.port, args.redis, args.count))
        return
    if args.role == "server":
        serve = {"wsio": serve_wsio, "websockets": serve_websockets, "plain": serve_plain}[args.lib]
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
    if args.compare:
        try:
            compare(redis, args, load_before)
        finally:
            redis.close()
        return
    results = []
    try:
        for backend in ("memory", "redis"):
            for lib in ("wsio", "websockets"):
                if args.only and lib != args.only:
                    continue
                url = redis.url if backend == "redis" else None
                result = scenario(lib, backend, url, args.subscribers, args.messages, args.size, args.timeout, redis)
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
