"""What the servers, clients, load generator and runner share: payloads, limits, process plumbing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from typing import Any, Coroutine

HOST = "127.0.0.1"
#: Big enough for the 1 MiB messages and then some, in every library.
MAX_SIZE = 16 * 1024 * 1024
#: Pending connections the servers accept (5,000 idle connections open in bursts).
BACKLOG = 2048
#: The deflate offer a browser makes.
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
#: A server lives at most this long, whatever happens to the runner.
SERVER_MAX_SECONDS = 600.0


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one (5,000 connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


#: What the raw TCP protocols read into. A plain asyncio.Protocol gets a fresh
#: 256 KiB bytes object per read, which glibc may serve with mmap, mremap and
#: munmap every time (it depends on what the process freed before): the limit
#: would then be slow in some runs and not others. Reading into one buffer
#: (BufferedProtocol) keeps it fast in every run; each process runs one loop.
READ_BUFFER = memoryview(bytearray(262144))


def binary_payload(size: int) -> bytes:
    """``size`` bytes of a fixed pattern (not compressed in the plain scenarios)."""
    pattern = bytes(range(256))
    return (pattern * (size // 256 + 1))[:size]


def json_messages(count: int = 64, size: int = 1024, seed: int = 42) -> list[str]:
    """``count`` distinct JSON-like texts of about ``size`` bytes, like an API's events."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    messages = []
    for n in range(count):
        items = []
        text = ""
        while True:
            items.append(
                {
                    "id": rng.randrange(10**9),
                    "user": f"{rng.choice(words)}_{rng.randrange(10000)}",
                    "price": round(rng.uniform(1, 1000), 2),
                    "qty": rng.randrange(1, 500),
                    "side": rng.choice(["buy", "sell"]),
                    "tags": rng.sample(words, 2),
                }
            )
            candidate = json.dumps({"type": "trades", "seq": n, "data": items}, separators=(",", ":"))
            if len(candidate) > size:
                break
            text = candidate
        messages.append(text.ljust(size))
    return messages


def deflate_message(data: bytes) -> bytes:
    """One message compressed on its own (no context takeover), as permessage-deflate frames it."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def size_label(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size // (1024 * 1024)}MiB"
    if size >= 1024:
        return f"{size // 1024}KiB"
    return f"{size}B"


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def ready(**info: Any) -> None:
    """Tell the runner that the process listens (a server) or is set up (a client).

    Called from a running asyncio loop, it also says which loop that is.
    """
    loop = running_loop_name()
    if loop and "loop" not in info:
        info["loop"] = loop
    print("READY " + json.dumps({"pid": os.getpid(), **info}), flush=True)


#: Which event loop the benchmark's asyncio processes run on: set by ``python -m bench --uvloop``
#: for every server, client and the load generator it starts (the runner passes it in the environment).
LOOP_ENV = "BENCH_LOOP"


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(main)``, or ``uvloop.run(main)`` when the runner asked for uvloop."""
    if os.environ.get(LOOP_ENV) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def running_loop_name() -> str | None:
    """``asyncio`` or ``uvloop`` (the package of the running loop's class), or None outside a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return type(loop).__module__.split(".")[0]


def result(**info: Any) -> None:
    print("RESULT " + json.dumps(info), flush=True)


def install_exit_guards(max_seconds: float = SERVER_MAX_SECONDS) -> None:
    """SIGTERM ends the process at once; so does the runner going away, or ``max_seconds``.

    A benchmark process must never outlive its run: this bounds it even if the
    runner is killed without cleaning up.
    """

    def stop(*_: Any) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds

    def watch() -> None:
        while time.monotonic() < deadline:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)
        print(f"benchmark process gave up after {max_seconds}s", file=sys.stderr, flush=True)
        os._exit(2)

    threading.Thread(target=watch, daemon=True, name="bench-watchdog").start()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far, from /proc/PID/stat."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stats:
    """What a load generator's connections count together."""

    __slots__ = ("count", "running", "errors")

    def __init__(self) -> None:
        self.count = 0
        self.running = True
        self.errors: list[str] = []


def abort_socket(sock: Any) -> None:
    """Make the coming close a reset: no TIME_WAIT left behind by thousands of connections."""
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
