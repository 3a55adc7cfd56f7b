"""wsio.run(): worker processes on one port, clean shutdown, dead workers replaced, failures."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import signal
import socket
import ssl
import sys
import time
from typing import Any

import pytest

import wsio
from tests.helpers import self_signed_cert

from .processes import ROOT
from .redis_server import free_port

pytestmark = pytest.mark.timeout(120)

# argv: port, workers, target, run()'s other keyword arguments in JSON. The
# parent and the workers log at INFO to stderr (a file: see start_run()).
RUN_ECHO = """
import json, logging, sys, wsio
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
def ready(port, pids):
    print("ready", port, *pids, flush=True)
wsio.run(sys.argv[3], "127.0.0.1", int(sys.argv[1]), workers=int(sys.argv[2]), on_ready=ready, close_timeout=2,
         **json.loads(sys.argv[4]))
"""


async def spawn_run(
    port: int, workers: int, log: str, target: str = "tests.pubsub.app:echo", **options: Any
) -> asyncio.subprocess.Process:
    with open(log, "wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RUN_ECHO,
            str(port),
            str(workers),
            target,
            json.dumps(options),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )


async def start_run(
    port: int, workers: int, log: str = os.devnull, **options: Any
) -> tuple[asyncio.subprocess.Process, list[int]]:
    process = await spawn_run(port, workers, log, **options)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert line.startswith(b"ready "), line
    fields = line.split()
    assert int(fields[1]) == port
    return process, [int(pid) for pid in fields[2:]]


async def echo_pid(client: wsio.ClientConnection, text: str = "hi") -> int:
    """Send ``text``; return the PID of the worker that echoed it."""
    await client.send(text)
    pid, _, echoed = (await client.recv(timeout=5)).partition(":")  # type: ignore[union-attr]
    assert echoed == text
    return int(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_for_log(log: str, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        with open(log) as f:
            match = re.search(pattern, f.read())
        if match is not None:
            return match
        assert time.monotonic() < deadline, f"no {pattern!r} in the log within {timeout}s:\n{open(log).read()}"
        await asyncio.sleep(0.05)


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


@pytest.mark.async_timeout(60)
async def test_a_killed_worker_is_replaced_while_the_other_serves_on(tmp_path: Any) -> None:
    log = str(tmp_path / "run.log")
    port = free_port()
    process, pids = await start_run(port, 2, log)
    clients: dict[int, wsio.ClientConnection] = {}
    others = []
    try:
        for _ in range(60):  # one client on each worker
            client = await wsio.connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
            pid = await echo_pid(client)
            if pid in clients:
                others.append(client)
            else:
                clients[pid] = client
            if len(clients) == 2:
                break
        assert set(clients) == set(pids)
        victim, survivor = pids[0], pids[1]
        os.kill(victim, signal.SIGKILL)
        await asyncio.wait_for(clients[victim].wait_closed(), 5)
        assert clients[victim].close_code == 1006  # its connections go with it

        # The other worker's client goes on exchanging messages, during and after the restart.
        match = None
        for i in range(400):
            assert await echo_pid(clients[survivor], f"m{i}") == survivor
            match = re.search(r"worker 0 restarted: pid (\d+)", open(log).read())
            if match and i >= 20:
                break
            await asyncio.sleep(0.02)
        assert match is not None, open(log).read()
        replacement = int(match.group(1))
        assert replacement not in pids and alive(replacement), "a new worker, with a new PID"
        text = open(log).read()
        assert f"worker 0 (pid {victim}) was killed by SIGKILL; restarting it in 0.1s" in text, text
        assert f"worker 0 restarted: pid {replacement} (was {victim})" in text, text

        # New connections succeed, and reach the replacement as well as the survivor.
        seen = set()
        for _ in range(60):
            client = await wsio.connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
            others.append(client)
            seen.add(await echo_pid(client))
            if seen == {survivor, replacement}:
                break
        assert seen == {survivor, replacement}
        assert await echo_pid(clients[survivor], "still here") == survivor

        # SIGTERM still ends everything, the replacement too, closing with 1001.
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        await asyncio.wait_for(clients[survivor].wait_closed(), 5)
        assert clients[survivor].close_code == 1001
        assert not alive(survivor) and not alive(replacement)
        assert "received SIGTERM; stopping 2 workers" in open(log).read()
    finally:
        if process.returncode is None:
            process.kill()
        for client in [*clients.values(), *others]:
            await client.close()


@pytest.mark.async_timeout(90)
async def test_a_worker_that_keeps_dying_makes_run_give_up(tmp_path: Any) -> None:
    # Default knobs: 5 restarts within 60 s, backoff 0.1 s doubling (3.1 s in all), then give up.
    log = str(tmp_path / "run.log")
    started = time.monotonic()
    process = await spawn_run(free_port(), 2, log, "tests.pubsub.app:crash")
    try:
        assert await asyncio.wait_for(process.wait(), 75) == 1
        assert time.monotonic() - started < 75
        assert process.stdout is not None
        assert await process.stdout.read() == b"", "never ready"
        text = open(log).read()
        assert re.search(
            r"ERROR wsio.server: worker \d \(pid \d+\) exited with code 3; it died 6 times within 60s, "
            r"more than max_restarts=5: giving up; stopping the other workers",
            text,
        ), text
        assert "RuntimeError: worker" in text  # run() raises it
        assert text.count("exited with code 3; restarting it in") >= 5
        assert "restarting it in 1.6s (restart 5 of at most 5 within 60s)" in text
    finally:
        if process.returncode is None:
            process.kill()


@pytest.mark.async_timeout(40)
async def test_max_restarts_0_a_dead_worker_stops_the_rest(tmp_path: Any) -> None:
    log = str(tmp_path / "run.log")
    port = free_port()
    process, pids = await start_run(port, 2, log, max_restarts=0)
    try:
        os.kill(pids[0], signal.SIGKILL)
        assert await asyncio.wait_for(process.wait(), 20) != 0
        await asyncio.sleep(0.2)
        assert not alive(pids[1])
        assert "was killed by SIGKILL; it died 1 time within 60s, more than max_restarts=0: giving up" in open(log).read()
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
    with pytest.raises(ValueError, match="max_restarts"):
        wsio.run("tests.pubsub.app:echo", workers=2, max_restarts=-1)


@pytest.mark.async_timeout(40)
async def test_ssl_certfile_serves_wss(tmp_path: Any) -> None:
    # workers=1: run() loads the files into the context it serves with.
    certfile, keyfile = self_signed_cert(str(tmp_path), "localhost")
    port = free_port()
    process, pids = await start_run(port, 1, ssl_certfile=certfile, ssl_keyfile=keyfile)
    try:
        context = ssl.create_default_context(cafile=certfile)
        client = await wsio.connect(f"wss://127.0.0.1:{port}/", ssl=context, server_hostname="localhost", open_timeout=5)
        try:
            assert await echo_pid(client) == pids[0]
        finally:
            await client.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()


def test_tls_with_workers_takes_files_not_a_context(tmp_path: Any) -> None:
    # Each mistake raises before any worker starts.
    certfile, keyfile = self_signed_cert(str(tmp_path), "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    with pytest.raises(TypeError, match=r"with workers > 1, pass ssl_certfile= \(and ssl_keyfile=\) instead"):
        wsio.run("tests.pubsub.app:echo", "127.0.0.1", free_port(), workers=2, ssl=context, max_restarts=0)
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(FileNotFoundError, match=f"^can't read the TLS certificate file {re.escape(missing)}: "):
        wsio.run("tests.pubsub.app:echo", "127.0.0.1", free_port(), workers=2, ssl_certfile=missing, max_restarts=0)
    with pytest.raises(ValueError, match="not both"):
        wsio.run("tests.pubsub.app:echo", "127.0.0.1", free_port(), ssl=context, ssl_certfile=certfile)
    with pytest.raises(ValueError, match="go with ssl_certfile="):
        wsio.run("tests.pubsub.app:echo", "127.0.0.1", free_port(), ssl_keyfile=keyfile)
    assert multiprocessing.active_children() == []
