"""wsio.run(): worker processes on one port, clean shutdown, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import pytest

import wsio

from .processes import ROOT
from .redis_server import free_port

pytestmark = pytest.mark.timeout(120)

RUN_ECHO = """
import sys, wsio
def ready(port, pids):
    print("ready", port, *pids, flush=True)
wsio.run("tests.pubsub.app:echo", "127.0.0.1", int(sys.argv[1]), workers=int(sys.argv[2]), on_ready=ready, close_timeout=2)
"""


async def start_run(port: int, workers: int) -> tuple[asyncio.subprocess.Process, list[int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN_ECHO, str(port), str(workers), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert line.startswith(b"ready "), line
    fields = line.split()
    assert int(fields[1]) == port
    return process, [int(pid) for pid in fields[2:]]


@pytest.mark.async_timeout(40)
@pytest.mark.parametrize("workers", [1, 3])
async def test_handler_by_name_and_sigint(workers: int) -> None:
    port = free_port()
    process, pids = await start_run(port, workers)
    try:
        assert len(pids) == workers
        seen: set[int] = set()
        clients = []
        for _ in range(40):
            client = await wsio.connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
            clients.append(client)
            await client.send("hi")
            pid, _, text = (await client.recv(timeout=5)).partition(":")  # type: ignore[union-attr]
            assert text == "hi"
            seen.add(int(pid))
            if len(seen) == workers:
                break
        assert seen == set(pids), "every worker serves"
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(process.wait(), 20) == 0
        for client in clients:
            await asyncio.wait_for(client.wait_closed(), 5)
            assert client.close_code == 1001
    finally:
        if process.returncode is None:
            process.kill()


@pytest.mark.async_timeout(40)
async def test_a_dead_worker_stops_the_rest() -> None:
    port = free_port()
    process, pids = await start_run(port, 2)
    try:
        os.kill(pids[0], signal.SIGKILL)
        assert await asyncio.wait_for(process.wait(), 20) != 0
        await asyncio.sleep(0.2)
        with pytest.raises(ProcessLookupError):
            os.kill(pids[1], 0)
    finally:
        if process.returncode is None:
            process.kill()


def test_port_in_use_fails_early() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            wsio.run("tests.pubsub.app:echo", "127.0.0.1", port, workers=2)


def test_workers_must_import_the_handler() -> None:
    async def local_handler(ws: wsio.ServerConnection) -> None:
        pass

    with pytest.raises(TypeError, match="module level"):
        wsio.run(local_handler, "127.0.0.1", free_port(), workers=2)
    with pytest.raises(ValueError, match="module:attr"):
        wsio.run("no_colon", "127.0.0.1", free_port(), workers=2)
    with pytest.raises(ValueError, match="workers"):
        wsio.run("tests.pubsub.app:echo", workers=0)
