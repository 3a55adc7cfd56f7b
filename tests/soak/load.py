"""The soak test's load generator: a population of wsio asyncio clients with churn and mixed traffic.

``python tests/soak/load.py PORT SECONDS CONNECTIONS [SEED]`` keeps CONNECTIONS
sessions alive against ws://127.0.0.1:PORT/ for SECONDS. Each session lives a
5 to 30 seconds: it negotiates compression or not, sends text and binary messages
(compressed and not), fragmented messages and pings, checks every echo, and
ends with a clean close or an abrupt drop. A few sessions are raw TCP
connections reset in the middle of their handshake. Prints one JSON line of
counts at the end; exits non-zero if an echo came back wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import string
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

import wsio  # noqa: E402

#: Sessions started per 50 ms at most: an accept backlog of 100 would overflow with more at once.
OPENING_AT_ONCE = 64


def raise_fd_limit() -> None:
    """Each connection is a file descriptor: take the hard limit as the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def text(rng: random.Random, size: int) -> str:
    # Words, so that compression has something to do.
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(16)]
    out = []
    length = 0
    while length < size:
        word = rng.choice(words)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


async def session(port: int, rng: random.Random, counts: Counter[str], stop_at: float) -> None:
    loop = asyncio.get_running_loop()
    if rng.random() < 0.05:
        # Reset in the middle of the handshake.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        await asyncio.sleep(rng.uniform(0, 0.2))
        writer.transport.abort()
        counts["handshake_resets"] += 1
        return
    compression = "deflate" if rng.random() < 0.5 else None
    websocket = await wsio.connect(f"ws://127.0.0.1:{port}/", compression=compression, open_timeout=30)
    counts["opened"] += 1
    counts["compressed_sessions" if compression else "plain_sessions"] += 1
    end = min(loop.time() + rng.uniform(5, 30), stop_at)
    try:
        while loop.time() < end:
            kind = rng.random()
            if kind < 0.1:
                pong = await websocket.ping()
                await asyncio.wait_for(pong, 30)
                counts["pings"] += 1
            else:
                if kind < 0.45:
                    message: str | bytes = text(rng, rng.randint(1, 3000))
                else:
                    message = rng.randbytes(rng.randint(1, 3000))
                if kind > 0.9:
                    # Fragmented: the server reassembles, echoes it whole.
                    pieces = [message[i : i + 500] for i in range(0, len(message), 500)]
                    await websocket.send(pieces)
                    counts["fragmented"] += 1
                elif kind > 0.8:
                    await websocket.send(message, compress=False)
                    counts["uncompressed_on_purpose"] += 1
                else:
                    await websocket.send(message)
                reply = await asyncio.wait_for(websocket.recv(), 30)
                if reply != message:
                    counts["wrong_echo"] += 1
                counts["messages"] += 1
            await asyncio.sleep(rng.uniform(0.5, 3.0))
    finally:
        if rng.random() < 0.25:
            websocket.transport.abort()
            counts["abrupt_drops"] += 1
        else:
            await websocket.close()
            counts["clean_closes"] += 1


async def main(port: int, seconds: float, connections: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds
    active: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            await session(port, random.Random(rng.random()), counts, stop_at)
        except (wsio.ConnectionClosed, OSError, asyncio.TimeoutError) as exc:
            counts[f"error:{type(exc).__name__}"] += 1

    while loop.time() < stop_at:
        while len(active) < connections and loop.time() < stop_at:
            task = loop.create_task(one())
            active.add(task)
            task.add_done_callback(active.discard)
            if len(active) % OPENING_AT_ONCE == 0:
                await asyncio.sleep(0.05)  # ramp up, don't storm the backlog
        counts["peak_active"] = max(counts["peak_active"], len(active))
        await asyncio.sleep(0.1)
    if active:
        await asyncio.wait(active, timeout=60)
    return counts


if __name__ == "__main__":
    raise_fd_limit()
    port, seconds, connections = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    started = time.monotonic()
    result = asyncio.run(main(port, seconds, connections, seed))
    result["elapsed_s"] = round(time.monotonic() - started)  # type: ignore[assignment]
    print(json.dumps(dict(result)), flush=True)
    sys.exit(1 if result["wrong_echo"] else 0)
